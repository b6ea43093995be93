"""The web app: the upload page, POST /api/upload, the job API, /health and /metrics.

```
GET  /                          the upload page (bot/web/static: plain HTML, CSS, JavaScript)
GET  /api/config                {"auth_required", "max_file_size_bytes", "max_file_size",
                                 "currency", "reasons"}
POST /api/upload                multipart field `file` -> 202 {"job_id", "status_url"}
POST /api/uploads               {"file_name", "size_bytes"} -> 201 {"job_id", "upload_url", ...}
PUT  /api/uploads/{id}/{secret} the reserved upload's bytes -> 202 {"job_id", "status_url"}
                                (or PUT /api/uploads/{id} with the header Upload-Secret)
GET  /api/jobs                  {"jobs": [job, ...]}, newest first, without reports
GET  /api/jobs/{id}             one job, with its report once it succeeded (?seen=<status>&
                                wait_s=<s>: answered when its status changes, or after wait_s)
GET  /api/jobs/{id}/chart.png   the revenue chart, drawn just after the report (503 and
                                Retry-After while another instance still draws it)
GET  /api/jobs/{id}/weekly-report.csv   one row per week, as `report --format csv`
GET  /api/jobs/{id}/clinic-weekly.csv   one row per week and clinic (`--by clinic`)
GET  /api/jobs/{id}/invalid-rows.csv    every invalid row with its reason (`--invalid-rows`)
GET  /health, /metrics          for the orchestrator and Prometheus
```

An upload streams: the body goes chunk by chunk into the job (or into S3 when S3_BUCKET is
set), never whole into memory and never onto local disk. Every API error is JSON
`{"error": "..."}` in words a clinic manager understands, aiohttp's own answers to a request
it cannot read included, and none echoes the request. When UPLOAD_TOKEN is set, uploads
and the job API need `Authorization: Bearer <token>`: job reports are business figures.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import structlog
from aiohttp import web

from bot import words
from bot.errors import StoreError
from bot.web.context import (
    CONTEXT,
    IN_FLIGHT,
    JOB_LIMITER,
    LIMITER,
    STATIC_DIR,
    TASKS,
    WebContext,
    error_response,
)
from bot.web.guards import (
    PROXIES,
    InFlight,
    RateLimiter,
    client_of,
    host_allowed,
    origin_allowed,
)
from bot.web.intake import expect_continue
from bot.web.jobs_api import (
    get_chart,
    get_clinic_csv,
    get_config,
    get_invalid_rows_csv,
    get_job,
    get_report_csv,
    index,
    list_jobs,
)
from bot.web.ops import STORE_CHECK, StoreCheck, health, metrics
from bot.web.protocol import MAX_HEADERS, ConnectionLimits, Runner
from bot.web.reservations import RESERVATIONS, Reservations, create_upload, send_upload
from bot.web.uploads import upload

__all__ = ["STATIC_DIR", "RateLimiter", "WebContext", "build_web_app", "start"]

log = structlog.get_logger("bot.web")

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    # The page loads nothing from elsewhere; the chart is shown from a blob: URL, since an
    # <img src> cannot send the Authorization header.
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' blob:; object-src 'none'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'"
    ),
}


# Answered whatever the Host: an orchestrator's probe and Prometheus use whatever address
# they reach the container by, and neither route reveals a report.
UNGUARDED_PATHS = frozenset({"/health", "/metrics"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@web.middleware
async def guarded(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """The browser boundary, body encodings and the job API's rate limit, then the handler;
    every error answer, aiohttp's own and a crash included, is JSON."""
    try:
        refusal = _refusal(request)
        if refusal is not None:
            return refusal
        return await handler(request)
    except web.HTTPException as error:
        if error.status < 400:
            raise
        allow = {"Allow": error.headers["Allow"]} if "Allow" in error.headers else None
        return error_response(
            error.status, words.ROUTE_ERROR_WORDS.get(error.status, error.reason), headers=allow
        )
    except StoreError as error:
        log.warning("store.unavailable", path=request.path, error=type(error).__name__)
        return error_response(
            503,
            words.RECORDS_AWAY,
            headers={"Retry-After": "60"},
        )
    except Exception:
        log.exception("web.crashed", path=request.path)
        return error_response(500, words.SOMETHING_WENT_WRONG)


def _refusal(request: web.Request) -> web.Response | None:
    settings = request.app[CONTEXT].settings
    has_body = request.method not in SAFE_METHODS
    if settings.upload_token is None and request.path not in UNGUARDED_PATHS:
        if not host_allowed(request, settings.public_url):
            return error_response(
                421,
                words.WRONG_HOST,
                close=has_body,
            )
        if has_body and not origin_allowed(request, settings.public_url):
            return error_response(
                403,
                words.FOREIGN_ORIGIN,
                close=True,
            )
    if has_body and request.headers.get("Content-Encoding", "identity").lower() != "identity":
        # aiohttp would inflate it, and every size limit is about bytes on the wire.
        return error_response(415, words.NO_CONTENT_ENCODING, close=True)
    if request.path.startswith("/api/jobs"):
        retry_after_s = request.app[JOB_LIMITER].hit(client_of(request))
        if retry_after_s is not None:
            wait_s = max(1, math.ceil(retry_after_s))
            return error_response(
                429,
                words.too_many_requests(settings.job_api_per_minute, wait_s),
                headers={"Retry-After": str(wait_s)},
            )
    return None


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)


async def _cancel_tasks(app: web.Application) -> None:
    tasks = app[TASKS]
    for task in list(tasks):
        task.cancel()


def build_web_app(context: WebContext, *, ops_only: bool = False) -> web.Application:
    """The whole app; `ops_only` (a worker): /health and /metrics alone."""
    app = web.Application(middlewares=[guarded])
    app[CONTEXT] = context
    app[LIMITER] = RateLimiter(context.settings.uploads_per_minute)
    app[JOB_LIMITER] = RateLimiter(context.settings.job_api_per_minute)
    app[IN_FLIGHT] = InFlight(total=context.settings.uploads_in_flight)
    app[RESERVATIONS] = Reservations()
    app[PROXIES] = context.settings.trusted_proxies
    store_check = app[STORE_CHECK] = StoreCheck()

    async def probe_the_store(app: web.Application) -> AsyncIterator[None]:
        await store_check.probe(context.jobs.store)  # so the first /health knows
        store_check.start(context.jobs.store)
        yield
        store_check.stop()

    app.cleanup_ctx.append(probe_the_store)
    tasks: set[asyncio.Task[Any]] = set()
    app[TASKS] = tasks
    app.on_response_prepare.append(_security_headers)
    app.on_cleanup.append(_cancel_tasks)
    app.router.add_get("/health", health)
    app.router.add_get("/metrics", metrics)
    if ops_only:
        return app
    app.router.add_get("/", index)
    app.router.add_static("/static", STATIC_DIR)
    app.router.add_get("/api/config", get_config)
    app.router.add_post("/api/upload", upload, expect_handler=expect_continue)
    app.router.add_post("/api/uploads", create_upload, expect_handler=expect_continue)
    app.router.add_put("/api/uploads/{job_id}", send_upload, expect_handler=expect_continue)
    app.router.add_put(
        "/api/uploads/{job_id}/{secret}", send_upload, expect_handler=expect_continue
    )
    app.router.add_get("/api/jobs", list_jobs)
    app.router.add_get("/api/jobs/{job_id}", get_job)
    app.router.add_get("/api/jobs/{job_id}/chart.png", get_chart)
    app.router.add_get("/api/jobs/{job_id}/weekly-report.csv", get_report_csv)
    app.router.add_get("/api/jobs/{job_id}/clinic-weekly.csv", get_clinic_csv)
    app.router.add_get("/api/jobs/{job_id}/invalid-rows.csv", get_invalid_rows_csv)
    return app


async def start(context: WebContext, *, ops_only: bool = False) -> tuple[web.AppRunner, int]:
    """Serve on HOST:PORT (port 0 picks a free one); returns the runner and the real port."""
    runner = Runner(
        build_web_app(context, ops_only=ops_only),
        ConnectionLimits(context.settings.trusted_proxies),
        access_log=None,
        # An idle keep-alive connection is closed as soon as a stalled upload would be.
        keepalive_timeout=context.settings.upload_idle_timeout_s,
        max_headers=MAX_HEADERS,
        # Every body with a Content-Encoding is refused (limits are about bytes on the
        # wire): aiohttp must not inflate one meanwhile.
        auto_decompress=False,
    )
    await runner.setup()
    site = web.TCPSite(runner, context.settings.host, context.settings.port)
    try:
        await site.start()
    except BaseException:  # e.g. the port is taken
        await runner.cleanup()
        raise
    port = runner.addresses[0][1]
    return runner, port

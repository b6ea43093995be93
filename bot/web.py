"""The web app: the upload page, POST /api/upload, the job API, /health and /metrics.

```
GET  /                          the upload page (bot/static: plain HTML, CSS, JavaScript)
GET  /api/config                {"auth_required", "max_file_size_bytes", "currency"}
POST /api/upload                multipart field `file` -> 202 {"job_id", "status_url"}
GET  /api/jobs                  {"jobs": [job, ...]}, newest first, without reports
GET  /api/jobs/{id}             one job, with its report once it succeeded
GET  /api/jobs/{id}/chart.png   the revenue chart, once the job succeeded
GET  /health, /metrics          for the orchestrator and Prometheus
```

An upload streams: the body goes chunk by chunk into the job (or into S3 when S3_BUCKET is
set), never whole into memory and never onto local disk. Every API error is JSON
`{"error": "..."}` in words a clinic manager understands. When UPLOAD_TOKEN is set, uploads
and the job API need `Authorization: Bearer <token>`: job reports are business figures.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import Any, TypeVar

import structlog
from aiohttp import BodyPartReader, MultipartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from bot import s3
from bot.chart import revenue_chart_png
from bot.config import Settings
from bot.errors import FileTooLargeError, S3Error, SourceError
from bot.jobs import Job, JobRunner, JobStatus, NotAccepting, Replier
from bot.metrics import CONTENT_TYPE, Metrics
from bot.replies import SilentReplier
from bot.sources import (
    CallbackSource,
    Source,
    SourceInfo,
    UploadSource,
    is_csv_name,
)
from processing.render import amount, to_dict

log = structlog.get_logger("bot.web")
T = TypeVar("T")

SLACK_DOWN_LIMIT_S = 60.0
STATIC_DIR = Path(__file__).parent / "static"
CHUNK_BYTES = 256 * 1024
# Room for the form's boundaries, part headers and any small extra fields around the file:
# a Content-Length this far over the file limit cannot hold a file within it.
FORM_OVERHEAD_BYTES = 64 * 1024
RATE_WINDOW_S = 60.0
CHARTS_CACHED = 16
MAX_NAME_CHARS = 200
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

INTERRUPTED = "the upload stopped before the whole file arrived; please upload the file again"


@dataclass(frozen=True, kw_only=True)
class WebContext:
    settings: Settings
    jobs: JobRunner
    metrics: Metrics
    slack_state: Callable[[], Awaitable[str]]
    slack_down_for_s: Callable[[], float]
    upload_replier: Callable[[], Replier | None]
    s3_client: Any | None = None


CONTEXT = web.AppKey("context", WebContext)


# -- small parts ------------------------------------------------------------------------------


class RateLimiter:
    """At most `limit` requests per client in any sliding window of `window_s` seconds.

    A request turned away here is not counted, so Retry-After is true: after that many
    seconds the client has a free slot, however often it knocked in between.
    """

    def __init__(
        self,
        limit: int,
        window_s: float = RATE_WINDOW_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window_s = window_s
        self._clock = clock
        self._hits: dict[str, deque[float]] = {}
        self._next_sweep = clock() + window_s

    def hit(self, client: str) -> float | None:
        """Count a request; None if allowed, else the seconds until the client may retry."""
        now = self._clock()
        self._sweep(now)
        hits = self._hits.setdefault(client, deque())
        while hits and hits[0] <= now - self.window_s:
            hits.popleft()
        if len(hits) >= self.limit:
            return hits[0] + self.window_s - now
        hits.append(now)
        return None

    def _sweep(self, now: float) -> None:
        """Forget clients that have been quiet for a whole window, so memory stays bounded."""
        if now < self._next_sweep:
            return
        self._next_sweep = now + self.window_s
        for client, hits in list(self._hits.items()):
            if not hits or hits[-1] <= now - self.window_s:
                del self._hits[client]


class ChartCache:
    """The last few charts drawn. A finished report never changes, and drawing costs CPU."""

    def __init__(self, size: int = CHARTS_CACHED) -> None:
        self._size = size
        self._charts: OrderedDict[str, asyncio.Task[bytes]] = OrderedDict()

    async def get(self, job: Job, currency: str) -> bytes:
        task = self._charts.get(job.id)
        if task is None or (task.done() and (task.cancelled() or task.exception() is not None)):
            assert job.report is not None
            task = asyncio.create_task(
                asyncio.to_thread(revenue_chart_png, job.report, currency=currency)
            )
            self._charts[job.id] = task
            while len(self._charts) > self._size:
                self._charts.popitem(last=False)
        self._charts.move_to_end(job.id)
        # Shielded: a client that goes away must not cancel a drawing others may wait for.
        return await asyncio.shield(task)


LIMITER = web.AppKey("limiter", RateLimiter)
CHARTS = web.AppKey("charts", ChartCache)
TASKS: web.AppKey[set[asyncio.Task[Any]]] = web.AppKey("tasks")


def error_response(
    status: int, message: str, *, headers: dict[str, str] | None = None, close: bool = False
) -> web.Response:
    response = web.json_response({"error": message}, status=status, headers=headers)
    if close:
        # Answered before the body was read: the connection cannot carry another request.
        response.force_close()
    return response


def authorized(request: web.Request, token: str | None) -> bool:
    if token is None:
        return True
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())


UNAUTHORIZED = (
    "This service needs an access code. Enter the code your administrator gave you and try again."
)
ASK_FOR_TOKEN = {"WWW-Authenticate": 'Bearer realm="clinic-events"'}


def unauthorized() -> web.Response:
    return error_response(401, UNAUTHORIZED, headers=ASK_FOR_TOKEN)


def clean_name(filename: str) -> str:
    """The file's own name, without any folders a browser or client put in front of it."""
    name = filename.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(char for char in name if char.isprintable()).strip()
    return name[-MAX_NAME_CHARS:]


# -- job API ----------------------------------------------------------------------------------


def job_json(
    job: Job, jobs: JobRunner, currency: str, *, with_report: bool = True
) -> dict[str, Any]:
    progress = job.progress
    size = job.source.size_bytes
    progress_json = None
    if progress is not None:
        percent = None
        if size:
            done = job.status is JobStatus.SUCCEEDED
            percent = 100.0 if done else round(min(progress.bytes_read / size, 1.0) * 100, 1)
        progress_json = {
            "rows": progress.rows_total,
            "valid": progress.rows_valid,
            "invalid": progress.rows_invalid,
            "revenue": amount(progress.revenue_cents),
            "bytes": progress.bytes_read,
            "percent": percent,
        }
    duration_s = job.duration_s
    body: dict[str, Any] = {
        "id": job.id,
        "status": job.status.value,
        "source": {
            "kind": job.source.kind,
            "name": job.source.name,
            "label": job.source.label,
            "size_bytes": size,
        },
        "created_at": job.created_at.astimezone(UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z"),
        "queue_position": jobs.queue_position(job),
        "duration_s": None if duration_s is None else round(duration_s, 3),
        "progress": progress_json,
        "error": job.error if job.status is JobStatus.FAILED else None,
    }
    if with_report:
        report = job.report if job.status is JobStatus.SUCCEEDED else None
        body["report"] = None if report is None else to_dict(report, job.source.name, currency)
    return body


def _job_or_404(request: web.Request) -> Job | web.Response:
    context = request.app[CONTEXT]
    if not authorized(request, context.settings.upload_token):
        return unauthorized()
    job = context.jobs.get(request.match_info["job_id"])
    if job is None:
        return error_response(
            404, "No such job: it may have finished more than an hour ago, or the link is wrong."
        )
    return job


async def get_job(request: web.Request) -> web.Response:
    job = _job_or_404(request)
    if isinstance(job, web.Response):
        return job
    context = request.app[CONTEXT]
    return web.json_response(job_json(job, context.jobs, context.settings.currency))


async def list_jobs(request: web.Request) -> web.Response:
    context = request.app[CONTEXT]
    if not authorized(request, context.settings.upload_token):
        return unauthorized()
    jobs = [
        job_json(job, context.jobs, context.settings.currency, with_report=False)
        for job in context.jobs.recent()
    ]
    return web.json_response({"jobs": jobs})


async def get_chart(request: web.Request) -> web.Response:
    job = _job_or_404(request)
    if isinstance(job, web.Response):
        return job
    if job.status is not JobStatus.SUCCEEDED:
        return error_response(404, "The chart is ready once the report is finished.")
    context = request.app[CONTEXT]
    png = await request.app[CHARTS].get(job, context.settings.currency)
    return web.Response(
        body=png,
        content_type="image/png",
        headers={"Cache-Control": "private, max-age=3600"},
    )


async def get_config(request: web.Request) -> web.Response:
    settings = request.app[CONTEXT].settings
    return web.json_response(
        {
            "auth_required": settings.upload_token is not None,
            "max_file_size_bytes": settings.max_file_size_bytes,
            "currency": settings.currency,
        }
    )


async def index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})


# -- upload -----------------------------------------------------------------------------------


class Rejected(Exception):
    """An upload turned away: the answer, and the outcome counted in metrics."""

    def __init__(
        self,
        status: int,
        outcome: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        close: bool = True,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.outcome = outcome
        self.message = message
        self.headers = headers
        self.close = close

    def response(self) -> web.Response:
        return error_response(self.status, self.message, headers=self.headers, close=self.close)


class TooLarge(Exception):
    pass


def too_large(limit_bytes: int, size_bytes: int | None = None) -> Rejected:
    return Rejected(413, "too_large", _sentence(str(FileTooLargeError(size_bytes, limit_bytes))))


def _sentence(message: str) -> str:
    return message[:1].upper() + message[1:] + ("" if message.endswith(".") else ".")


async def upload(request: web.Request) -> web.Response:
    context = request.app[CONTEXT]
    outcome = "failed"
    try:
        response = await _upload(request, context)
        outcome = "accepted"
    except Rejected as rejected:
        outcome = rejected.outcome
        response = rejected.response()
    except Exception:
        log.exception("upload.crashed")
        response = error_response(
            500, "Something went wrong on our side; please try the upload again.", close=True
        )
    finally:
        context.metrics.uploads.labels(outcome).inc()
    log.info("upload.answered", outcome=outcome, status=response.status)
    return response


async def _upload(request: web.Request, context: WebContext) -> web.Response:
    settings = context.settings
    # Every upload request counts, whatever becomes of it: a wrong token is no free retry.
    retry_after_s = request.app[LIMITER].hit(request.remote or "unknown")
    if retry_after_s is not None:
        wait_s = max(1, math.ceil(retry_after_s))
        raise Rejected(
            429,
            "rate_limited",
            f"Too many uploads from your address: at most {settings.uploads_per_minute} a "
            f"minute. Please wait {wait_s} seconds and try again.",
            headers={"Retry-After": str(wait_s)},
        )
    if not authorized(request, settings.upload_token):
        raise Rejected(401, "unauthorized", UNAUTHORIZED, headers=ASK_FOR_TOKEN)
    if not context.jobs.accepting:
        raise _unavailable()
    limit = settings.max_file_size_bytes
    declared = request.content_length
    if declared is not None and declared > limit + FORM_OVERHEAD_BYTES:
        raise too_large(limit, declared)
    if not request.content_type.startswith("multipart/"):
        raise Rejected(
            400,
            "bad_request",
            "Send the file as a form upload (multipart/form-data) in a field named “file”.",
        )
    try:
        form = await request.multipart()
        part = await _file_part(form)
    except (ValueError, RuntimeError, AssertionError):
        raise _malformed() from None
    except (ConnectionError, HttpProcessingError):
        raise _interrupted() from None
    name = clean_name(part.filename or "")
    if not is_csv_name(name):
        raise Rejected(
            415,
            "unsupported_type",
            f"“{name}” is not a CSV file. Export the events as CSV (a file ending in .csv) "
            "and upload that.",
        )
    if settings.s3_bucket and context.s3_client is not None:
        job = await _stage_in_s3(context, form, part, name)
    else:
        job = await _stream_into_job(request, context, form, part, name)
    log.info("upload.accepted", job_id=job.id, staged=bool(settings.s3_bucket))
    status_url = f"/api/jobs/{job.id}"
    return web.json_response(
        {"job_id": job.id, "status_url": status_url},
        status=202,
        headers={"Location": status_url},
    )


def _unavailable() -> Rejected:
    return Rejected(
        503,
        "unavailable",
        "The service is restarting and takes no new files right now. Please try again in a minute.",
        headers={"Retry-After": "30"},
    )


def _malformed() -> Rejected:
    return Rejected(
        400,
        "bad_request",
        "The upload arrived garbled or incomplete. Please choose the file and upload it again.",
    )


def _interrupted() -> Rejected:
    return Rejected(400, "failed", _sentence(INTERRUPTED))


async def _file_part(form: MultipartReader) -> BodyPartReader:
    """The first part named `file` that carries a file; other small fields are skipped."""
    skipped = 0
    while True:
        part = await form.next()
        if part is None:
            raise Rejected(
                400,
                "bad_request",
                "No file was attached. Choose a CSV file and upload it in the field named “file”.",
            )
        if not isinstance(part, BodyPartReader):
            raise _malformed()
        if part.name == "file":
            if not part.filename:
                raise Rejected(
                    400, "bad_request", "No file was attached. Choose a CSV file and upload it."
                )
            return part
        while chunk := await part.read_chunk(CHUNK_BYTES):
            skipped += len(chunk)
            if skipped > FORM_OVERHEAD_BYTES:
                raise _malformed()


async def _rest_of_form(form: MultipartReader) -> None:
    """Read to the closing boundary, so the body is done when we answer; bounded."""
    extra = 0
    while (part := await form.next()) is not None:
        if not isinstance(part, BodyPartReader):
            raise ValueError("nested multipart")
        while chunk := await part.read_chunk(CHUNK_BYTES):
            extra += len(chunk)
            if extra > FORM_OVERHEAD_BYTES:
                raise ValueError("too much besides the file")


async def _submit(context: WebContext, source: Source, **options: Any) -> Job:
    """Submit with the configured replier; if telling people fails (Slack said no), the
    upload still counts: the job runs with the job API as its only reporter."""
    replier: Replier
    try:
        replier = context.upload_replier() or SilentReplier()
    except Exception as error:
        log.warning("upload.replier_failed", error=type(error).__name__)
        replier = SilentReplier()
    try:
        return await context.jobs.submit(source, replier, **options)
    except NotAccepting:
        raise
    except Exception as error:
        if isinstance(replier, SilentReplier):
            raise
        log.warning("upload.announce_failed", error=type(error).__name__)
        return await context.jobs.submit(source, SilentReplier(), **options)


async def _until_done(step: Coroutine[Any, Any, None], job: Job) -> bool:
    """Run step (a put into the job's source) unless the job finishes first.

    False when the job has stopped reading, e.g. it failed on the first block: it will never
    take the chunk, so waiting for it would hold the upload forever.
    """
    if job.done.is_set():
        step.close()
        return False
    put = asyncio.ensure_future(step)
    finished = asyncio.ensure_future(job.done.wait())
    try:
        await asyncio.wait({put, finished}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        finished.cancel()
        delivered = put.done()
        if not delivered:
            put.cancel()  # a cancelled Queue.put leaves nothing in the queue
    if delivered:
        put.result()
    return delivered


def _hand_over(app: web.Application, step: Coroutine[Any, Any, None], job: Job) -> None:
    """Tell the job in the background how its source ended: a queued job may take a while
    to read it, and the client should get its answer now."""
    tasks = app[TASKS]
    task = asyncio.create_task(_until_done(step, job))
    tasks.add(task)
    task.add_done_callback(tasks.discard)


async def _stream_into_job(
    request: web.Request,
    context: WebContext,
    form: MultipartReader,
    part: BodyPartReader,
    name: str,
) -> Job:
    limit = context.settings.max_file_size_bytes
    # The request's length is the file plus a few hundred bytes of form framing: close
    # enough for a progress percentage, and browsers never send the part's own size.
    info = SourceInfo(
        kind="upload", name=name, label=f"upload {name}", size_bytes=request.content_length
    )
    source = UploadSource(info)
    try:
        job = await _submit(context, source)
    except NotAccepting:
        raise _unavailable() from None
    reading = True  # False once the job stopped taking chunks: the rest is read and dropped
    received = 0
    try:
        while chunk := await part.read_chunk(CHUNK_BYTES):
            received += len(chunk)
            if received > limit:
                raise TooLarge()
            if reading:
                reading = await _until_done(source.put(chunk), job)
        await _rest_of_form(form)
    except TooLarge:
        _hand_over(request.app, source.finish(FileTooLargeError(None, limit)), job)
        raise too_large(limit) from None
    except (ConnectionError, HttpProcessingError, ValueError) as error:
        _hand_over(request.app, source.finish(SourceError(INTERRUPTED)), job)
        if isinstance(error, ValueError):
            raise _malformed() from None
        raise _interrupted() from None
    except BaseException:
        _hand_over(request.app, source.finish(SourceError(INTERRUPTED)), job)
        raise
    if reading:
        await _until_done(source.finish(), job)
    return job


async def _stage_in_s3(
    context: WebContext, form: MultipartReader, part: BodyPartReader, name: str
) -> Job:
    """Stream the body into s3://S3_BUCKET/uploads/<job id>/<name>, then run the job from there.

    boto3 blocks, so each call runs in a worker thread; the multipart upload holds at most
    one part in memory. Any failure on the way aborts it: no object, no parts left behind.
    """
    settings = context.settings
    client = context.s3_client
    assert settings.s3_bucket is not None
    limit = settings.max_file_size_bytes
    job_id = context.jobs.new_job_id()
    location = s3.S3Location(settings.s3_bucket, f"uploads/{job_id}/{name}")
    try:
        staging = await asyncio.to_thread(s3.MultipartUpload.start, client, location)
    except S3Error as error:
        raise _not_stored(error, job_id) from None
    # Cancelling an awaited to_thread() leaves its thread running: the lock makes the abort
    # wait for a part still on its way, instead of racing it.
    one_at_a_time = threading.Lock()

    def locked(call: Callable[..., T], *args: Any) -> T:
        with one_at_a_time:
            return call(*args)

    try:
        received = 0
        while chunk := await part.read_chunk(CHUNK_BYTES):
            received += len(chunk)
            if received > limit:
                raise TooLarge()
            await asyncio.to_thread(locked, staging.write, chunk)
        await _rest_of_form(form)
        size_bytes = await asyncio.to_thread(locked, staging.complete)
    except BaseException as error:
        # Shielded: even a cancelled handler must not leave parts behind in S3.
        await asyncio.shield(asyncio.to_thread(locked, _abort_quietly, staging))
        if isinstance(error, TooLarge):
            raise too_large(limit) from None
        if isinstance(error, S3Error):
            raise _not_stored(error, job_id) from None
        if isinstance(error, ValueError):
            raise _malformed() from None
        if isinstance(error, ConnectionError | HttpProcessingError):
            raise _interrupted() from None
        raise
    log.info("upload.staged", job_id=job_id, bucket=location.bucket, size_bytes=size_bytes)

    info = SourceInfo(kind="upload", name=name, label=f"upload {name}", size_bytes=size_bytes)
    source = CallbackSource(info, lambda: _object_chunks(client, location, limit))

    async def delete_staged() -> None:
        await asyncio.to_thread(s3.delete_object, client, location)

    cleanup = None if settings.s3_keep_uploads else delete_staged
    try:
        return await _submit(context, source, job_id=job_id, cleanup=cleanup)
    except BaseException as error:
        if cleanup is not None:
            with contextlib.suppress(S3Error):
                await cleanup()
        if isinstance(error, NotAccepting):
            raise _unavailable() from None
        raise


def _abort_quietly(staging: s3.MultipartUpload) -> None:
    try:
        staging.abort()
    except S3Error as error:
        # A lifecycle rule (AbortIncompleteMultipartUpload) is the backstop for this.
        log.warning("upload.abort_failed", error=str(error))


def _not_stored(error: S3Error, job_id: str) -> Rejected:
    # S3's side (bucket, permissions) is for the operator; the person uploading gets words.
    log.warning("upload.staging_failed", job_id=job_id, error=str(error))
    return Rejected(
        502,
        "failed",
        "The file could not be stored for processing. Please try again later; if it keeps "
        f"happening, tell your administrator (reference {job_id}).",
    )


async def _object_chunks(
    client: Any, location: s3.S3Location, limit_bytes: int
) -> AsyncIterator[bytes]:
    """The staged object's bytes, opened only when the job starts: a queued job holds no
    S3 connection."""
    opened = await asyncio.to_thread(
        s3.open_object,
        client,
        location,
        allowed_buckets=frozenset({location.bucket}),
        max_size_bytes=limit_bytes,
    )
    pieces = opened.chunks()
    try:
        while (chunk := await asyncio.to_thread(next, pieces, None)) is not None:
            yield chunk
    finally:
        await asyncio.to_thread(opened.close)


# -- health and metrics -----------------------------------------------------------------------


async def health(request: web.Request) -> web.Response:
    context = request.app[CONTEXT]
    state = await context.slack_state()
    down_too_long = state == "disconnected" and context.slack_down_for_s() > SLACK_DOWN_LIMIT_S
    return web.json_response(
        {"status": "degraded" if down_too_long else "ok", "slack": state},
        status=503 if down_too_long else 200,
    )


async def metrics(request: web.Request) -> web.Response:
    body = request.app[CONTEXT].metrics.exposition()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


# -- the app ----------------------------------------------------------------------------------


@web.middleware
async def json_errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """aiohttp's own 404 and 405 answers as JSON under /api/, like every other API error."""
    try:
        return await handler(request)
    except web.HTTPException as error:
        if not request.path.startswith("/api/") or error.status < 400:
            raise
        words = {
            404: "There is nothing at this address.",
            405: "This address does not take that method.",
        }
        allow = {"Allow": error.headers["Allow"]} if "Allow" in error.headers else None
        return error_response(error.status, words.get(error.status, error.reason), headers=allow)


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)


async def _cancel_tasks(app: web.Application) -> None:
    tasks = app[TASKS]
    for task in list(tasks):
        task.cancel()


def build_web_app(context: WebContext) -> web.Application:
    app = web.Application(middlewares=[json_errors])
    app[CONTEXT] = context
    app[LIMITER] = RateLimiter(context.settings.uploads_per_minute)
    app[CHARTS] = ChartCache()
    tasks: set[asyncio.Task[Any]] = set()
    app[TASKS] = tasks
    app.on_response_prepare.append(_security_headers)
    app.on_cleanup.append(_cancel_tasks)
    app.router.add_get("/", index)
    app.router.add_static("/static", STATIC_DIR)
    app.router.add_get("/api/config", get_config)
    app.router.add_post("/api/upload", upload)
    app.router.add_get("/api/jobs", list_jobs)
    app.router.add_get("/api/jobs/{job_id}", get_job)
    app.router.add_get("/api/jobs/{job_id}/chart.png", get_chart)
    app.router.add_get("/health", health)
    app.router.add_get("/metrics", metrics)
    return app


async def start(context: WebContext) -> tuple[web.AppRunner, int]:
    """Serve on HOST:PORT (port 0 picks a free one); returns the runner and the real port."""
    runner = web.AppRunner(build_web_app(context), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, context.settings.host, context.settings.port)
    await site.start()
    port = runner.addresses[0][1]
    return runner, port

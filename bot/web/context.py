"""What every handler shares: the service's parts, app keys, and the JSON error answer."""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from bot.config import Settings
from bot.jobs.job import Replier
from bot.jobs.runner import JobRunner
from bot.metrics import Metrics
from bot.web.guards import InFlight, RateLimiter
from bot.words import UNAUTHORIZED

STATIC_DIR = Path(__file__).resolve().parent / "static"


@dataclass(frozen=True, kw_only=True)
class WebContext:
    settings: Settings
    jobs: JobRunner
    metrics: Metrics
    slack_state: Callable[[], Awaitable[str]]
    slack_down_for_s: Callable[[], float]
    upload_replier: Callable[[], Replier | None]
    s3_client: Any | None = None
    staging_live: set[str] = field(default_factory=set)  # uploads this process stages now


CONTEXT = web.AppKey("context", WebContext)


LIMITER = web.AppKey("limiter", RateLimiter)  # uploads
JOB_LIMITER = web.AppKey("job_limiter", RateLimiter)  # the job API
IN_FLIGHT = web.AppKey("in_flight", InFlight)
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
    try:
        offered = given.strip().encode()
    except UnicodeEncodeError:  # bytes that were not UTF-8 (aiohttp keeps them as surrogates)
        return False
    return hmac.compare_digest(offered, token.encode())


ASK_FOR_TOKEN = {"WWW-Authenticate": 'Bearer realm="clinic-events"'}


def unauthorized() -> web.Response:
    return error_response(401, UNAUTHORIZED, headers=ASK_FOR_TOKEN)

"""For operators: /health (the real Slack socket state, the job store) and /metrics."""

from __future__ import annotations

import time

from aiohttp import web

from bot.metrics import CONTENT_TYPE
from bot.store import JobStore
from bot.web.context import CONTEXT

SLACK_DOWN_LIMIT_S = 60.0
STORE_CHECK_EVERY_S = 5.0  # a probe every second must not write every second


class StoreCheck:
    """Whether the job store took a write lately: checked at most every STORE_CHECK_EVERY_S,
    so /health answers from memory and never waits on the store's thread."""

    def __init__(self) -> None:
        self._checked_at = float("-inf")
        self._writable = True

    async def writable(self, store: JobStore) -> bool:
        if time.monotonic() - self._checked_at >= STORE_CHECK_EVERY_S:
            self._checked_at = time.monotonic()
            self._writable = await store.writable()
        return self._writable


STORE_CHECK = web.AppKey("store_check", StoreCheck)


async def health(request: web.Request) -> web.Response:
    """200 `{"status": "ok", "slack": ..., "store": "ok"}`; 503 "degraded" when the Slack
    socket has been down for over a minute or the job store takes no writes."""
    context = request.app[CONTEXT]
    state = await context.slack_state()
    down_too_long = state == "disconnected" and context.slack_down_for_s() > SLACK_DOWN_LIMIT_S
    writable = await request.app[STORE_CHECK].writable(context.jobs.store)
    store = "ok" if writable else "unwritable"
    degraded = down_too_long or store != "ok"
    return web.json_response(
        {"status": "degraded" if degraded else "ok", "slack": state, "store": store},
        status=503 if degraded else 200,
    )


async def metrics(request: web.Request) -> web.Response:
    body = request.app[CONTEXT].metrics.exposition()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})

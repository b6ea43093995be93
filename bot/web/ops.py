"""For operators: /health (the real Slack socket state, the job store) and /metrics."""

from __future__ import annotations

import asyncio

import structlog
from aiohttp import web

from bot.metrics import CONTENT_TYPE
from bot.store import JobStore
from bot.web.context import CONTEXT

log = structlog.get_logger("bot.web")

SLACK_DOWN_LIMIT_S = 60.0
STORE_CHECK_EVERY_S = 5.0  # a probe every second must not write every second
PROBE_TIMEOUT_S = 2.0


class StoreCheck:
    """The job store's state for /health: probed in the background every
    STORE_CHECK_EVERY_S, each probe given PROBE_TIMEOUT_S, so /health answers from memory at
    once even when the disk is frozen or DynamoDB does not answer."""

    def __init__(self) -> None:
        self.state = "ok"
        self._task: asyncio.Task[None] | None = None
        self._probing: asyncio.Future[str] | None = None

    async def probe(self, store: JobStore) -> str:
        """One probe at a time: one that hangs is given up on (its state "not answering")
        but not started again until it has ended, so hung probes never pile up."""
        if self._probing is None or self._probing.done():
            self._probing = asyncio.ensure_future(store.state())
        done, _ = await asyncio.wait({self._probing}, timeout=PROBE_TIMEOUT_S)
        if not done:
            self.state = "not answering"
            return self.state
        try:
            self.state = self._probing.result()
        except Exception as error:
            log.warning("store.probe_failed", error=type(error).__name__)
            self.state = "unwritable"
        return self.state

    async def _every_now_and_then(self, store: JobStore) -> None:
        while True:
            await self.probe(store)
            await asyncio.sleep(STORE_CHECK_EVERY_S)

    def start(self, store: JobStore) -> None:
        self._task = asyncio.create_task(self._every_now_and_then(store))

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        if self._probing is not None:
            self._probing.cancel()


STORE_CHECK = web.AppKey("store_check", StoreCheck)


async def health(request: web.Request) -> web.Response:
    """200 `{"status": "ok", "slack": ..., "store": "ok"}`; 503 "degraded" when the Slack
    socket has been down for over a minute or the job store is not ok (unwritable,
    damaged, not answering, ...)."""
    context = request.app[CONTEXT]
    state = await context.slack_state()
    down_too_long = state == "disconnected" and context.slack_down_for_s() > SLACK_DOWN_LIMIT_S
    store = request.app[STORE_CHECK].state
    degraded = down_too_long or store != "ok"
    return web.json_response(
        {"status": "degraded" if degraded else "ok", "slack": state, "store": store},
        status=503 if degraded else 200,
    )


async def metrics(request: web.Request) -> web.Response:
    body = request.app[CONTEXT].metrics.exposition()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})

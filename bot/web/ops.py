"""For operators: /health (the real Slack socket state, the job store) and /metrics."""

from __future__ import annotations

from aiohttp import web

from bot.metrics import CONTENT_TYPE
from bot.web.context import CONTEXT

SLACK_DOWN_LIMIT_S = 60.0


async def health(request: web.Request) -> web.Response:
    """200 `{"status": "ok", "slack": ..., "store": "ok"}`; 503 "degraded" when the Slack
    socket has been down for over a minute or the job store takes no writes."""
    context = request.app[CONTEXT]
    state = await context.slack_state()
    down_too_long = state == "disconnected" and context.slack_down_for_s() > SLACK_DOWN_LIMIT_S
    store = "ok" if await context.jobs.store.writable() else "unwritable"
    degraded = down_too_long or store != "ok"
    return web.json_response(
        {"status": "degraded" if degraded else "ok", "slack": state, "store": store},
        status=503 if degraded else 200,
    )


async def metrics(request: web.Request) -> web.Response:
    body = request.app[CONTEXT].metrics.exposition()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})

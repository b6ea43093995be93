"""For operators: /health (the real Slack socket state) and /metrics (Prometheus)."""

from __future__ import annotations

from aiohttp import web

from bot.metrics import CONTENT_TYPE
from bot.web.context import CONTEXT

SLACK_DOWN_LIMIT_S = 60.0


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

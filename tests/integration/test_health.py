"""/health tells the real Socket Mode state, and fails once Slack has been gone a minute."""

from __future__ import annotations

from typing import Any

import aiohttp

from bot.app import Service
from tests.integration.helpers import StartBot
from tests.standin.slack import SlackStandIn


async def health(service: Service) -> tuple[int, dict[str, Any]]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{service.port}/health") as response,
    ):
        return response.status, await response.json()


async def test_health_follows_the_socket_and_turns_503_after_a_minute_down(
    slack: SlackStandIn, start_bot: StartBot
) -> None:
    """connected -> disconnected (still 200) -> 503 once down for over 60 s."""
    service = await start_bot()
    assert await health(service) == (200, {"status": "ok", "slack": "connected", "store": "ok"})

    slack.fail_next("apps.connections.open", status=200, error="internal_error", count=10_000)
    await slack.drop_connections()
    assert service.slack is not None
    connection = service.slack
    await slack.wait_for_call("apps.connections.open", count=2)  # a reconnect was tried
    status, body = await health(service)
    assert (status, body) == (200, {"status": "ok", "slack": "disconnected", "store": "ok"})

    down_since = connection.down_since
    assert down_since is not None
    connection.clock = lambda: down_since + 61
    status, body = await health(service)
    assert status == 503
    assert body["slack"] == "disconnected"

"""End-to-end: the real service, its Slack client pointed at the local stand-in.

Every test drives the bot only through Socket Mode envelopes and watches what a user would
see: the stand-in's channel, threads, ephemerals and uploads. Fixtures are here; what tests
import by name is in tests/integration/helpers.py.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.app import Service, running
from bot.config import Settings, SlackTokens
from tests.integration.helpers import StartBot
from tests.standin.slack import APP_TOKEN, BOT_TOKEN, SlackStandIn


@pytest.fixture
async def slack() -> AsyncIterator[SlackStandIn]:
    async with SlackStandIn() as standin:
        yield standin


@pytest.fixture
async def start_bot(slack: SlackStandIn) -> AsyncIterator[StartBot]:
    """Starts the real service against the stand-in; settings can be overridden per test."""
    stack: list[Any] = []

    async def start(**overrides: Any) -> Service:
        settings = Settings(
            **{
                "slack": SlackTokens(bot_token=BOT_TOKEN, app_token=APP_TOKEN),
                "slack_api_url": slack.base_url,
                "port": 0,
                "progress_interval_s": 0.2,
                "shutdown_grace_s": 5.0,
                **overrides,
            }
        )
        context = running(settings, console=io.StringIO())
        service = await context.__aenter__()
        stack.append(context)
        await slack.wait_for_connection()
        return service

    yield start
    for context in reversed(stack):
        await context.__aexit__(None, None, None)


@pytest.fixture
async def bot(start_bot: StartBot) -> Service:
    return await start_bot()

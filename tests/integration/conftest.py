"""End-to-end: the real service, its Slack client pointed at the local stand-in.

Every test drives the bot only through Socket Mode envelopes and watches what a user would
see: the stand-in's channel, threads, ephemerals and uploads.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import date, timedelta
from typing import Any

import pytest

from bot.app import Service, running
from bot.config import Settings, SlackTokens
from bot.jobs.runner import Job
from tests.conftest import ROOT
from tests.standin.slack import APP_TOKEN, BOT_TOKEN, SlackStandIn

CHANNEL = "C0CLINIC"
SAMPLE = (ROOT / "samples" / "events-sample.csv").read_bytes()
HEADER = "event_id,clinic_id,patient_id,event_type,event_timestamp,treatment_type,revenue_amount"

StartBot = Callable[..., Awaitable[Service]]


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


async def finished_jobs(service: Service, count: int = 1, timeout: float = 30) -> list[Job]:
    """Waits until `count` jobs exist and all are done (replied and cleaned up); returns them
    oldest first. Waiting for the status alone would race the final replies."""
    jobs = service.jobs
    await jobs.wait_until(
        lambda: len(jobs.recent()) >= count and all(job.done.is_set() for job in jobs.recent()),
        timeout,
    )
    return list(reversed(jobs.recent()))


def weeks_csv(weeks: int, *, per_week: int = 3, start: date = date(2024, 1, 1)) -> bytes:
    """A small file spanning `weeks` weeks, a few treatments in each."""
    lines = [HEADER]
    kinds = ("cleaning", "filling", "implants")
    for week in range(weeks):
        day = start + timedelta(weeks=week)
        for n in range(per_week):
            lines.append(
                f"E{week}-{n},C1,P{week}-{n},TREATMENT_COMPLETED,{day.isoformat()}T10:0{n}:00Z,"
                f"{kinds[n % 3]},{100 + week}.{n:02d}"
            )
        lines.append(f"B{week},C1,PB{week},APPOINTMENT_SCHEDULED,{day.isoformat()}T09:00:00Z,,")
    return ("\n".join(lines) + "\n").encode()

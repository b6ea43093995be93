"""What the end-to-end tests share: the channel and the sample, small multi-week files, a
share as Slack sends it, a job's thread as a user reads it, and a cluster of `serve` and
`worker` processes."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import date, timedelta
from typing import Any

from bot.app import Service
from bot.jobs.job import Job
from tests.aws import ScaleOut
from tests.helpers import HEADER, ROOT
from tests.processes import Process, serve_process
from tests.standin.slack import APP_TOKEN, BOT_TOKEN, BOT_USER_ID, SlackStandIn

CHANNEL = "C0CLINIC"
SAMPLE = (ROOT / "samples" / "events-sample.csv").read_bytes()

StartBot = Callable[..., Awaitable[Service]]  # the start_bot fixture: Settings fields -> Service


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


async def share(slack: SlackStandIn, file_id: str, *, user: str = "UALICE") -> None:
    """Both events Slack sends for one upload, each acked."""
    first = await slack.send_event(slack.file_shared_event(file_id, user=user))
    second = await slack.send_event(slack.file_share_event(file_id, user=user))
    await slack.wait_ack(first)
    await slack.wait_ack(second)


def start_and_thread(
    slack: SlackStandIn, file_name: str
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The bot's start message for `file_name` and the replies under it."""
    [start] = [
        m
        for m in slack.messages(CHANNEL)
        if m.get("user") == BOT_USER_ID and not m.get("files") and file_name in m["text"]
    ]
    return start, slack.thread(CHANNEL, start["ts"])


def slack_env(slack: SlackStandIn) -> dict[str, str]:
    """The environment of a `serve` (or `worker`) process that talks to the stand-in."""
    return {
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_APP_TOKEN": APP_TOKEN,
        "SLACK_API_URL": slack.base_url,
        "PROGRESS_INTERVAL_SECONDS": "0.2",
    }


@contextlib.asynccontextmanager
async def cluster(
    slack: SlackStandIn, scale_out: ScaleOut, *, serves: int, workers: int, **env: str
) -> AsyncIterator[tuple[list[Process], list[Process]]]:
    """`serves` serve processes (each a Socket Mode connection) and `workers` workers."""
    common = {**slack_env(slack), **scale_out.env, "JOB_CONCURRENCY": "2", **env}
    async with contextlib.AsyncExitStack() as stack:
        serving = []
        for number in range(serves):
            serving.append(await stack.enter_async_context(serve_process(common)))
            await slack.wait_for_connection(count=number + 1)
        working = [
            await stack.enter_async_context(serve_process(common, role="worker"))
            for _ in range(workers)
        ]
        yield serving, working


def finished(processes: list[Process]) -> list[dict[str, Any]]:
    """Every job.finished line the processes logged."""
    return [line for process in processes for line in process.events("job.finished")]

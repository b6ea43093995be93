"""JobRunner on its own: retention of finished jobs, and the bound on how many are kept."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from bot.errors import DownloadError
from bot.jobs import runner as jobs_module
from bot.jobs.job import Job
from bot.jobs.replies import SilentReplier
from bot.jobs.runner import JobRunner
from bot.sources import CallbackSource, SourceInfo
from tests.helpers import csv_of

CSV = csv_of("E1,C1,P1,TREATMENT_COMPLETED,2024-01-02T10:00:00Z,cleaning,10.00").encode()


def source(name: str = "events.csv", data: bytes = CSV) -> CallbackSource:
    async def chunks() -> AsyncIterator[bytes]:
        yield data

    return CallbackSource(SourceInfo(kind="upload", name=name, label=name), chunks)


async def run(runner: JobRunner, name: str = "events.csv") -> str:
    job = await runner.submit(source(name), SilentReplier())
    await runner.wait_until(lambda: job.done.is_set(), 10)
    return job.id


async def test_a_finished_job_is_kept_for_the_retention_period_then_forgotten() -> None:
    """Within JOB_RETENTION_MINUTES it is found; after, get() no longer has it."""
    kept = JobRunner(retention_s=3600)
    job_id = await run(kept)
    job = kept.get(job_id)
    assert job is not None
    assert job.status == "succeeded"

    forgetful = JobRunner(retention_s=0)
    job_id = await run(forgetful)
    assert forgetful.get(job_id) is None
    assert forgetful.recent() == []


async def test_the_number_of_finished_jobs_kept_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Beyond MAX_JOBS_KEPT the oldest finished jobs go first; the newest stay."""
    monkeypatch.setattr(jobs_module, "MAX_JOBS_KEPT", 3)
    runner = JobRunner(retention_s=3600)
    ids = [await run(runner, f"events-{n}.csv") for n in range(6)]
    await run(runner, "last.csv")
    recent = [job.id for job in runner.recent()]
    assert len(recent) == 3
    assert recent[1:3] == [ids[5], ids[4]]
    assert ids[0] not in recent


async def test_a_source_that_fails_mid_stream_fails_the_job_with_its_words() -> None:
    """A SourceError from the download becomes the job's error; the runner goes on."""

    async def broken() -> AsyncIterator[bytes]:
        yield CSV[:40]
        raise DownloadError("the download from Slack failed (HTTP 500); try again later")

    runner = JobRunner()
    job = await runner.submit(
        CallbackSource(SourceInfo(kind="slack", name="x.csv", label="x.csv"), broken),
        SilentReplier(),
    )
    await runner.wait_until(lambda: job.done.is_set(), 10)
    assert job.status == "failed"
    assert job.error is not None
    assert "HTTP 500" in job.error
    second = await run(runner)
    again = runner.get(second)
    assert again is not None
    assert again.status == "succeeded"


class Recording(SilentReplier):
    def __init__(self) -> None:
        self.positions: list[int | None] = []

    async def announce(self, job: Job, queue_position: int | None) -> None:
        self.positions.append(queue_position)


async def test_jobs_submitted_at_once_get_distinct_places_in_line() -> None:
    """With 2 slots, 4 jobs at once: 2 start, the others are 1 and 2 in line, never both 1."""
    release = asyncio.Event()

    async def held() -> AsyncIterator[bytes]:
        await release.wait()
        yield CSV

    runner = JobRunner(concurrency=2)
    replier = Recording()
    sources = [
        CallbackSource(SourceInfo(kind="upload", name=f"{n}.csv", label=""), held) for n in range(4)
    ]
    submitted = await asyncio.gather(*(runner.submit(s, replier) for s in sources))
    assert replier.positions == [None, None, 1, 2]
    assert [runner.queue_position(job) for job in submitted] == [None, None, 1, 2]
    release.set()
    await runner.wait_until(lambda: all(job.done.is_set() for job in submitted), 10)
    assert all(job.status == "succeeded" for job in submitted)

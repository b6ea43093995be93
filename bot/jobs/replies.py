"""Repliers that are not Slack: the console (`serve` in local mode) and none at all (a job
only the job API shows). The Slack one is bot.slack.replier."""

from __future__ import annotations

import asyncio
import sys
from typing import TextIO

from bot.jobs.job import Job
from bot.report.artifacts import ReportFile
from bot.report.currency import format_money
from bot.store import MAX_ATTEMPTS, ReplySpec
from bot.words import PAUSED, read_again
from processing import REASONS, Progress, WeeklyReport, estimate, to_text
from processing.text import displayable
from processing.words import INVALID_ROWS, file_size, reason_words, waiting_for_a_slot


class ConsoleReplier:
    """Local mode: the same sequence as in Slack, as lines on a terminal."""

    def __init__(self, currency: str, out: TextIO | None = None) -> None:
        self._currency = currency
        self._out = out if out is not None else sys.stdout

    def spec(self) -> ReplySpec:
        return ReplySpec(kind="console")

    def _say(self, job: Job, text: str) -> None:
        self._out.write(f"[job {job.id}] {text}\n")
        self._out.flush()

    async def announce(self, job: Job, queue_position: int | None) -> None:
        size = f" ({file_size(job.source.size_bytes)})" if job.source.size_bytes else ""
        queued = f", {waiting_for_a_slot(queue_position)}" if queue_position else ""
        self._say(job, f"processing {displayable(job.source.name)}{size}{queued}")

    async def running(self, job: Job) -> None:
        self._say(job, read_again(job.attempt, MAX_ATTEMPTS) if job.attempt > 1 else "started")

    async def paused(self, job: Job) -> None:
        self._say(job, PAUSED)

    async def progress(self, job: Job, progress: Progress) -> None:
        self._say(job, progress_line(progress, job.source.size_bytes, self._currency))

    async def succeeded(self, job: Job, report: WeeklyReport, *, post_summary: bool) -> None:
        text = await asyncio.to_thread(to_text, report, job.source.name, self._currency)
        self._say(job, f"done in {job.duration_s or 0:,.1f}s")
        self._out.write(text)
        self._out.flush()

    async def files_ready(self, job: Job, files: list[ReportFile], *, post_files: bool) -> None:
        # The console shows the report as text; the files are in the job API, if kept.
        if job.files_missing:
            self._say(job, job.files_missing)

    async def failed(self, job: Job, reason: str) -> None:
        self._say(job, f"failed: {displayable(reason)}")


def progress_line(progress: Progress, total_bytes: int | None, currency: str) -> str:
    parts = [
        f"{progress.rows_total:,} rows",
        f"{progress.rows_valid:,} valid",
        f"{progress.rows_invalid:,} invalid",
        f"revenue {format_money(progress.revenue_cents, currency)}",
    ]
    percent = estimate(progress.bytes_read, total_bytes, 0.0).percent
    if percent is not None:
        parts.insert(0, f"{percent}%")
    errors = [
        f"{reason_words(reason)} {progress.invalid_by_reason[reason]:,}"
        for reason in REASONS
        if progress.invalid_by_reason.get(reason)
    ]
    if errors:
        parts.append(f"{INVALID_ROWS} by reason: " + ", ".join(errors))
    return ", ".join(parts)


class SilentReplier:
    """A job only the job API shows (a web upload when no Slack channel is set)."""

    def spec(self) -> ReplySpec:
        return ReplySpec(kind="silent")

    async def paused(self, job: Job) -> None:
        pass

    async def announce(self, job: Job, queue_position: int | None) -> None:
        pass

    async def running(self, job: Job) -> None:
        pass

    async def progress(self, job: Job, progress: Progress) -> None:
        pass

    async def succeeded(self, job: Job, report: WeeklyReport, *, post_summary: bool) -> None:
        pass

    async def files_ready(self, job: Job, files: list[ReportFile], *, post_files: bool) -> None:
        pass

    async def failed(self, job: Job, reason: str) -> None:
        pass

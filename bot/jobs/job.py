"""A job as a process runs it, and the two seams the runner works through: the Replier
(what people see of a job) and Reopen (a job found in the store, made runnable again)."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field
from typing import Protocol

from bot.report.artifacts import ReportFile
from bot.sources import Source, SourceInfo
from bot.store import JobRecord, ReplySpec
from processing import Progress, WeeklyReport


@dataclass(eq=False, kw_only=True)
class Job(JobRecord):
    """A job as this process runs it: the record, and what only lives while it runs."""

    report: WeeklyReport | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    files_stored: asyncio.Event = field(default_factory=asyncio.Event)  # or given up
    finished_s: float | None = None  # monotonic, for the in-memory retention

    @classmethod
    def of(cls, record: JobRecord) -> Job:
        return cls(**vars(record.record()))


class Replier(Protocol):
    """Tells people about one job: Slack thread, console, or nothing (the job API only)."""

    def spec(self) -> ReplySpec: ...
    async def announce(self, job: Job, queue_position: int | None) -> None: ...
    async def running(self, job: Job) -> None: ...
    async def progress(self, job: Job, progress: Progress) -> None: ...
    async def succeeded(self, job: Job, report: WeeklyReport, *, post_summary: bool) -> None: ...
    async def files_ready(self, job: Job, files: list[ReportFile], *, post_files: bool) -> None:
        """After succeeded(), once the files are made: the files, and the end."""

    async def failed(self, job: Job, reason: str) -> None: ...
    async def paused(self, job: Job) -> None: ...


class Reopen(Protocol):
    """How a job found in the store is run again: its source, its thread, its clean-up."""

    def source(self, info: SourceInfo) -> Source | None:
        """None when the bytes cannot be read again (an upload streamed into the job)."""

    def replier(self, reply: ReplySpec) -> Replier: ...

    async def finished(self, info: SourceInfo) -> None:
        """After the job, whatever its outcome (e.g. delete a staged upload)."""

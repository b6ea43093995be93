"""JobRunner: a source's chunks -> analyze() in a worker thread -> replies, a few at a time.

One runner serves Slack, the web upload and the console alike. It owns every job task (a
reference to each, failures logged), the queue order, progress pacing, retention of finished
jobs for the job API, metrics, and the shutdown grace period.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import io
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Protocol

import structlog

from bot.errors import SourceError
from bot.metrics import Metrics
from bot.sources import Source, SourceInfo, limit_size
from processing import (
    AnalysisCancelled,
    InputError,
    InvalidRowsCsv,
    Progress,
    WeeklyReport,
    analyze,
)
from processing.render import amount

log = structlog.get_logger("bot.jobs")

MAX_JOBS_KEPT = 500
REPLY_TIMEOUT_S = 60.0
CHUNK_WAIT_S = 0.25  # how often a worker blocked on the network re-checks for a stop request
SHUTDOWN_REASON = "interrupted by shutdown: the service was restarting; please try again"


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass(eq=False, kw_only=True)
class Job:
    id: str
    source: SourceInfo
    created_at: datetime
    status: JobStatus = JobStatus.QUEUED
    progress: Progress | None = None  # written by the worker thread, read by the loop
    report: WeeklyReport | None = None
    invalid_rows_csv: str | None = None  # every invalid row (up to 100,000), once finished
    error: str | None = None
    started_s: float | None = None  # monotonic
    finished_s: float | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    done: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def finished(self) -> bool:
        return self.status in (JobStatus.SUCCEEDED, JobStatus.FAILED)

    @property
    def duration_s(self) -> float | None:
        if self.started_s is None:
            return None
        end = self.finished_s if self.finished_s is not None else time.monotonic()
        return end - self.started_s


class Replier(Protocol):
    """Tells people about one job: Slack thread, console, or nothing (the job API only)."""

    async def announce(self, job: Job, queue_position: int | None) -> None: ...
    async def running(self, job: Job) -> None: ...
    async def progress(self, job: Job, progress: Progress) -> None: ...
    async def succeeded(self, job: Job, report: WeeklyReport) -> None: ...
    async def failed(self, job: Job, reason: str) -> None: ...


class NotAccepting(Exception):
    """The service is shutting down and takes no new jobs."""


class JobRunner:
    def __init__(
        self,
        *,
        concurrency: int = 2,
        progress_interval_s: float = 10.0,
        timezone: str = "UTC",
        max_file_size_bytes: int = 1 << 30,
        retention_s: float = 3600.0,
        metrics: Metrics | None = None,
    ) -> None:
        self.progress_interval_s = progress_interval_s
        self.timezone = timezone
        self.max_file_size_bytes = max_file_size_bytes
        self.retention_s = retention_s
        self.metrics = metrics or Metrics()
        self.accepting = True
        self._concurrency = concurrency
        self._slots = asyncio.Semaphore(concurrency)
        self._running = 0
        self._waiting: list[Job] = []
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._tasks: dict[Job, asyncio.Task[None]] = {}
        self._changed = asyncio.Condition()
        self._notifying: set[asyncio.Future[None]] = set()

    # -- submitting and looking up ------------------------------------------------------

    @staticmethod
    def new_job_id() -> str:
        return secrets.token_hex(4)

    async def submit(
        self,
        source: Source,
        replier: Replier,
        *,
        job_id: str | None = None,
        cleanup: Callable[[], Awaitable[None]] | None = None,
    ) -> Job:
        """Announce the job (which may raise, e.g. the bot is not in the channel), then queue it.

        `cleanup` runs once the job has finished, whatever the outcome (e.g. delete a staged upload).
        """
        if not self.accepting:
            raise NotAccepting()
        job = Job(id=job_id or self.new_job_id(), source=source.info, created_at=datetime.now(UTC))
        # Take the place in line before announcing: two jobs submitted at once must not
        # both be told they are first.
        self._waiting.append(job)
        position = self.queue_position(job)
        try:
            with structlog.contextvars.bound_contextvars(job_id=job.id, source=job.source.kind):
                await replier.announce(job, position)
                log.info("job.queued", queue_position=position, size_bytes=job.source.size_bytes)
        except BaseException:
            self._waiting.remove(job)
            raise
        self._prune()
        self._jobs[job.id] = job
        task = asyncio.create_task(self._run(job, source, replier, cleanup), name=f"job-{job.id}")
        self._tasks[job] = task
        task.add_done_callback(lambda _: self._tasks.pop(job, None))
        await self._notify()
        return job

    async def wait_until(self, predicate: Callable[[], bool], timeout_s: float) -> None:
        """Wait until predicate() holds, re-checked whenever a job is submitted, reads a
        block or finishes."""
        async with asyncio.timeout(timeout_s), self._changed:
            await self._changed.wait_for(predicate)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    def _notify_soon(self) -> None:
        task = asyncio.ensure_future(self._notify())
        self._notifying.add(task)  # a reference until it has run
        task.add_done_callback(self._notifying.discard)

    def get(self, job_id: str) -> Job | None:
        self._prune()
        return self._jobs.get(job_id)

    def recent(self) -> list[Job]:
        self._prune()
        return list(reversed(self._jobs.values()))

    def queue_position(self, job: Job) -> int | None:
        """1 for the next job to get a slot; None when it runs, or will the moment it can."""
        if job not in self._waiting:
            return None
        ahead = self._waiting.index(job) + self._running
        return ahead - self._concurrency + 1 if ahead >= self._concurrency else None

    @property
    def active(self) -> int:
        return len(self._tasks)

    def _prune(self) -> None:
        now = time.monotonic()
        for job_id, job in list(self._jobs.items()):
            expired = job.finished_s is not None and now - job.finished_s > self.retention_s
            if expired or (len(self._jobs) > MAX_JOBS_KEPT and job.finished):
                del self._jobs[job_id]

    # -- running ------------------------------------------------------------------------

    async def _run(
        self,
        job: Job,
        source: Source,
        replier: Replier,
        cleanup: Callable[[], Awaitable[None]] | None,
    ) -> None:
        structlog.contextvars.bind_contextvars(job_id=job.id, source=job.source.kind)
        try:
            await self._run_in_slot(job, source, replier)
        finally:
            if cleanup is not None:
                try:
                    await cleanup()
                except Exception:
                    log.exception("job.cleanup_failed")
            job.done.set()  # finished, replied and cleaned up
            await self._notify()

    async def _run_in_slot(self, job: Job, source: Source, replier: Replier) -> None:
        try:
            async with self._slots:
                self._waiting.remove(job)
                if job.stop.is_set():
                    raise AnalysisCancelled()
                self._running += 1
                try:
                    await self._execute(job, source, replier)
                finally:
                    self._running -= 1
        except (asyncio.CancelledError, AnalysisCancelled):
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                task.uncancel()  # cancelled by shutdown: still say so in the thread
            if job in self._waiting:
                self._waiting.remove(job)
            await self._finish(job, replier, error=SHUTDOWN_REASON)

    async def _execute(self, job: Job, source: Source, replier: Replier) -> None:
        job.status = JobStatus.RUNNING
        job.started_s = time.monotonic()
        self.metrics.jobs_active.inc()
        log.info("job.started")
        try:
            await _bounded(replier.running(job), "running")
            ticker = asyncio.create_task(self._tick(job, replier))
            try:
                report = await self._analyze(job, source)
            finally:
                ticker.cancel()
        except AnalysisCancelled:
            raise
        except (InputError, SourceError) as error:
            await self._finish(job, replier, error=str(error))
        except Exception:
            log.exception("job.crashed")
            await self._finish(
                job,
                replier,
                error=f"something went wrong on our side (job {job.id}); please try again",
            )
        else:
            await self._finish(job, replier, report=report)
        finally:
            self.metrics.jobs_active.dec()

    async def _analyze(self, job: Job, source: Source) -> WeeklyReport:
        loop = asyncio.get_running_loop()
        chunks = limit_size(source.chunks(), self.max_file_size_bytes)
        invalid_out = io.StringIO()
        invalid_rows = InvalidRowsCsv(invalid_out)

        def on_progress(progress: Progress) -> None:
            job.progress = progress
            loop.call_soon_threadsafe(self._notify_soon)

        report = await asyncio.to_thread(
            analyze,
            _blocking(chunks, loop, job.stop),
            timezone=self.timezone,
            on_progress=on_progress,
            cancelled=job.stop.is_set,
            on_invalid_rows=invalid_rows.add,
        )
        invalid_rows.close()
        job.invalid_rows_csv = invalid_out.getvalue() if invalid_rows.written else None
        return report

    async def _tick(self, job: Job, replier: Replier) -> None:
        """Progress updates spaced by the interval: never more often, skipped when unchanged."""
        shown: Progress | None = None
        while True:
            await asyncio.sleep(self.progress_interval_s)
            progress = job.progress
            if progress is None or progress is shown:
                continue
            shown = progress
            try:
                await asyncio.wait_for(replier.progress(job, progress), REPLY_TIMEOUT_S)
            except Exception as error:  # a missed update is not worth failing the job
                log.warning("job.progress_update_failed", error=type(error).__name__)

    async def _finish(
        self,
        job: Job,
        replier: Replier,
        *,
        report: WeeklyReport | None = None,
        error: str | None = None,
    ) -> None:
        job.finished_s = time.monotonic()
        job.report = report
        job.error = error
        job.status = JobStatus.SUCCEEDED if report is not None else JobStatus.FAILED
        self._count(job)
        if report is not None:
            job.progress = Progress(
                rows_total=report.rows_total,
                rows_valid=report.rows_valid,
                revenue_cents=report.revenue_cents,
                bytes_read=report.bytes_read,
                invalid_by_reason={r: s.count for r, s in report.errors.items()},
            )
            await _bounded(replier.succeeded(job, report), "succeeded")
        else:
            await _bounded(replier.failed(job, error or "failed"), "failed")
        progress = job.progress
        log.info(
            "job.finished",
            status=job.status.value,
            rows=progress.rows_total if progress else 0,
            invalid=progress.rows_invalid if progress else 0,
            revenue=amount(progress.revenue_cents) if progress else "0.00",
            weeks=len(report.weeks) if report else None,
            duration_s=round(job.duration_s or 0.0, 3),
            error=error,
        )

    def _count(self, job: Job) -> None:
        metrics = self.metrics
        metrics.jobs.labels(job.source.kind, job.status.value).inc()
        if job.duration_s is not None:
            metrics.job_duration.observe(job.duration_s)
        progress = job.progress
        if progress is not None:
            metrics.rows.inc(progress.rows_total)
            metrics.bytes_read.inc(progress.bytes_read)
            for reason, count in progress.invalid_by_reason.items():
                metrics.invalid_rows.labels(reason).inc(count)

    # -- shutting down ------------------------------------------------------------------

    async def shutdown(self, grace_s: float) -> None:
        """Take no new jobs; let running ones finish for grace_s; fail the rest, saying why."""
        self.accepting = False
        tasks = list(self._tasks.values())
        if not tasks:
            return
        log.info("jobs.draining", jobs=len(tasks), grace_s=grace_s)
        for job in list(self._waiting):
            job.stop.set()
            if job in self._tasks:
                self._tasks[job].cancel()
        _, pending = await asyncio.wait(tasks, timeout=grace_s)
        if not pending:
            return
        for job, task in list(self._tasks.items()):
            job.stop.set()
            if not job.finished:  # one already telling its thread how it ended is let finish
                task.cancel()
        await asyncio.wait(pending, timeout=REPLY_TIMEOUT_S)


async def _bounded(reply: object, step: str) -> None:
    """Await a replier step: its failure is logged, never the job's failure."""
    try:
        await asyncio.wait_for(reply, REPLY_TIMEOUT_S)  # type: ignore[arg-type]
    except Exception as error:
        log.warning("job.reply_failed", step=step, error=type(error).__name__)


def _blocking(
    chunks: AsyncIterator[bytes], loop: asyncio.AbstractEventLoop, stop: threading.Event
) -> Iterator[bytes]:
    """The async chunks as a plain iterator for the engine's thread: each chunk is fetched
    on the event loop, so network reads stay async while parsing stays off the loop."""
    try:
        while True:
            future = asyncio.run_coroutine_threadsafe(_next_or_none(chunks), loop)
            while True:
                try:
                    chunk = future.result(timeout=CHUNK_WAIT_S)
                    break
                except concurrent.futures.TimeoutError:
                    if stop.is_set():
                        future.cancel()
                        raise AnalysisCancelled() from None
                except concurrent.futures.CancelledError:
                    raise AnalysisCancelled() from None
            if chunk is None:
                return
            yield chunk
    finally:
        # Closes the HTTP response or S3 body; not awaited, since this generator may be
        # finalised on any thread.
        if not loop.is_closed():
            asyncio.run_coroutine_threadsafe(_close(chunks), loop)


async def _next_or_none(chunks: AsyncIterator[bytes]) -> bytes | None:
    return await anext(chunks, None)


async def _close(chunks: AsyncIterator[bytes]) -> None:
    aclose = getattr(chunks, "aclose", None)
    if aclose is not None:
        with contextlib.suppress(Exception):
            await aclose()

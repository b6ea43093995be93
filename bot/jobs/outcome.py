"""How a job ends, whatever ran it: its report rendered once and kept, its record saved
(waiting out a store outage), metrics counted, and its replies: the summary exactly once, the
files, or the failure in words.

```
finish(report)  render the report's JSON (off the loop) -> store it -> record succeeded ->
                count -> mark "summary posted" (conditional: one summary, whatever restarts
                or workers did) -> summary -> CSVs and chart made and stored -> files posted
finish(error)   record failed -> count -> the failure in the thread
```
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import stamina
import structlog

from bot.errors import StoreError, StoreFullError, StoreUnavailableError
from bot.jobs.job import Job, Replier
from bot.metrics import Metrics
from bot.report import artifacts
from bot.report.artifacts import CHART_FAILED, CHART_PNG_NAME, ReportFile
from bot.store import JobStatus, JobStore
from bot.store.sqlite import SqliteJobStore
from bot.words import FILES_NOT_KEPT, FILES_NOT_STORED, not_drawn
from processing import Progress, WeeklyReport, amount

log = structlog.get_logger("bot.jobs")
T = TypeVar("T")

REPLY_TIMEOUT_S = 60.0


class Outcome:
    def __init__(
        self,
        *,
        store: JobStore,
        metrics: Metrics,
        currency: str,
        retention_s: float,
        store_patience_s: float | None,
        on_change: Callable[[], None],
    ) -> None:
        """`store_patience_s`: how long an outcome waits for an unavailable store (None:
        until it is back). `on_change`: called once a job's status is final."""
        self.store = store
        self.metrics = metrics
        self.currency = currency
        self.retention_s = retention_s
        self.store_patience_s = store_patience_s
        self._on_change = on_change

    async def finish(
        self,
        job: Job,
        replier: Replier,
        *,
        report: WeeklyReport | None = None,
        invalid_rows_csv: str | None = None,
        error: str | None = None,
    ) -> None:
        job.finished_at = time.time()
        job.finished_s = time.monotonic()
        job.report = report
        job.error = error
        if report is not None:
            job.progress = Progress(
                rows_total=report.rows_total,
                rows_valid=report.rows_valid,
                revenue_cents=report.revenue_cents,
                bytes_read=report.bytes_read,
                invalid_by_reason={r: s.count for r, s in report.errors.items()},
            )
            try:
                # Rendered once, off the loop: a long report (thousands of weeks) must not hold
                # up Socket Mode or the web server.
                rendered = await asyncio.to_thread(
                    artifacts.render_report,
                    report,
                    source_name=job.source.name,
                    currency=self.currency,
                )
                await self.persist("put_report", lambda: self.store.put_artifacts(job.id, rendered))
            except Exception:
                log.exception("job.render_failed")
                report, job.report = None, None
                job.error = error = not_drawn(job.id)
        job.status = JobStatus.SUCCEEDED if report is not None else JobStatus.FAILED
        self._on_change()  # a long poll on the job API answers now
        await self.save_final(job)
        self._count(job)
        if report is not None:
            try:
                first = await self.persist(
                    "mark_summary_posted", lambda: self.store.mark_summary_posted(job.id)
                )
            except StoreError:
                # Past the store's patience. The embedded store has one serve (its lock), so
                # nobody else can post it: post; shared, no summary rather than two.
                first = isinstance(self.store, SqliteJobStore)
            await bounded(replier.succeeded(job, report, post_summary=first), "succeeded")
            files = await self._store_files(job, report, invalid_rows_csv)
            await bounded(replier.files_ready(job, files, post_files=first), "files_ready")
            if self.retention_s == 0 and job.source.kind != "upload":
                # Kept for no time: gone once its files are delivered (a web upload's page
                # still reads it, for an hour). This job only: another one may be between
                # its record and its summary mark.
                try:
                    await self.store.drop_report(job.id)
                except Exception as error:
                    log.warning("store.drop_report_failed", error=type(error).__name__)
        else:
            job.files_stored.set()
            await bounded(replier.failed(job, error or "failed"), "failed")
        progress = job.progress
        log.info(
            "job.finished",
            status=job.status.value,
            rows=progress.rows_total if progress else 0,
            invalid=progress.rows_invalid if progress else 0,
            revenue=amount(progress.revenue_cents) if progress else "0.00",
            weeks=len(report.weeks) if report else None,
            duration_s=round(job.duration_s or 0.0, 3),
            attempt=job.attempt,
            error=error,
        )

    async def _store_files(
        self, job: Job, report: WeeklyReport, invalid_rows_csv: str | None
    ) -> list[ReportFile]:
        """The CSVs and the chart, made once the job has succeeded and its summary is out,
        and stored in one go, the chart last (bot/artifacts.py). One that cannot be made is
        logged and left out (the chart stored as CHART_FAILED); the job stays a success: its
        report has every figure."""
        made: dict[str, bytes] = {}
        try:
            made = await asyncio.to_thread(
                artifacts.render_csvs, report, invalid_rows_csv=invalid_rows_csv
            )
        except Exception:
            log.exception("job.files_failed")
        try:
            made |= await asyncio.to_thread(artifacts.render_chart, report, currency=self.currency)
        except Exception:
            log.exception("job.chart_failed")
            made[CHART_PNG_NAME] = CHART_FAILED
        try:
            await self.persist("put_artifacts", lambda: self.store.put_artifacts(job.id, made))
        except Exception as error:
            # The summary is out and the report's figures are kept: the job succeeded, and
            # says that its files are not there rather than that they never were.
            log.warning("store.put_artifacts_failed", error=type(error).__name__)
            job.files_missing = (
                FILES_NOT_KEPT if isinstance(error, StoreFullError) else FILES_NOT_STORED
            )
            await self.save_final(job)
            return []
        finally:
            job.files_stored.set()
        return artifacts.files(made)

    async def save_final(self, job: Job) -> None:
        try:
            await self.persist("save", lambda: self.store.save(job.record()))
        except Exception as error:
            # The replies still go out; the record stays "running" and a later process
            # or the sweeper takes it up (the summary mark keeps it from being posted twice).
            log.warning("store.save_gave_up", error=type(error).__name__)

    async def persist(self, operation: str, call: Callable[[], Awaitable[T]]) -> T:
        """A store call a job's outcome depends on, tried again while the store is
        unavailable (an outage, a disk I/O error), backing off exponentially with jitter up to
        30 s, for up to store_patience_s (None: until it goes through; a scale-out worker
        holds the job's message meanwhile, so the job is neither lost nor run twice). Each
        failure is logged as store.<operation>_failed and counted."""
        async for attempt in stamina.retry_context(
            on=StoreUnavailableError,
            attempts=None,
            timeout=self.store_patience_s,
            wait_initial=0.5,
            wait_max=30.0,
            wait_jitter=1.0,
        ):
            with attempt:
                try:
                    return await call()
                except StoreUnavailableError as error:
                    log.warning(f"store.{operation}_failed", error=str(error))
                    self.metrics.store_errors.labels(operation).inc()
                    raise
        raise AssertionError("unreachable: stamina raises once it gives up")

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


async def bounded(reply: object, step: str) -> None:
    """Await a replier step: its failure is logged, never the job's failure."""
    try:
        await asyncio.wait_for(reply, REPLY_TIMEOUT_S)  # type: ignore[arg-type]
    except Exception as error:
        log.warning("job.reply_failed", step=step, error=type(error).__name__)

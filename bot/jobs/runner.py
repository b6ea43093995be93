"""JobRunner: a source's chunks -> analyze() in a worker thread -> an outcome, a few at a time.

One runner serves Slack, the web upload and the console alike. It owns every job task (a
reference to each, failures logged), the queue order, progress pacing, metrics and the
shutdown grace period. Every job is a record in a JobStore from the moment it is accepted:

```
submit()   store.add (an idempotency key makes a redelivery the same job), announce,
           then run here, or hand the id to a queue for a worker (scale-out `serve`)
run        store.claim (attempt + 1) -> analyze -> the report's JSON stored -> succeeded ->
           replies (the summary only if store.mark_summary_posted() says it is the first)
           -> the CSVs and the chart made and stored -> the files posted
recover()  at start: jobs a previous process left queued or running run again from the
           start in their thread, at most MAX_ATTEMPTS in all; a streamed upload cannot be
           read again and fails saying so
```
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import io
import os
import secrets
import socket
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor

import structlog

from bot.errors import (
    NotAcceptingError,
    SourceError,
    StoreError,
    StoreFullError,
)
from bot.jobs.job import Job, Reopen, Replier
from bot.jobs.outcome import REPLY_TIMEOUT_S, Outcome, bounded
from bot.jobs.read_ahead import Paced, ReadAhead
from bot.jobs.slots import Slot, Slots
from bot.metrics import Metrics
from bot.sources import Source, UploadSource, limit_size
from bot.store import (
    MAX_ATTEMPTS,
    Claim,
    JobRecord,
    JobStatus,
    JobStore,
    UploadFingerprint,
    now_utc,
)
from bot.store.sqlite import SqliteJobStore
from bot.words import (
    DISK_LOW,
    RESTART_REASON,
    SHUTDOWN_REASON,
    STORE_FAILED_AT_START,
    exhausted_reason,
    job_crashed,
)
from processing import (
    AnalysisCancelledError,
    InputError,
    InvalidRowsCsv,
    Progress,
    WeeklyReport,
    analyze,
)

log = structlog.get_logger("bot.jobs")

MAX_JOBS_KEPT = 100  # finished jobs this process keeps in memory; the store keeps them all
MEMORY_RETENTION_S = 3600.0
PRUNE_EVERY_S = 3600.0
UPLOAD_KEY_TTL_S = 24 * 3600.0  # an Idempotency-Key names the same upload for a day
MIN_KEY_TTL_S = 24 * 3600.0
MIN_UPLOAD_RETENTION_S = 3600.0


def worker_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(2)}"


class JobRunner:
    def __init__(
        self,
        *,
        store: JobStore | None = None,
        reopen: Reopen | None = None,
        enqueue: Callable[[str], Awaitable[None]] | None = None,
        concurrency: int = 2,
        progress_interval_s: float = 10.0,
        timezone: str = "UTC",
        currency: str = "USD",
        max_file_size_bytes: int = 1 << 30,
        uploads_in_flight: int = 8,
        retention_s: float = 3600.0,
        durable: bool = False,
        metrics: Metrics | None = None,
        worker: str | None = None,
        store_patience_s: float | None = 60.0,
    ) -> None:
        """`enqueue`: scale-out `serve`, which records and announces jobs and leaves the
        running to workers. `durable`: the store outlives the process, so a shutdown hands
        unfinished jobs back rather than failing them."""
        self.store: JobStore = store if store is not None else SqliteJobStore(None)
        self.reopen = reopen
        self.enqueue = enqueue
        self.progress_interval_s = progress_interval_s
        self.timezone = timezone
        self.currency = currency
        self.max_file_size_bytes = max_file_size_bytes
        self.retention_s = retention_s
        self.durable = durable
        self.metrics = metrics or Metrics()
        self.worker = worker or worker_name()
        self.store_patience_s = store_patience_s
        self.accepting = True
        self._concurrency = concurrency
        self._slots = Slots(concurrency)
        # The engine's own threads: a job paused for its upload's bytes keeps its thread, so
        # the default executor (S3 calls, rendering) must not be where they wait. Started
        # analyses stay within the slots plus the uploads in flight (bot/slots.py); a worker
        # in `serve` runs as many again.
        self._engine_threads = ThreadPoolExecutor(
            max_workers=2 * concurrency + uploads_in_flight, thread_name_prefix="analysis"
        )
        self._waiting: list[Job] = []
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._tasks: dict[Job, asyncio.Task[None]] = {}
        self._changed = asyncio.Condition()
        self._notifying: set[asyncio.Future[None]] = set()
        self._upkeep: asyncio.Task[None] | None = None
        self.outcome = Outcome(
            store=self.store,
            metrics=self.metrics,
            currency=currency,
            retention_s=retention_s,
            store_patience_s=store_patience_s,
            on_change=self._notify_soon,
        )

    async def start(self) -> None:
        """Open the store, take up what a previous process left, prune now and then."""
        await self._prune_store()
        self._upkeep = asyncio.create_task(self._prune_now_and_then())

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
        idempotency_key: str | None = None,
        key_ttl_s: float | None = None,
        fingerprint: UploadFingerprint | None = None,
        recorded: bool = False,
    ) -> Job:
        """Record the job, announce it (which may raise, e.g. the bot is not in the channel),
        then run it here or queue it for a worker. With an idempotency key that names a job
        already, raise Duplicate (from the store) and do nothing else. `recorded`: the
        store has the job already (an upload staged in S3, its key taken when it began), so
        its record is brought up to date instead, and left to the caller if this fails."""
        if not self.accepting:
            raise NotAcceptingError()
        if not await self.store.has_room():
            raise StoreFullError(DISK_LOW)
        job = Job(
            id=job_id or self.new_job_id(),
            source=source.info,
            reply=replier.spec(),
            created_at=now_utc(),
            idempotency_key=idempotency_key,
            fingerprint=fingerprint,
        )
        await self._record_new(job, recorded=recorded, key_ttl_s=key_ttl_s)
        # Take the place in line before announcing: two jobs submitted at once must not
        # both be told they are first.
        local = self.enqueue is None
        if local:
            self._waiting.append(job)
        self._remember(job)
        try:
            runs_here = await self._announce(job, replier, local=local)
        except BaseException:
            if job in self._waiting:
                self._waiting.remove(job)
            self._jobs.pop(job.id, None)
            if not recorded:
                with contextlib.suppress(Exception):
                    await self.store.discard(job.id)
            raise
        if runs_here:
            self._start(job, source, replier)
        elif job in self._waiting:
            self._waiting.remove(job)
        await self._notify()
        return job

    async def _record_new(self, job: Job, *, recorded: bool, key_ttl_s: float | None) -> None:
        if recorded:
            await self.store.save(job.record())
            return
        await self.store.add(
            job.record(),
            # A share or upload seen is remembered a day at least, whatever the
            # retention: a restart must not take Slack's redelivery for a new share.
            key_ttl_s=max(self.retention_s if key_ttl_s is None else key_ttl_s, MIN_KEY_TTL_S),
        )

    async def _announce(self, job: Job, replier: Replier, *, local: bool) -> bool:
        """Tell people the job is queued, keep where that was said, and queue it for a
        worker (scale-out). Whether it runs in this process."""
        position = self.queue_position(job)
        with structlog.contextvars.bound_contextvars(job_id=job.id, source=job.source.kind):
            await replier.announce(job, position)
            log.info("job.queued", queue_position=position, size_bytes=job.source.size_bytes)
        job.reply = replier.spec()
        # Where the thread is: kept through an outage (the sweeper leaves a job whose
        # thread is not on record yet alone meanwhile), or the job is given up. Only
        # while it is still queued: a sweeper that took it up after a long outage has
        # queued it again, and its worker's record must not be overwritten.
        kept = await self.outcome.persist("save", lambda: self.store.save_queued(job.record()))
        if not kept:
            log.warning("job.taken_up_meanwhile", job_id=job.id)
            return False  # it runs where it was taken up
        if not local:
            assert self.enqueue is not None
            await self.enqueue(job.id)
            log.info("job.enqueued", job_id=job.id)
        return local

    def _remember(self, job: Job) -> None:
        self._prune()
        self._jobs[job.id] = job

    def _start(self, job: Job, source: Source, replier: Replier) -> None:
        task = asyncio.create_task(self._run(job, source, replier), name=f"job-{job.id}")
        self._tasks[job] = task
        task.add_done_callback(lambda _: self._tasks.pop(job, None))

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
        """A job this process has run or queued lately (in memory)."""
        self._prune()
        return self._jobs.get(job_id)

    def recent(self) -> list[Job]:
        self._prune()
        return list(reversed(self._jobs.values()))

    def _live(self, job_id: str) -> Job | None:
        """This process's own copy of a job when it is the one to trust: any job it runs or
        queues itself, but in scale-out only one it runs (a job it put on the queue runs on
        a worker, and the store's record is the fresh one)."""
        job = self.get(job_id)
        if job is None or (self.enqueue is not None and job.worker != self.worker):
            return None
        return job

    async def lookup(self, job_id: str) -> JobRecord | None:
        """A job by id: this process's own if it runs it (live progress, queue place), else
        the store's record, as long as it is within the retention period."""
        job = self._live(job_id)
        if job is not None:
            return job
        record = await self.store.get(job_id)
        if record is None or self._expired(record):
            return None
        return record

    async def listed(self, kind: str, limit: int) -> list[JobRecord]:
        """The newest jobs of one source kind, fresh from this process where it runs them."""
        records = await self.store.recent(kind, limit)
        return [self._live(record.id) or record for record in records if not self._expired(record)]

    def _expired(self, record: JobRecord) -> bool:
        return record.finished_at is not None and time.time() - record.finished_at > (
            self.upload_retention_s if record.source.kind == "upload" else self.retention_s
        )

    def queue_position(self, job: JobRecord) -> int | None:
        """1 for the next job to get a slot; None when it runs, or will the moment it can."""
        if not isinstance(job, Job) or job not in self._waiting:
            return None
        ahead = self._waiting.index(job) + self._slots.held + self._slots.resuming
        return ahead - self._concurrency + 1 if ahead >= self._concurrency else None

    @property
    def active(self) -> int:
        return len(self._tasks)

    def _prune(self) -> None:
        now = time.monotonic()
        kept_s = min(self.retention_s, MEMORY_RETENTION_S)
        for job_id, job in list(self._jobs.items()):
            expired = job.finished_s is not None and now - job.finished_s > kept_s
            if expired or (len(self._jobs) > MAX_JOBS_KEPT and job.finished):
                del self._jobs[job_id]

    @property
    def upload_retention_s(self) -> float:
        """A web upload's report is kept at least an hour: the page that sent it shows it."""
        return max(self.retention_s, MIN_UPLOAD_RETENTION_S)

    async def _prune_store(self) -> None:
        now = time.time()
        await self.store.prune(
            finished_before=now - self.retention_s,
            uploads_finished_before=now - self.upload_retention_s,
        )

    async def _prune_quietly(self) -> None:
        try:
            await self._prune_store()
        except Exception as error:
            log.warning("store.prune_failed", error=type(error).__name__)

    async def _prune_now_and_then(self) -> None:
        while True:
            await asyncio.sleep(PRUNE_EVERY_S)
            await self._prune_quietly()

    # -- taking up what a previous process left -----------------------------------------

    async def recover(self) -> int:
        """Run again the jobs a previous process left unfinished; the number taken up."""
        if self.reopen is None:
            return 0
        taken = 0
        for record in await self.store.unfinished():
            job = Job.of(record)
            replier = self.reopen.replier(record.reply)
            source = self.reopen.source(record.source)
            with structlog.contextvars.bound_contextvars(job_id=job.id, source=job.source.kind):
                log.info("job.recovered", attempt=job.attempt, resumable=source is not None)
            self._remember(job)
            if source is None and record.idempotency_key is not None:
                # An upload that never arrived whole: the same key may send it again.
                await self._forget_key(record.idempotency_key, record.id)
            if record.status is JobStatus.STAGING:
                # An upload cut off on its way into S3: failed now, before anything looks
                # for staged parts to abort (bot/web/staging.py).
                await self.outcome.finish(job, replier, error=RESTART_REASON)
                await self.ended(job)
            elif source is None:
                self._start_failure(job, replier, RESTART_REASON)
            else:
                self._waiting.append(job)
                self._start(job, source, replier)
                taken += 1
        await self._notify()
        return taken

    async def _forget_key(self, key: str, job_id: str) -> None:
        try:
            await self.store.forget_key(key, job_id)
        except Exception as error:  # it lapses on its own within a day
            log.warning("store.forget_key_failed", error=type(error).__name__)

    async def fail_now(self, job: Job, replier: Replier, reason: str) -> None:
        """End a job that nobody runs (the sweeper's), saying why where people look."""
        structlog.contextvars.bind_contextvars(job_id=job.id, source=job.source.kind)
        try:
            await self.outcome.finish(job, replier, error=reason)
        finally:
            await self.ended(job)

    def _start_failure(self, job: Job, replier: Replier, reason: str) -> None:
        async def fail() -> None:
            structlog.contextvars.bind_contextvars(job_id=job.id, source=job.source.kind)
            try:
                await self.outcome.finish(job, replier, error=reason)
            finally:
                await self.ended(job)

        task = asyncio.create_task(fail(), name=f"job-{job.id}")
        self._tasks[job] = task
        task.add_done_callback(lambda _: self._tasks.pop(job, None))

    # -- running ------------------------------------------------------------------------

    async def _run(self, job: Job, source: Source, replier: Replier) -> None:
        structlog.contextvars.bind_contextvars(job_id=job.id, source=job.source.kind)
        try:
            await self._run_in_slot(job, source, replier)
        finally:
            await self.ended(job)

    async def ended(self, job: Job) -> None:
        """After a job ran here (or on this worker): clean-up once it has finished."""
        if self.reopen is not None and job.finished:
            try:
                await self.reopen.finished(job.source)
            except Exception:
                log.exception("job.cleanup_failed")
        job.done.set()  # finished (or handed back), replied and cleaned up
        await self._notify()

    async def _run_in_slot(self, job: Job, source: Source, replier: Replier) -> None:
        slot = Slot(self._slots)
        try:
            try:
                await slot.take()
                self._waiting.remove(job)
                if job.stop.is_set():
                    raise AnalysisCancelledError()
                # One process owns its store: a lease of 0 lets the next process take
                # over whatever this one leaves running.
                claim = await self.store.claim(job.id, worker=self.worker, lease_s=0.0)
                await self.run_claimed(job, claim, source, replier, slot=slot)
            finally:
                slot.give()
        except (asyncio.CancelledError, AnalysisCancelledError):
            _uncancel()
            if job in self._waiting:
                self._waiting.remove(job)
            await self._interrupted(job, replier)
        except StoreError as error:
            # The store failed as the job began (a full disk, an error past its patience):
            # the job ends saying so, rather than staying "running" with nobody told.
            log.warning("store.job_start_failed", error=type(error).__name__)
            if not job.finished:
                await self.outcome.finish(job, replier, error=STORE_FAILED_AT_START)

    async def run_claimed(
        self,
        job: Job,
        claim: Claim,
        source: Source | None,
        replier: Replier,
        *,
        slot: Slot | None = None,
    ) -> None:
        """Run a job that `claim` gave this process (here, or on a scale-out worker). Stopped
        by shutdown (job.stop, or the task cancelled), it is handed back or failed. With
        `slot`, a job reading an upload gives it back while the upload's bytes are late."""
        if claim.outcome == "exhausted":
            log.warning("job.exhausted", attempts=job.attempt)
            await self.outcome.finish(job, replier, error=exhausted_reason(MAX_ATTEMPTS))
            return
        if claim.outcome != "claimed" or claim.record is None or source is None:
            log.info("job.not_claimed", outcome=claim.outcome)
            return
        job.attempt = claim.record.attempt
        self._remember(job)  # a worker's own copy: live progress for the job API here
        try:
            await self._execute(job, source, replier, slot)
        except (asyncio.CancelledError, AnalysisCancelledError):
            _uncancel()
            await self._interrupted(job, replier)

    async def _interrupted(self, job: Job, replier: Replier) -> None:
        """Stopped by shutdown: hand the job back when a later process can run it again,
        otherwise fail it saying why."""
        resumable = (
            self.durable and self.reopen is not None and self.reopen.source(job.source) is not None
        )
        if not resumable:
            await self.outcome.finish(job, replier, error=SHUTDOWN_REASON)
            return
        await self.store.release(job.id, worker=self.worker)
        job.status, job.progress = JobStatus.QUEUED, None
        log.info("job.handed_back")
        await bounded(replier.paused(job), "paused")

    async def _execute(self, job: Job, source: Source, replier: Replier, slot: Slot | None) -> None:
        job.status = JobStatus.RUNNING
        self._notify_soon()
        job.started_at = time.time()
        job.worker = self.worker
        await self.outcome.persist("save", lambda: self.store.save(job.record()))
        self.metrics.jobs_active.inc()
        log.info("job.started", attempt=job.attempt)
        try:
            await bounded(replier.running(job), "running")
            ticker = asyncio.create_task(self._tick(job, replier))
            try:
                report, invalid_rows_csv = await self._analyze(job, source, slot)
            finally:
                ticker.cancel()
        except AnalysisCancelledError:
            raise
        except (InputError, SourceError) as error:
            await self.outcome.finish(job, replier, error=str(error))
        except Exception:
            log.exception("job.crashed")
            await self.outcome.finish(
                job,
                replier,
                error=job_crashed(job.id),
            )
        else:
            await self.outcome.finish(
                job, replier, report=report, invalid_rows_csv=invalid_rows_csv
            )
        finally:
            self.metrics.jobs_active.dec()

    async def _analyze(
        self, job: Job, source: Source, slot: Slot | None
    ) -> tuple[WeeklyReport, str | None]:
        loop = asyncio.get_running_loop()
        chunks = limit_size(source.chunks(), self.max_file_size_bytes)
        invalid_out = io.StringIO()
        invalid_rows = InvalidRowsCsv(invalid_out)

        def on_progress(progress: Progress) -> None:
            job.progress = progress
            loop.call_soon_threadsafe(self._notify_soon)

        paced = None
        if slot is not None and isinstance(source, UploadSource):
            paced = Paced(source, slot, on_pause=self._notify_soon)  # queue places moved
        reader = ReadAhead(chunks, loop, job.stop, paced=paced)
        reader.start()
        try:
            report = await loop.run_in_executor(
                self._engine_threads,
                functools.partial(
                    analyze,
                    reader.chunks(),
                    timezone=self.timezone,
                    on_progress=on_progress,
                    cancelled=job.stop.is_set,
                    on_invalid_rows=invalid_rows.add,
                ),
            )
        finally:
            await reader.close()
        invalid_rows.close()
        return report, invalid_out.getvalue() if invalid_rows.written else None

    async def _tick(self, job: Job, replier: Replier) -> None:
        """Progress updates spaced by the interval: never more often, skipped when unchanged.
        The store gets the same snapshot, for a job API in another process."""
        shown: Progress | None = None
        while True:
            await asyncio.sleep(self.progress_interval_s)
            progress = job.progress
            if progress is None or progress is shown:
                continue
            shown = progress
            try:
                await asyncio.wait_for(replier.progress(job, progress), REPLY_TIMEOUT_S)
                await self.store.save(job.record())
            except Exception as error:  # a missed update is not worth failing the job
                log.warning("job.progress_update_failed", error=type(error).__name__)

    # -- shutting down ------------------------------------------------------------------

    async def shutdown(self, grace_s: float) -> None:
        """Take no new jobs; let running ones finish for grace_s; the rest are handed back
        (a durable store) or failed, saying why."""
        self.accepting = False
        if self._upkeep is not None:
            self._upkeep.cancel()
        tasks = list(self._tasks.values())
        if tasks:
            log.info("jobs.draining", jobs=len(tasks), grace_s=grace_s)
            for job in list(self._waiting):
                job.stop.set()
                if job in self._tasks:
                    self._tasks[job].cancel()
            _, pending = await asyncio.wait(tasks, timeout=grace_s)
            if pending:
                for job, task in list(self._tasks.items()):
                    job.stop.set()
                    if not job.finished:  # one already telling its thread how it ended is let be
                        task.cancel()
                await asyncio.wait(pending, timeout=REPLY_TIMEOUT_S)
        # Idle engine threads end; one still running finishes on its own (its job stopped).
        self._engine_threads.shutdown(wait=False)


def _uncancel() -> None:
    """Cancelled by shutdown: the task still says so in the thread before it ends."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        task.uncancel()

"""Scale-out workers: take job ids from the queue, claim each job in the store, run it, and
delete the message once the job has ended.

```
receive (long poll, as many as free slots)
  claim: claimed   -> run; every RENEW_EVERY_S extend the message's visibility and the
                      store's lease; delete the message when the job has ended
         finished  -> a duplicate message: delete it
         busy      -> another worker holds a live lease: hide the message until it lapses
         exhausted -> MAX_ATTEMPTS runs began and none ended: fail the job, saying so
```

A worker that dies mid-job stops renewing: its message comes back when the visibility
timeout runs out, and the next worker's claim sees the lease lapsed and takes the job over
from the start, in the same Slack thread (the summary mark keeps it from being posted
twice). On SIGTERM a worker stops receiving, lets running jobs finish for the grace
period, and hands the rest back (queued again, the message visible at once).
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from bot.errors import StoreUnavailableError
from bot.jobs.job import Job, Reopen
from bot.jobs.queue import JobQueue, QueueMessage
from bot.jobs.runner import JobRunner
from bot.metrics import Metrics

log = structlog.get_logger("bot.worker")

LEASE_S = 180.0  # how long a claim holds without renewal: three missed renewals
RENEW_EVERY_S = 60.0
RECEIVE_WAIT_S = 5  # long polling; a stop waits at most this long for the last receive
RETRY_RECEIVE_S = 5.0


class Worker:
    def __init__(
        self,
        *,
        runner: JobRunner,
        queue: JobQueue,
        reopen: Reopen,
        concurrency: int,
        metrics: Metrics,
        lease_s: float = LEASE_S,
        renew_every_s: float = RENEW_EVERY_S,
        receive_wait_s: int = RECEIVE_WAIT_S,
    ) -> None:
        self._runner = runner
        self._queue = queue
        self._reopen = reopen
        self._concurrency = concurrency
        self._metrics = metrics
        self._lease_s = lease_s
        self._renew_every_s = renew_every_s
        self._receive_wait_s = receive_wait_s
        self._handling: dict[asyncio.Task[None], Job | None] = {}
        self._slot_freed = asyncio.Event()
        self._receiving: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def name(self) -> str:
        return self._runner.worker

    def start(self) -> None:
        self._receiving = asyncio.create_task(self._receive(), name="worker-receive")
        log.info("worker.started", worker=self.name, concurrency=self._concurrency)

    async def _receive(self) -> None:
        while not self._stopping:
            free = self._concurrency - len(self._handling)
            if free <= 0:
                self._slot_freed.clear()
                await self._slot_freed.wait()
                continue
            try:
                messages = await self._queue.receive(free, self._receive_wait_s)
            except Exception as error:
                log.warning("queue.receive_failed", error=type(error).__name__)
                await asyncio.sleep(RETRY_RECEIVE_S)
                continue
            for message in messages:
                if self._stopping:  # received while stopping: straight back to the queue
                    with contextlib.suppress(Exception):
                        await self._queue.extend(message, 0)
                    continue
                task = asyncio.create_task(self._handle(message), name=f"worker-{message.job_id}")
                self._handling[task] = None
                task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._handling.pop(task, None)
        self._slot_freed.set()

    async def _handle(self, message: QueueMessage) -> None:
        structlog.contextvars.bind_contextvars(job_id=message.job_id, worker=self.name)
        try:
            await self._claim_and_run(message)
        except StoreUnavailableError as error:
            # The store is away: the message comes back after its visibility timeout (and,
            # after three receives, the sweeper takes it from the dead-letter queue).
            log.warning("store.claim_failed", error=str(error))
            self._metrics.store_errors.labels("claim").inc()
        except Exception:
            # The message comes back after its visibility timeout; after three receives the
            # queue's redrive policy sets it aside.
            log.exception("worker.message_failed", receive_count=message.receive_count)

    async def _claim_and_run(self, message: QueueMessage) -> None:
        store = self._runner.store
        claim = await store.claim(message.job_id, worker=self.name, lease_s=self._lease_s)
        if claim.outcome in ("finished", "missing"):
            log.info("worker.duplicate_dropped", outcome=claim.outcome)
            self._metrics.duplicates.inc()
            await self._delete(message)
            return
        if claim.outcome == "busy":
            # Another worker holds the job: look again when its lease would have lapsed.
            await self._queue.extend(message, claim.lease_left_s + 1)
            return
        assert claim.record is not None
        job = Job.of(claim.record)
        replier = self._reopen.replier(claim.record.reply)
        source = self._reopen.source(claim.record.source)
        if source is None and claim.outcome == "claimed":
            # This worker lacks what reads it (Slack tokens, S3): leave it to one that has.
            log.error("worker.source_unreadable", kind=claim.record.source.kind)
            await store.release(job.id, worker=self.name)
            await self._queue.extend(message, 0)
            return
        task = asyncio.current_task()
        if task is not None:
            self._handling[task] = job  # so that a stop can reach it
        if claim.takeover:
            self._metrics.takeovers.inc()
            log.info("worker.took_over", attempt=claim.record.attempt)
        keeping = asyncio.create_task(self._keep(job, message))
        try:
            await self._runner.run_claimed(job, claim, source, replier)
        finally:
            keeping.cancel()
            await self._runner.ended(job)
        if job.finished:
            self._metrics.worker_jobs.labels(self.name, job.status.value).inc()
            await self._delete(message)
        else:  # handed back at shutdown: the next worker may start at once
            await self._queue.extend(message, 0)

    async def _delete(self, message: QueueMessage) -> None:
        """Done with the message. If the queue cannot be reached, it comes back after its
        visibility timeout and the next claim drops it: the job has ended."""
        try:
            await self._queue.delete(message)
        except Exception as error:
            log.warning("queue.delete_failed", error=type(error).__name__)

    async def _keep(self, job: Job, message: QueueMessage) -> None:
        """Hold the job while it runs, and while its outcome waits for the store: the
        message stays hidden on this worker's own clock, whether or not the store answers
        (a store outage must not let the message come back, be received again and again,
        and end in the dead-letter queue while the job still runs); the lease is renewed
        when the store can be reached."""
        store = self._runner.store
        # A task of its own: a store that hangs (paused, not down) must not delay it.
        hiding = asyncio.create_task(self._hide(message))
        try:
            while True:
                await asyncio.sleep(self._renew_every_s)
                try:
                    async with asyncio.timeout(self._renew_every_s):
                        held = await store.renew(job.id, worker=self.name, lease_s=self._lease_s)
                except Exception as error:
                    log.warning("store.renew_failed", error=type(error).__name__)
                    self._metrics.store_errors.labels("renew").inc()
                    continue
                self._metrics.lease_renewals.inc()
                if not held:
                    # Another worker took the job over (this one stalled past its lease).
                    log.warning("worker.lease_lost")
                    job.stop.set()
                    return
        finally:
            hiding.cancel()

    async def _hide(self, message: QueueMessage) -> None:
        """The message stays hidden, renewed every third of the lease on this clock."""
        while True:
            try:
                await self._queue.extend(message, self._lease_s)
            except Exception as error:
                log.warning("queue.extend_failed", error=type(error).__name__)
            await asyncio.sleep(self._renew_every_s)

    async def stop(self, grace_s: float) -> None:
        """Stop receiving; running jobs get grace_s to finish, then are handed back."""
        self._stopping = True
        self._slot_freed.set()
        tasks = list(self._handling)
        if tasks:
            log.info("worker.draining", jobs=len(tasks), grace_s=grace_s)
            _, pending = await asyncio.wait(tasks, timeout=grace_s)
            for task in pending:
                job = self._handling.get(task)
                if job is not None:
                    job.stop.set()
                else:
                    task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=60)
        if self._receiving is not None:
            self._receiving.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._receiving
        log.info("worker.stopped", worker=self.name)

"""Scale-out: the sweeper takes up jobs that an outage (or a crash) left with no one to run
them, so that every job ends, exactly once, and says so.

An outage of the job store (DynamoDB) strands jobs two ways: their messages are received
again and again while the store cannot be reached and end in the dead-letter queue, and a
job whose claim, lease or outcome could not be written has no live worker and no message.
Every `serve` and `worker` runs a sweeper; one at a time sweeps, holding a lease in the
store, every SWEEP_INTERVAL_SECONDS:

```
dead letters     each message's job: ended -> dropped; attempts left -> queued again;
                 none left -> failed, saying so in its thread and the job API; held by a
                 live worker (its lease renewed) -> left to it
stranded jobs    every 5 minutes, a backstop for jobs with no message at all (a serve gone
                 between recording and queueing one): queued or running with no live lease
                 for 15 minutes (or 4 leases) and not swept since: the same
```

Each of these is a conditional write in the store (the job still has no live lease, and was
not swept since), so a worker's outcome is never overwritten and a job is never queued twice
by two sweeps; a second message for a job is harmless anyway (the claim decides).
```

After an outage the sweeper waits a lease before judging: the workers that held jobs
through it renew their leases first. Receives that failed during the outage are not
attempts (attempts count the runs started), so a job the outage interrupted runs again.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import structlog

from bot.errors import StoreUnavailableError
from bot.jobs.job import Job, Reopen
from bot.jobs.queue import JobQueue
from bot.jobs.runner import JobRunner
from bot.metrics import Metrics
from bot.store import MAX_ATTEMPTS, JobRecord
from bot.store.dynamo import DynamoJobStore
from bot.words import exhausted_reason, store_outage_reason

log = structlog.get_logger("bot.sweeper")

OUTAGE_REMEMBERED_S = 3600.0  # a job failed within an hour of an outage names it
MIN_OUTAGE_NAMED_S = 5.0  # a throttled call or two is not an outage worth naming
STRANDED_AFTER_S = 900.0
SCAN_EVERY_S = 300.0


class Sweeper:
    def __init__(
        self,
        *,
        runner: JobRunner,
        store: DynamoJobStore,
        queue: JobQueue,
        reopen: Reopen,
        metrics: Metrics,
        lease_s: float,
        interval_s: float,
    ) -> None:
        self._runner = runner
        self._store = store
        self._queue = queue
        self._reopen = reopen
        self._metrics = metrics
        self._lease_s = lease_s
        self._interval_s = interval_s
        self._dead_letters: JobQueue | None = None
        self._scanned_at = float("-inf")
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._now_and_then(), name="sweeper")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _now_and_then(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            try:
                await self.sweep()
            except StoreUnavailableError as error:
                log.warning("store.sweep_failed", error=str(error))
                self._metrics.store_errors.labels("sweep").inc()
            except Exception:
                log.exception("sweeper.failed")

    async def sweep(self) -> None:
        store = self._store
        if not await store.take_sweeper_lease(self._runner.worker, 3 * self._interval_s):
            return
        if time.monotonic() - store.last_outage_ended < self._lease_s:
            return  # the workers that held jobs through the outage renew first
        await self._sweep_dead_letters()
        if time.monotonic() - self._scanned_at >= max(self._lease_s, SCAN_EVERY_S):
            self._scanned_at = time.monotonic()
            # A backstop for jobs with no message at all (a serve gone between recording and
            # queueing a job): long after anything that waits in a queue would have run.
            lapsed_before = time.time() - max(4 * self._lease_s, STRANDED_AFTER_S)
            for record in await store.stranded(lapsed_before=lapsed_before):
                await self._take_up(record, "stranded", lapsed_before)

    async def _sweep_dead_letters(self) -> None:
        if self._dead_letters is None:
            self._dead_letters = await self._queue.dead_letter_queue()
            if self._dead_letters is None:
                return
        for message in await self._dead_letters.receive(10, 0):
            record = await self._store.get(message.job_id)
            if record is None or record.finished:
                self._act("dropped", message.job_id)
            else:
                await self._take_up(record, "dead_letter", time.time() - self._lease_s)
            await self._dead_letters.delete(message)

    async def _take_up(self, record: JobRecord, found: str, lapsed_before: float) -> None:
        """Queue it again, or fail it when its attempts are spent; either only if, in the
        same conditional write, no live worker holds it (one that does ends it itself)."""
        store = self._store
        if record.attempt >= MAX_ATTEMPTS:
            reason = self.reason()
            if await store.fail_stranded(record.id, lapsed_before=lapsed_before, reason=reason):
                await self._fail(record, reason)
                self._act("failed", record.id, found=found)
            else:
                self._act("left_to_its_worker", record.id, found=found)
            return
        if await store.take_up(record.id, lapsed_before=lapsed_before):
            await self._queue.send(record.id)
            self._act("requeued", record.id, found=found, attempt=record.attempt)
        else:
            self._act("left_to_its_worker", record.id, found=found)

    async def _fail(self, record: JobRecord, reason: str) -> None:
        """Failed where people look: its Slack thread and start message, the job API."""
        job = Job.of(record)
        replier = self._reopen.replier(record.reply)
        await self._runner.fail_now(job, replier, reason)

    def reason(self) -> str:
        store = self._store
        recent = time.monotonic() - store.last_outage_ended < OUTAGE_REMEMBERED_S
        if recent and store.last_outage_s >= MIN_OUTAGE_NAMED_S:
            return store_outage_reason(store.last_outage_s)
        return exhausted_reason(MAX_ATTEMPTS)

    def _act(self, action: str, job_id: str, **fields: object) -> None:
        self._metrics.sweeper_actions.labels(action).inc()
        log.info(f"sweeper.{action}", job_id=job_id, **fields)

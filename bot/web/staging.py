"""Uploads on their way into S3 (S3_BUCKET set): on record from their first byte, and never
left behind as parts nobody will complete.

```
begin     the job's record, status `staging`, its key taken; a heartbeat every 30 s
          while the body arrives (so another `serve` can tell a live upload from a dead one)
staged    the job is submitted and queues like any other (intake.stage_in_s3)
failed    the record says why (the upload stalled, was too slow, too large, cut off), the
          key is freed so the same file may be sent again, the multipart upload aborted
sweep     at start and every hour: every incomplete multipart upload under uploads/ that
          belongs to no live staging (its record finished, gone, or its heartbeat lapsed) is
          aborted, and a lapsed staging record is failed, saying the upload was interrupted
```

A process killed while staging leaves an incomplete multipart upload (billed until aborted)
and a `staging` record; the embedded store's recovery fails the record at the next start
(one process owns it), the sweep aborts the parts.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field, replace

import structlog

from bot.aws import s3
from bot.errors import S3Error
from bot.jobs.runner import UPLOAD_KEY_TTL_S
from bot.sources import SourceInfo
from bot.store import JobRecord, JobStatus, ReplySpec, UploadFingerprint, now_utc
from bot.web.context import WebContext
from bot.words import RESTART_REASON

log = structlog.get_logger("bot.web")

HEARTBEAT_EVERY_S = 30.0
LAPSED_AFTER_S = 4 * HEARTBEAT_EVERY_S
SWEEP_EVERY_S = 3600.0
STAGING_PREFIX = "uploads/"


@dataclass(eq=False)
class Staging:
    """One upload being staged: its record and where its bytes go."""

    context: WebContext
    record: JobRecord
    location: s3.S3Location
    _live: set[str]
    _beat: asyncio.Task[None] | None = field(default=None, repr=False)
    _stopping: asyncio.Event = field(default_factory=asyncio.Event, repr=False)
    _saving: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)

    @classmethod
    async def begin(
        cls,
        context: WebContext,
        *,
        job_id: str,
        info: SourceInfo,
        key: str | None,
        fingerprint: UploadFingerprint | None = None,
    ) -> Staging:
        """On record (raises Duplicate, from the store, if the key names a job already)."""
        bucket = context.settings.s3_bucket
        assert bucket is not None
        location = s3.S3Location(bucket, f"{STAGING_PREFIX}{job_id}/{info.name}")
        record = JobRecord(
            id=job_id,
            source=replace(info, locator={"bucket": bucket, "key": location.key}),
            reply=ReplySpec(kind="silent"),
            created_at=now_utc(),
            status=JobStatus.STAGING,
            worker=context.jobs.worker,
            idempotency_key=key,
            fingerprint=fingerprint,
            heartbeat_at=time.time(),
        )
        await context.jobs.store.add(record, key_ttl_s=UPLOAD_KEY_TTL_S)
        live = context.staging_live
        live.add(job_id)
        staging = cls(context, record, location, live)
        staging._beat = asyncio.create_task(staging._heartbeat())
        log.info("upload.staging", job_id=job_id)
        return staging

    async def _heartbeat(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(HEARTBEAT_EVERY_S):
                    await self._stopping.wait()
            if self._stopping.is_set():
                return
            self.record.heartbeat_at = time.time()
            try:
                await self.save()
            except Exception as error:  # the next beat tries again
                log.warning("upload.heartbeat_failed", error=type(error).__name__)

    async def save(self) -> None:
        """The record as it is now, one save at a time: DynamoDB's saves run on threads of
        their own, and an older snapshot must not land after a newer one."""
        async with self._saving:
            await self.context.jobs.store.save(self.record.record())

    async def stop_heartbeat(self) -> None:
        """Stop beating, a save under way included: none may land after the record moves on."""
        self._stopping.set()
        self._live.discard(self.record.id)
        if self._beat is not None:
            await self._beat

    async def failed(self, reason: str) -> None:
        """The upload did not arrive whole: the record says why, the key is freed."""
        await self.stop_heartbeat()
        record = self.record
        record.status, record.error, record.finished_at = JobStatus.FAILED, reason, time.time()
        store = self.context.jobs.store
        try:
            await self.save()
            if record.idempotency_key is not None:
                await store.forget_key(record.idempotency_key, record.id)
        except Exception as error:  # the sweep fails it later, the key lapses in a day
            log.warning("upload.staging_not_closed", error=type(error).__name__)
        log.info("job.finished", job_id=record.id, status="failed", error=reason, staged=False)


async def sweep(context: WebContext) -> int:
    """Abort the incomplete multipart uploads under uploads/ that no live staging will
    complete, and fail staging records whose heartbeat lapsed. The number aborted."""
    client, bucket = context.s3_client, context.settings.s3_bucket
    if client is None or bucket is None:
        return 0
    now = time.time()
    uploads = await asyncio.to_thread(s3.incomplete_uploads, client, bucket, STAGING_PREFIX)
    aborted = 0
    for upload in uploads:
        if not await _abandoned(context, upload, now):
            continue
        try:
            await asyncio.to_thread(s3.abort_upload, client, bucket, upload)
        except S3Error as error:
            log.warning("upload.abort_failed", error=str(error))
            continue
        aborted += 1
    for record in await context.jobs.store.recent("upload", 100):
        if (
            record.status is JobStatus.STAGING
            and record.id not in context.staging_live
            and _lapsed(record, context, now)
        ):
            await _fail_lapsed(context, record)
    if aborted:
        log.info("upload.parts_aborted", uploads=aborted)
    return aborted


async def _abandoned(context: WebContext, upload: s3.IncompleteUpload, now: float) -> bool:
    """Whether no staging will complete this multipart upload (its record, if it was
    staging, is failed on the way)."""
    job_id = upload.key[len(STAGING_PREFIX) :].split("/", 1)[0]
    if job_id in context.staging_live:
        return False
    record = await context.jobs.store.get(job_id)
    if record is None:
        return now - upload.initiated >= LAPSED_AFTER_S  # else another instance is beginning it
    if record.status is JobStatus.STAGING:
        if not _lapsed(record, context, now):
            return False
        await _fail_lapsed(context, record)
    return True


def _lapsed(record: JobRecord, context: WebContext, now: float) -> bool:
    """A staging nobody is receiving: any not live here when this process owns the store
    (the embedded store has one `serve`), else one whose heartbeat stopped."""
    if not context.settings.scale_out or record.worker == context.jobs.worker:
        return True
    return now - (record.heartbeat_at or 0.0) > LAPSED_AFTER_S


async def _fail_lapsed(context: WebContext, record: JobRecord) -> None:
    record.status, record.error, record.finished_at = (
        JobStatus.FAILED,
        RESTART_REASON,
        time.time(),
    )
    with contextlib.suppress(Exception):
        await context.jobs.store.save(record)
        if record.idempotency_key is not None:  # never arrived whole: the key may start anew
            await context.jobs.store.forget_key(record.idempotency_key, record.id)
    log.info("job.finished", job_id=record.id, status="failed", error=RESTART_REASON, staged=False)


async def sweep_now_and_then(context: WebContext) -> None:
    """At start, then every hour."""
    while True:
        try:
            await sweep(context)
        except Exception as error:
            log.warning("upload.sweep_failed", error=type(error).__name__)
        await asyncio.sleep(SWEEP_EVERY_S)

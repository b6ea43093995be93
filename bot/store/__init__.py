"""Where jobs live beyond one process: their records, their reports and the keys that make a
share or an upload one job however often it arrives.

```
JobStore (protocol)
├── SqliteJobStore   the embedded default: DATA_DIR/jobs.sqlite3, WAL, one writer thread
└── DynamoJobStore   scale-out: a DynamoDB table for records and keys, S3 for reports
```

Every method is a coroutine and none blocks the event loop: SQLite runs on a thread of its
own, boto3 in worker threads. The conditional writes (`add` with a key, `claim`,
`mark_summary_posted`) are atomic in both, so several processes may share one store.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from bot.store.records import (
    FINISHED,
    MAX_ATTEMPTS,
    Claim,
    Duplicate,
    JobRecord,
    JobStatus,
    ReplySpec,
    UploadFingerprint,
    now_utc,
)

__all__ = [
    "FINISHED",
    "MAX_ATTEMPTS",
    "Claim",
    "Duplicate",
    "JobRecord",
    "JobStatus",
    "JobStore",
    "ReplySpec",
    "UploadFingerprint",
    "now_utc",
]

REPORT_JSON = "report.json"  # the job API's report, treatment names and words, as JSON


class JobStore(Protocol):
    async def add(self, record: JobRecord, *, key_ttl_s: float = 0.0) -> None:
        """Store a new job. With `record.idempotency_key`, atomically: if the key names a
        job already (within its time to live), raise Duplicate with that job's id."""

    async def held_by(self, key: str) -> str | None:
        """The job an idempotency key names now, if any (add() decides atomically)."""

    async def discard(self, job_id: str) -> None:
        """Forget a job that never started (its announcement failed), key and all."""

    async def forget_key(self, key: str, job_id: str) -> None:
        """Free an idempotency key if it still names that job (its upload never arrived
        whole, so the same key may send the file again)."""

    async def save(self, record: JobRecord) -> None:
        """Write the record's status, progress, error, timings and reply."""

    async def save_queued(self, record: JobRecord) -> bool:
        """Save a job's record only while it is still queued and no sweeper took it up
        since: where its thread is, once announced. False when it was taken up (a worker
        runs it now, and announces it itself)."""

    async def get(self, job_id: str) -> JobRecord | None: ...

    async def recent(self, kind: str, limit: int) -> list[JobRecord]:
        """Jobs of one source kind, newest first."""

    async def unfinished(self) -> list[JobRecord]:
        """Jobs staging, queued or running: what a process that stopped without finishing
        left (the embedded store only; in scale-out the queue keeps them)."""

    async def claim(
        self, job_id: str, *, worker: str, lease_s: float, max_attempts: int = MAX_ATTEMPTS
    ) -> Claim:
        """Take a job to run it: queued, or running under a lapsed lease, with attempts left.
        The attempt count goes up by one, atomically."""

    async def renew(self, job_id: str, *, worker: str, lease_s: float) -> bool:
        """Extend the lease; False when this worker no longer holds it."""

    async def release(self, job_id: str, *, worker: str) -> None:
        """Hand a job back unfinished (graceful shutdown): queued again, the attempt undone."""

    async def mark_summary_posted(self, job_id: str) -> bool:
        """True the first time only: the summary is posted once, whoever finishes the job."""

    async def put_artifacts(self, job_id: str, artifacts: Mapping[str, bytes]) -> None: ...

    async def artifact(self, job_id: str, name: str) -> bytes | None: ...

    async def drop_report(self, job_id: str) -> None:
        """Forget one finished job and its report now (its keys stay)."""

    async def prune(
        self, *, finished_before: float, uploads_finished_before: float | None = None
    ) -> int:
        """Forget jobs finished before that epoch second (web uploads' before the other
        one, when given), their reports, and lapsed keys."""

    async def writable(self) -> bool:
        """Whether a write goes through right now."""

    async def has_room(self) -> bool:
        """Whether new jobs may be taken: their disk is not nearly full."""

    async def state(self) -> str:
        """For /health: "ok", or what is wrong ("unwritable", "damaged", "unreachable")."""

    async def close(self) -> None: ...

"""What a job is, durably: the record every store keeps, and how it reads as JSON.

A record holds everything needed to run the job again from the start after a restart, or
on another worker: where its bytes come from (`source`, with a locator), where people are
told about it (`reply`: the Slack thread's channel and message timestamps), and where it is
(status, attempt, progress, error, timings). Never a value of a row: a file's name, sizes,
counts and amounts only.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal, Self

from msgspec import structs

from bot.sources import SourceInfo
from processing import Progress

ReplyKind = Literal["slack", "console", "silent"]
MAX_ATTEMPTS = 3


class JobStatus(StrEnum):
    RESERVED = "reserved"  # a two-step upload before its body: only in answers, never stored
    STAGING = "staging"  # an upload being copied to S3 before it queues
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


FINISHED = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED})


@dataclass(frozen=True, slots=True)
class UploadFingerprint:
    """What tells one uploaded file from another without keeping any of it: its size and
    the SHA-256 of its first MiB (each None until known). An Idempotency-Key reused for a
    file that differs in either is refused."""

    size_bytes: int | None = None
    head_sha256: str | None = None

    def same_file(self, other: UploadFingerprint) -> bool | None:
        """False when they differ in what both know, True when they agree on something
        both know, None when nothing is known to both yet."""
        compared = [
            (mine, theirs)
            for mine, theirs in (
                (self.size_bytes, other.size_bytes),
                (self.head_sha256, other.head_sha256),
            )
            if mine is not None and theirs is not None
        ]
        if any(mine != theirs for mine, theirs in compared):
            return False
        return True if compared else None


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplySpec:
    """Where a job's messages go: enough to find its Slack thread again after a restart."""

    kind: ReplyKind
    channel: str | None = None
    start_ts: str | None = None  # the channel message
    progress_ts: str | None = None  # the first reply in its thread, edited as the job runs


@dataclass(kw_only=True, eq=False)
class JobRecord:
    id: str
    source: SourceInfo
    reply: ReplySpec
    created_at: datetime
    status: JobStatus = JobStatus.QUEUED
    attempt: int = 0  # runs started so far, this one included
    started_at: float | None = None  # epoch seconds of the current attempt
    finished_at: float | None = None
    progress: Progress | None = None
    error: str | None = None
    worker: str | None = None  # who holds the lease (scale-out), or stages the upload
    idempotency_key: str | None = None
    fingerprint: UploadFingerprint | None = None  # web uploads: which file the key names
    heartbeat_at: float | None = None  # staging: epoch second its process last said it lives
    files_missing: str | None = None  # why a succeeded job's chart and CSVs are not kept

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    @property
    def duration_s(self) -> float | None:
        if self.started_at is None:
            return None
        end = self.finished_at if self.finished_at is not None else time.time()
        return max(end - self.started_at, 0.0)

    def record(self) -> JobRecord:
        """The durable part alone (a running Job carries more)."""
        return JobRecord(**{f.name: getattr(self, f.name) for f in fields(JobRecord)})

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "source": asdict(self.source),
            "reply": {
                "kind": self.reply.kind,
                "channel": self.reply.channel,
                "start_ts": self.reply.start_ts,
                "progress_ts": self.reply.progress_ts,
            },
            "created_at": self.created_at.astimezone(UTC).isoformat(),
            "status": self.status.value,
            "attempt": self.attempt,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "progress": None if self.progress is None else structs.asdict(self.progress),
            "error": self.error,
            "worker": self.worker,
            "idempotency_key": self.idempotency_key,
            "fingerprint": None if self.fingerprint is None else asdict(self.fingerprint),
            "heartbeat_at": self.heartbeat_at,
            "files_missing": self.files_missing,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        progress = data.get("progress")
        fingerprint = data.get("fingerprint")
        return cls(
            id=data["id"],
            source=_source_of(data["source"]),
            reply=ReplySpec(**data["reply"]),
            created_at=datetime.fromisoformat(data["created_at"]),
            status=JobStatus(data["status"]),
            attempt=int(data.get("attempt") or 0),
            started_at=data.get("started_at"),
            finished_at=data.get("finished_at"),
            progress=None if progress is None else Progress(**progress),
            error=data.get("error"),
            worker=data.get("worker"),
            idempotency_key=data.get("idempotency_key"),
            fingerprint=None if fingerprint is None else UploadFingerprint(**fingerprint),
            heartbeat_at=data.get("heartbeat_at"),
            files_missing=data.get("files_missing"),
        )


def _source_of(data: dict[str, Any]) -> SourceInfo:
    return SourceInfo(**{**data, "locator": dict(data.get("locator") or {})})


ClaimOutcome = Literal["claimed", "finished", "busy", "exhausted", "missing"]


@dataclass(frozen=True, slots=True)
class Claim:
    """What a worker got when it tried to take a job: it runs it only when `claimed`.
    `takeover`: the job was running under a lease that has lapsed (its worker died)."""

    outcome: ClaimOutcome
    record: JobRecord | None = None
    takeover: bool = False
    lease_left_s: float = 0.0  # for "busy": how long its holder's lease still runs


class Duplicate(Exception):  # noqa: N818 (an answer: the job the key names, not an error)
    """The idempotency key is taken: the job it names answers instead."""

    def __init__(self, job_id: str) -> None:
        super().__init__(job_id)
        self.job_id = job_id


def now_utc() -> datetime:
    return datetime.now(UTC)

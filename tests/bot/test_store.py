"""The job store's contract, the same for SQLite (embedded) and DynamoDB + S3 (scale-out,
against moto's server over real HTTP)."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import structlog

from bot.errors import StoreError
from bot.sources import SourceInfo
from bot.store import Duplicate, JobRecord, JobStatus, JobStore, ReplySpec, UploadFingerprint
from bot.store.dynamo import DynamoJobStore
from bot.store.sqlite import SqliteJobStore
from processing import Progress
from tests.aws import JOB_BUCKET, JOB_TABLE, create_scale_out


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["sqlite", "dynamo"])
async def store_and_clock(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[JobStore, Clock]]:
    clock = Clock()
    store: JobStore
    if request.param == "sqlite":
        store = SqliteJobStore(tmp_path, clock=clock)
    else:
        request.getfixturevalue("aws_env")
        made = create_scale_out()
        store = DynamoJobStore(
            dynamodb=made.dynamodb,
            table=JOB_TABLE,
            s3=made.s3,
            bucket=JOB_BUCKET,
            retention_s=3600,
            clock=clock,
        )
    yield store, clock
    await store.close()


def record(job_id: str, *, key: str | None = None, kind: str = "slack") -> JobRecord:
    return JobRecord(
        id=job_id,
        source=SourceInfo(
            kind=kind,  # type: ignore[arg-type]
            name="events.csv",
            label="events.csv (Slack F1)",
            size_bytes=120,
            locator={"file_id": "F1", "url": "https://files.example/F1"},
        ),
        reply=ReplySpec(kind="slack", channel="C1", start_ts="1.1", progress_ts="1.2"),
        created_at=datetime(2026, 12, 1, tzinfo=UTC),
        idempotency_key=key,
    )


async def test_a_record_reads_back_as_written(store_and_clock: tuple[JobStore, Clock]) -> None:
    """Source with its locator, the thread, status, progress and error survive the store."""
    store, _ = store_and_clock
    job = record("j1")
    await store.add(job)
    job.status = JobStatus.RUNNING
    job.progress = Progress(
        rows_total=10, rows_valid=9, revenue_cents=1234, bytes_read=99, invalid_by_reason={"x": 1}
    )
    await store.save(job)
    back = await store.get("j1")
    assert back is not None
    assert back.to_json() == job.to_json()
    assert await store.get("nope") is None


async def test_a_key_names_one_job_until_it_lapses(store_and_clock: tuple[JobStore, Clock]) -> None:
    """The same idempotency key again: Duplicate naming the first job; after its time to
    live, or once that job is discarded, a new job may take it."""
    store, clock = store_and_clock
    await store.add(record("j1", key="share:F1:C1"), key_ttl_s=60)
    with pytest.raises(Duplicate) as duplicate:
        await store.add(record("j2", key="share:F1:C1"), key_ttl_s=60)
    assert duplicate.value.job_id == "j1"
    assert await store.held_by("share:F1:C1") == "j1"
    clock.now += 61
    await store.add(record("j3", key="share:F1:C1"), key_ttl_s=60)
    assert await store.held_by("share:F1:C1") == "j3"
    await store.discard("j3")
    assert await store.held_by("share:F1:C1") is None
    assert await store.get("j3") is None


async def test_racing_adds_with_one_key_make_one_job(
    store_and_clock: tuple[JobStore, Clock],
) -> None:
    """Ten adds of one key at once: exactly one wins, the others name it."""
    store, _ = store_and_clock
    outcomes = await asyncio.gather(
        *(store.add(record(f"j{n}", key="k"), key_ttl_s=60) for n in range(10)),
        return_exceptions=True,
    )
    winners = [n for n, outcome in enumerate(outcomes) if outcome is None]
    assert len(winners) == 1
    assert all(
        isinstance(outcome, Duplicate) and outcome.job_id == f"j{winners[0]}"
        for outcome in outcomes
        if outcome is not None
    )


async def test_claims_count_attempts_and_respect_live_leases(
    store_and_clock: tuple[JobStore, Clock],
) -> None:
    """Claimed once per attempt; busy while a lease is live; taken over once it lapses;
    exhausted after three; a finished job is only 'finished'."""
    store, clock = store_and_clock
    await store.add(record("j1"))
    first = await store.claim("j1", worker="a", lease_s=30)
    assert (first.outcome, first.takeover, first.record.attempt) == ("claimed", False, 1)  # type: ignore[union-attr]
    busy = await store.claim("j1", worker="b", lease_s=30)
    assert busy.outcome == "busy"
    assert 29 <= busy.lease_left_s <= 30
    assert await store.renew("j1", worker="a", lease_s=30)
    assert not await store.renew("j1", worker="b", lease_s=30)
    clock.now += 31
    second = await store.claim("j1", worker="b", lease_s=30)
    assert (second.outcome, second.takeover, second.record.attempt) == ("claimed", True, 2)  # type: ignore[union-attr]
    assert not await store.renew("j1", worker="a", lease_s=30)  # a lost it
    clock.now += 31
    assert (await store.claim("j1", worker="c", lease_s=30)).outcome == "claimed"
    clock.now += 31
    exhausted = await store.claim("j1", worker="d", lease_s=30)
    assert exhausted.outcome == "exhausted"
    assert exhausted.record is not None
    job = exhausted.record
    job.status, job.finished_at = JobStatus.FAILED, clock.now
    await store.save(job)
    assert (await store.claim("j1", worker="d", lease_s=30)).outcome == "finished"
    assert (await store.claim("missing", worker="d", lease_s=30)).outcome == "missing"


async def test_a_job_handed_back_is_queued_with_its_attempt_undone(
    store_and_clock: tuple[JobStore, Clock],
) -> None:
    """release(): queued again, the attempt not counted, the next claim no takeover."""
    store, _ = store_and_clock
    await store.add(record("j1"))
    await store.claim("j1", worker="a", lease_s=30)
    await store.release("j1", worker="b")  # not b's to release
    assert (await store.get("j1")).status == JobStatus.RUNNING  # type: ignore[union-attr]
    await store.release("j1", worker="a")
    back = await store.get("j1")
    assert back is not None
    assert (back.status, back.attempt) == (JobStatus.QUEUED, 0)
    again = await store.claim("j1", worker="b", lease_s=30)
    assert (again.outcome, again.takeover, again.record.attempt) == ("claimed", False, 1)  # type: ignore[union-attr]


async def test_where_the_thread_is_is_saved_only_while_the_job_waits(
    store_and_clock: tuple[JobStore, Clock],
) -> None:
    """save_queued() records the announced thread of a job still queued; once a worker
    runs it (or a sweeper took it up) the worker's record is left as it is."""
    store, clock = store_and_clock
    await store.add(record("j1"))
    announced = record("j1")
    announced.reply = ReplySpec(kind="slack", channel="C1", start_ts="9.9", progress_ts="9.8")
    assert await store.save_queued(announced)
    assert (await store.get("j1")).reply.start_ts == "9.9"  # type: ignore[union-attr]
    await store.claim("j1", worker="a", lease_s=30)
    assert not await store.save_queued(late_for("j1"))
    kept = await store.get("j1")
    assert kept is not None
    assert (kept.status, kept.reply.start_ts) == (JobStatus.RUNNING, "9.9")
    if isinstance(store, DynamoJobStore):
        await store.add(record("j2"))
        clock.now += 3600
        assert await store.take_up("j2", lapsed_before=clock.now)
        assert not await store.save_queued(late_for("j2"))


def late_for(job_id: str) -> JobRecord:
    """The record a serve would save after announcing it late, past an outage."""
    late = record(job_id)
    late.reply = ReplySpec(kind="slack", channel="C1", start_ts="7.7", progress_ts="7.6")
    return late


async def test_the_summary_mark_is_given_once(store_and_clock: tuple[JobStore, Clock]) -> None:
    store, _ = store_and_clock
    await store.add(record("j1"))
    marks = await asyncio.gather(*(store.mark_summary_posted("j1") for _ in range(5)))
    assert sorted(marks) == [False, False, False, False, True]


async def test_artifacts_unfinished_recent_and_pruning(
    store_and_clock: tuple[JobStore, Clock],
) -> None:
    """Reports by name; unfinished jobs (embedded only: the queue keeps them in scale-out);
    uploads newest first; a finished job past retention is forgotten."""
    store, clock = store_and_clock
    for n, kind in enumerate(["upload", "slack", "upload"]):
        job = record(f"j{n}", kind=kind)
        job.created_at = datetime(2026, 12, 1, 10, n, tzinfo=UTC)
        await store.add(job)
    await store.put_artifacts("j0", {"report.json": b'{"report": 1}', "weekly-report.csv": b"a,b"})
    assert await store.artifact("j0", "report.json") == b'{"report": 1}'
    assert await store.artifact("j0", "chart.png") is None
    assert [job.id for job in await store.recent("upload", 10)] == ["j2", "j0"]
    unfinished = [job.id for job in await store.unfinished()]
    assert unfinished in ([], ["j0", "j1", "j2"])  # DynamoDB: the queue's job
    assert await store.writable()
    done = await store.get("j0")
    assert done is not None
    done.status, done.finished_at = JobStatus.SUCCEEDED, clock.now
    await store.save(done)
    if isinstance(store, SqliteJobStore):
        assert await store.prune(finished_before=clock.now + 1) == 1
        assert await store.artifact("j0", "report.json") is None
    else:  # DynamoDB's TTL and S3's lifecycle rule do it; past expires_at it reads as gone
        clock.now += 3601
    assert await store.get("j0") is None


async def test_a_key_is_freed_only_for_the_job_it_names(
    store_and_clock: tuple[JobStore, Clock],
) -> None:
    """forget_key frees a key that names the job (its upload never arrived whole), and
    leaves it when another job holds it now."""
    store, _ = store_and_clock
    await store.add(record("j1", key="upload:k1"), key_ttl_s=60)
    await store.forget_key("upload:k1", "someone-else")
    assert await store.held_by("upload:k1") == "j1"
    await store.forget_key("upload:k1", "j1")
    assert await store.held_by("upload:k1") is None
    await store.add(record("j2", key="upload:k1"), key_ttl_s=60)  # the key may start anew
    assert await store.held_by("upload:k1") == "j2"


async def test_an_upload_fingerprint_and_heartbeat_read_back(
    store_and_clock: tuple[JobStore, Clock],
) -> None:
    """A staging upload's record keeps its fingerprint and heartbeat through the store."""
    store, _ = store_and_clock
    job = record("j1", kind="upload")
    job.status = JobStatus.STAGING
    job.fingerprint = UploadFingerprint(size_bytes=None, head_sha256="ab" * 32)
    job.heartbeat_at = 1_800_000_030.0
    await store.add(job)
    job.fingerprint = UploadFingerprint(size_bytes=1234, head_sha256="ab" * 32)
    await store.save(job)
    back = await store.get("j1")
    assert back is not None
    assert back.to_json() == job.to_json()
    assert back.status is JobStatus.STAGING


def test_fingerprints_compare_what_both_know() -> None:
    """Differ in what both know: another file; agree on something: the same; nothing in
    common yet: cannot tell."""
    full = UploadFingerprint(size_bytes=10, head_sha256="a")
    assert full.same_file(UploadFingerprint(size_bytes=10)) is True
    assert full.same_file(UploadFingerprint(head_sha256="a")) is True
    assert full.same_file(UploadFingerprint(size_bytes=11)) is False
    assert full.same_file(UploadFingerprint(size_bytes=10, head_sha256="b")) is False
    assert UploadFingerprint(size_bytes=10).same_file(UploadFingerprint(head_sha256="a")) is None


async def test_reports_are_compressed_and_read_back_as_they_were(
    store_and_clock: tuple[JobStore, Clock],
) -> None:
    """A CSV is kept gzip-compressed and comes back byte for byte; a PNG is kept as it is."""
    store, _ = store_and_clock
    await store.add(record("j1"))
    csv_text = b"row,reason,column,detail\n" + b"".join(
        b"%d,invalid_timestamp,event_timestamp,bad date\n" % n for n in range(20_000)
    )
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
    await store.put_artifacts("j1", {"invalid-rows.csv": csv_text, "chart.png": png})
    assert await store.artifact("j1", "invalid-rows.csv") == csv_text
    assert await store.artifact("j1", "chart.png") == png
    if isinstance(store, SqliteJobStore):
        raw = await store._run(
            lambda: store._conn.execute(
                "SELECT name, data FROM artifacts WHERE job_id = 'j1'"
            ).fetchall()
        )
        sizes = {name: bytes(data) for name, data in raw}
        assert sizes["invalid-rows.csv"][:2] == b"\x1f\x8b"
        assert len(sizes["invalid-rows.csv"]) < len(csv_text) / 5
        assert sizes["chart.png"] == png


async def test_past_its_size_the_store_lets_the_oldest_reports_go(tmp_path: Path) -> None:
    """STORE_MAX_MB: storing a report past it removes the oldest finished jobs first, one
    at a time and logged, never the one just stored."""
    clock = Clock()
    store = SqliteJobStore(tmp_path, clock=clock, max_bytes=600_000)
    blob = os.urandom(200_000)  # does not compress
    try:
        with structlog.testing.capture_logs() as logs:
            for n in range(6):
                job = record(f"j{n}")
                job.status, job.finished_at = JobStatus.SUCCEEDED, clock.now + n
                await store.add(job)
                await store.save(job)
                await store.put_artifacts(job.id, {"weekly-report.csv": blob})
        kept = [n for n in range(6) if await store.get(f"j{n}") is not None]
        pruned = [entry["job_id"] for entry in logs if entry["event"] == "store.pruned_for_room"]
    finally:
        await store.close()
    assert kept[-1] == 5
    assert kept == list(range(kept[0], 6))
    assert len(kept) < 6
    assert pruned == [f"j{n}" for n in range(kept[0])]


async def test_a_programming_error_is_not_damage_and_leaves_no_transaction_open(
    tmp_path: Path,
) -> None:
    """A wrong statement is the code's fault, not the file's: the store is not marked
    damaged; and a failure inside a transaction rolls it back, so writes go on."""
    store = SqliteJobStore(tmp_path)
    try:
        with pytest.raises(sqlite3.ProgrammingError):
            await store._run(lambda: store._conn.execute("SELECT ?", ()))

        def half_done() -> None:
            store._conn.execute("BEGIN IMMEDIATE")
            store._conn.execute("INSERT INTO nowhere VALUES (1)")

        with pytest.raises(StoreError):
            await store._run(half_done)
        assert not store.damaged
        assert await store.state() == "ok"
        await store.add(record("after"))
        assert await store.get("after") is not None
    finally:
        await store.close()

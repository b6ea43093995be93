"""The embedded job store: one SQLite file in DATA_DIR (or memory, for tests and the CLI).

One connection on one thread of its own: every call is queued to it, so the event loop never
waits on the disk and writes never interleave. WAL mode lets a restarted process open the
file while the old one is still closing. Attempt, lease and the summary mark live in
columns of their own, changed only by conditional updates, so a record saved from memory
can never undo them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import sqlite3
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import structlog

from bot.errors import (
    StoreDamagedError,
    StoreError,
    StoreFullError,
    StoreTooNewError,
    StoreUnavailableError,
    StoreUnwritableError,
)
from bot.store.packing import pack, unpack
from bot.store.records import FINISHED, Claim, ClaimOutcome, Duplicate, JobRecord, JobStatus

T = TypeVar("T")
log = structlog.get_logger("bot.store")

DB_FILE = "jobs.sqlite3"
SCHEMA_VERSION = 2  # 2: the scopes' history (bot/store/history.py)
BUSY_TIMEOUT_S = 5.0
_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at TEXT NOT NULL,
    finished_at REAL,
    attempt INTEGER NOT NULL DEFAULT 0,
    worker TEXT,
    lease_until REAL,
    summary_posted INTEGER NOT NULL DEFAULT 0,
    record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_by_kind ON jobs (kind, created_at);
CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs (status);
CREATE INDEX IF NOT EXISTS jobs_by_finished ON jobs (finished_at);
CREATE TABLE IF NOT EXISTS artifacts (
    job_id TEXT NOT NULL,
    name TEXT NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (job_id, name)
);
CREATE TABLE IF NOT EXISTS idempotency_keys (
    key TEXT PRIMARY KEY,
    job_id TEXT NOT NULL,
    expires_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS health (id INTEGER PRIMARY KEY, checked_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS scopes (
    name TEXT PRIMARY KEY,
    timezone TEXT NOT NULL,
    currency TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS exports (
    scope TEXT NOT NULL,
    id TEXT NOT NULL,
    finished_at REAL NOT NULL,
    sha256 TEXT NOT NULL,
    source TEXT NOT NULL,
    requested_by TEXT,
    size_bytes INTEGER NOT NULL,
    first_day TEXT,
    last_day TEXT,
    body BLOB NOT NULL,
    PRIMARY KEY (scope, id)
);
CREATE INDEX IF NOT EXISTS exports_by_file ON exports (scope, sha256);
CREATE INDEX IF NOT EXISTS exports_by_age ON exports (scope, finished_at);
"""
_UNFINISHED = (JobStatus.STAGING.value, JobStatus.QUEUED.value, JobStatus.RUNNING.value)


class SqliteJobStore:
    def __init__(
        self,
        data_dir: Path | None,
        *,
        clock: Callable[[], float] = time.time,
        min_free_bytes: int = 0,
        max_bytes: int = 0,
    ) -> None:
        """`data_dir` None: in memory, gone with the process. Below `min_free_bytes` free on
        its volume, the store takes no new jobs and /health says it is low on disk."""
        self.min_free_bytes = min_free_bytes
        self.max_bytes = max_bytes  # 0: no bound
        self._room_checked_at = float("-inf")
        self._room = True
        self.path = None if data_dir is None else data_dir / DB_FILE
        self._clock = clock
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="job-store")
        self._db: sqlite3.Connection | None = None
        self.damaged = False  # a read found a corrupt page: /health says so
        self.on_skipped: Callable[[], None] = lambda: None  # a record that cannot be read

    async def open(self) -> SqliteJobStore:
        await self._run(self._connect)
        return self

    def _connect(self) -> None:
        """Open the file, or say in one line why it cannot be used: DATA_DIR unwritable, the
        file damaged (quick_check) or written by a newer version. DATA_DIR is made 0700 and
        the file 0600 (SQLite gives its -wal and -shm files the same mode)."""
        if self.path is not None:
            _prepare(self.path)
        try:
            db = sqlite3.connect(
                ":memory:" if self.path is None else self.path,
                timeout=BUSY_TIMEOUT_S,
                isolation_level=None,  # autocommit; BEGIN IMMEDIATE where statements go together
                check_same_thread=False,  # only ever used on self._thread
            )
            if self.path is not None:
                found = db.execute("PRAGMA quick_check(1)").fetchone()[0]
                if found != "ok":
                    raise sqlite3.DatabaseError(found)
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreTooNewError(
                    f"the job store {self.path} was written by a newer clinic-events (schema "
                    f"{version}, this one knows {SCHEMA_VERSION}); run that version, or move "
                    "the file aside"
                )
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.executescript(_SCHEMA)  # creates what an older schema lacks (1: the history)
            db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except sqlite3.OperationalError as error:
            raise _unusable(self.path, error) from None
        except sqlite3.DatabaseError as error:
            raise damaged(self.path, error) from None
        self._db = db

    async def _run(self, call: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(
            self._thread, self._guarded, call, *args
        )

    def _guarded(self, call: Callable[..., T], *args: Any) -> T:
        """SQLite's errors as the store's: a corrupt page marks the store damaged (for
        /health) and reads as such; a disk I/O error, a full disk or a lock as unavailable.
        A transaction a failure left open is rolled back, or every later write would fail."""
        try:
            return call(*args)
        except sqlite3.Error as error:
            self._roll_back()
            if getattr(error, "sqlite_errorname", "") in _DAMAGE:
                self.damaged = True
                raise damaged(self.path, error) from None
            if isinstance(error, sqlite3.OperationalError):
                raise _unusable(self.path, error) from None
            raise

    def _roll_back(self) -> None:
        db = self._db
        if db is not None and db.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")

    async def in_transaction(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """`work` on the store's thread in one transaction (BEGIN IMMEDIATE ... COMMIT),
        rolled back if it raises: for the other tables this file keeps (the history)."""
        return await self._run(self._in_transaction, work)

    def _in_transaction(self, work: Callable[[sqlite3.Connection], T]) -> T:
        db = self._conn
        db.execute("BEGIN IMMEDIATE")
        try:
            result = work(db)
        except BaseException:
            self._roll_back()
            raise
        db.execute("COMMIT")
        return result

    @property
    def _conn(self) -> sqlite3.Connection:
        """Opened on first use, on the store's own thread (the only one that touches it)."""
        if self._db is None:
            self._connect()
        assert self._db is not None
        return self._db

    # -- records ----------------------------------------------------------------------------

    async def add(self, record: JobRecord, *, key_ttl_s: float = 0.0) -> None:
        await self._run(self._add, record, key_ttl_s)

    def _add(self, record: JobRecord, key_ttl_s: float) -> None:
        db = self._conn
        now = self._clock()
        db.execute("BEGIN IMMEDIATE")
        try:
            key = record.idempotency_key
            if key is not None:
                row = db.execute(
                    "SELECT job_id FROM idempotency_keys WHERE key = ? AND expires_at > ?",
                    (key, now),
                ).fetchone()
                if row is not None:
                    raise Duplicate(row[0])
                db.execute(
                    "INSERT OR REPLACE INTO idempotency_keys (key, job_id, expires_at) "
                    "VALUES (?, ?, ?)",
                    (key, record.id, now + key_ttl_s),
                )
            db.execute(
                "INSERT INTO jobs (id, kind, status, created_at, finished_at, attempt, worker, "
                "record) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    record.id,
                    record.source.kind,
                    record.status.value,
                    record.created_at.isoformat(),
                    record.finished_at,
                    record.attempt,
                    record.worker,
                    _dumps(record),
                ),
            )
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    async def held_by(self, key: str) -> str | None:
        def held() -> str | None:
            row = self._conn.execute(
                "SELECT job_id FROM idempotency_keys WHERE key = ? AND expires_at > ?",
                (key, self._clock()),
            ).fetchone()
            return None if row is None else str(row[0])

        return await self._run(held)

    async def discard(self, job_id: str) -> None:
        await self._run(self._discard, job_id)

    def _discard(self, job_id: str) -> None:
        db = self._conn
        db.execute("BEGIN IMMEDIATE")
        db.execute("DELETE FROM idempotency_keys WHERE job_id = ?", (job_id,))
        db.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
        db.execute("COMMIT")

    async def forget_key(self, key: str, job_id: str) -> None:
        await self._run(
            lambda: self._conn.execute(
                "DELETE FROM idempotency_keys WHERE key = ? AND job_id = ?", (key, job_id)
            )
        )

    async def save(self, record: JobRecord) -> None:
        await self._run(
            lambda: self._conn.execute(
                "UPDATE jobs SET status = ?, finished_at = ?, record = ? WHERE id = ?",
                (record.status.value, record.finished_at, _dumps(record), record.id),
            )
        )

    async def save_queued(self, record: JobRecord) -> bool:
        # One serve holds the data directory and there is no sweeper: still queued is enough.
        def update() -> bool:
            cursor = self._conn.execute(
                "UPDATE jobs SET record = ? WHERE id = ? AND status = ?",
                (_dumps(record), record.id, JobStatus.QUEUED.value),
            )
            return cursor.rowcount == 1

        return await self._run(update)

    async def get(self, job_id: str) -> JobRecord | None:
        rows = await self._run(self._select, "WHERE id = ?", (job_id,))
        return rows[0] if rows else None

    async def recent(self, kind: str, limit: int) -> list[JobRecord]:
        return await self._run(
            self._select, "WHERE kind = ? ORDER BY created_at DESC LIMIT ?", (kind, limit)
        )

    async def unfinished(self) -> list[JobRecord]:
        return await self._run(
            self._select, "WHERE status IN (?, ?, ?) ORDER BY created_at", _UNFINISHED
        )

    def _select(self, where: str, args: tuple[Any, ...]) -> list[JobRecord]:
        rows = self._conn.execute(f"SELECT record, status, attempt, worker FROM jobs {where}", args)
        records = []
        for record_json, status, attempt, worker in rows:
            try:
                record = JobRecord.from_json(json.loads(record_json))
                record.status, record.attempt, record.worker = JobStatus(status), attempt, worker
            except (ValueError, TypeError, KeyError, AttributeError) as error:
                # One record this version cannot read must not take the list, or the
                # start, with it: it is left where it is, counted and logged.
                log.warning("store.record_skipped", error=type(error).__name__)
                self.on_skipped()
                continue
            records.append(record)
        return records

    # -- running ------------------------------------------------------------------------------

    async def claim(
        self, job_id: str, *, worker: str, lease_s: float, max_attempts: int = 3
    ) -> Claim:
        return await self._run(self._claim, job_id, worker, lease_s, max_attempts)

    def _claim(self, job_id: str, worker: str, lease_s: float, max_attempts: int) -> Claim:
        db = self._conn
        now = self._clock()
        db.execute("BEGIN IMMEDIATE")
        try:
            row = db.execute(
                "SELECT status, attempt, lease_until FROM jobs WHERE id = ?", (job_id,)
            ).fetchone()
            if row is None:
                db.execute("ROLLBACK")
                return Claim("missing")
            status, attempt, lease_until = JobStatus(row[0]), row[1], row[2]
            lapsed = status is JobStatus.RUNNING and (lease_until or 0) <= now
            outcome: ClaimOutcome
            if status in FINISHED:
                outcome = "finished"
            elif status is JobStatus.RUNNING and not lapsed:
                db.execute("ROLLBACK")
                return Claim("busy", lease_left_s=(lease_until or now) - now)
            elif attempt >= max_attempts:
                outcome = "exhausted"
            else:
                db.execute(
                    "UPDATE jobs SET status = ?, attempt = attempt + 1, worker = ?, "
                    "lease_until = ? WHERE id = ?",
                    (JobStatus.RUNNING.value, worker, now + lease_s, job_id),
                )
                outcome = "claimed"
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        [record] = self._select("WHERE id = ?", (job_id,))
        return Claim(outcome, record, takeover=outcome == "claimed" and lapsed)

    async def renew(self, job_id: str, *, worker: str, lease_s: float) -> bool:
        def renew() -> bool:
            cursor = self._conn.execute(
                "UPDATE jobs SET lease_until = ? WHERE id = ? AND worker = ? AND status = ?",
                (self._clock() + lease_s, job_id, worker, JobStatus.RUNNING.value),
            )
            return cursor.rowcount == 1

        return await self._run(renew)

    async def release(self, job_id: str, *, worker: str) -> None:
        def release() -> None:
            db = self._conn
            db.execute("BEGIN IMMEDIATE")
            row = db.execute(
                "SELECT record FROM jobs WHERE id = ? AND worker = ?", (job_id, worker)
            )
            found = row.fetchone()
            if found is not None:
                record = JobRecord.from_json(json.loads(found[0]))
                record.status, record.started_at, record.progress = JobStatus.QUEUED, None, None
                db.execute(
                    "UPDATE jobs SET status = ?, attempt = MAX(attempt - 1, 0), worker = NULL, "
                    "lease_until = NULL, record = ? WHERE id = ? AND worker = ?",
                    (JobStatus.QUEUED.value, _dumps(record), job_id, worker),
                )
            db.execute("COMMIT")

        await self._run(release)

    async def mark_summary_posted(self, job_id: str) -> bool:
        def mark() -> bool:
            cursor = self._conn.execute(
                "UPDATE jobs SET summary_posted = 1 WHERE id = ? AND summary_posted = 0",
                (job_id,),
            )
            return cursor.rowcount == 1

        return await self._run(mark)

    # -- reports ------------------------------------------------------------------------------

    async def put_artifacts(self, job_id: str, artifacts: Mapping[str, bytes]) -> None:
        def put() -> None:
            packed = [(job_id, name, pack(data)) for name, data in artifacts.items()]
            db = self._conn
            db.execute("BEGIN IMMEDIATE")
            try:
                db.executemany(
                    "INSERT OR REPLACE INTO artifacts (job_id, name, data) VALUES (?, ?, ?)",
                    packed,
                )
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
            self._make_room(keep=job_id)

        await self._run(put)

    def _make_room(self, *, keep: str) -> None:
        """Past max_bytes in use, the oldest finished jobs go, reports and all, one at a
        time, each logged, until the store is within it (never the job just stored)."""
        if self.path is None or self.max_bytes <= 0:
            return
        db = self._conn
        if self._used_bytes() <= self.max_bytes:
            return
        gone: list[str] = []
        db.execute("BEGIN IMMEDIATE")
        try:
            # The oldest first, by the finished_at index, in one transaction: never the job
            # just stored, nor a web upload whose page may still read it.
            while self._used_bytes() > self.max_bytes:
                row = db.execute(
                    "SELECT id FROM jobs WHERE finished_at IS NOT NULL AND id != ? AND NOT "
                    "(kind = 'upload' AND finished_at > ?) ORDER BY finished_at LIMIT 1",
                    (keep, self._clock() - 3600.0),
                ).fetchone()
                if row is None:
                    break
                db.execute("DELETE FROM artifacts WHERE job_id = ?", (row[0],))
                db.execute("DELETE FROM jobs WHERE id = ?", (row[0],))
                gone.append(row[0])
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        for job_id in gone:
            log.info("store.pruned_for_room", job_id=job_id, max_mb=self.max_bytes >> 20)

    def _used_bytes(self) -> int:
        db = self._conn
        pages = db.execute("PRAGMA page_count").fetchone()[0]
        free = db.execute("PRAGMA freelist_count").fetchone()[0]
        size = db.execute("PRAGMA page_size").fetchone()[0]
        return int((pages - free) * size)

    async def artifact(self, job_id: str, name: str) -> bytes | None:
        def read() -> bytes | None:
            row = self._conn.execute(
                "SELECT data FROM artifacts WHERE job_id = ? AND name = ?", (job_id, name)
            ).fetchone()
            return None if row is None else unpack(bytes(row[0]))

        return await self._run(read)

    # -- upkeep -------------------------------------------------------------------------------

    async def drop_report(self, job_id: str) -> None:
        def drop() -> None:
            db = self._conn
            db.execute("BEGIN IMMEDIATE")
            db.execute("DELETE FROM artifacts WHERE job_id = ?", (job_id,))
            db.execute("DELETE FROM jobs WHERE id = ? AND finished_at IS NOT NULL", (job_id,))
            db.execute("COMMIT")

        await self._run(drop)

    async def prune(
        self, *, finished_before: float, uploads_finished_before: float | None = None
    ) -> int:
        uploads_before = (
            finished_before if uploads_finished_before is None else uploads_finished_before
        )

        def prune() -> int:
            db = self._conn
            db.execute("BEGIN IMMEDIATE")
            gone = db.execute(
                "DELETE FROM jobs WHERE finished_at IS NOT NULL AND ("
                "(kind != 'upload' AND finished_at < ?) OR (kind = 'upload' AND finished_at < ?))",
                (finished_before, uploads_before),
            ).rowcount
            db.execute("DELETE FROM artifacts WHERE job_id NOT IN (SELECT id FROM jobs)")
            db.execute("DELETE FROM idempotency_keys WHERE expires_at <= ?", (self._clock(),))
            db.execute("COMMIT")
            return gone

        return await self._run(prune)

    async def writable(self) -> bool:
        def probe() -> bool:
            try:
                self._conn.execute(
                    "INSERT OR REPLACE INTO health (id, checked_at) VALUES (1, ?)", (self._clock(),)
                )
            except (sqlite3.Error, StoreError):
                return False
            return True

        return await self._run(probe)

    async def has_room(self) -> bool:
        """Free space on DATA_DIR's volume at least min_free_bytes (looked at once a
        second at most; statvfs runs on the store's thread, never the loop)."""
        if self.path is None or self.min_free_bytes <= 0:
            return True
        if time.monotonic() - self._room_checked_at >= 1.0:
            self._room_checked_at = time.monotonic()
            path = self.path
            free = await self._run(lambda: shutil.disk_usage(path.parent).free)
            self._room = free >= self.min_free_bytes
        return self._room

    async def state(self) -> str:
        """For /health: ok, damaged, low on disk or unwritable."""
        if self.damaged:
            return "damaged"
        if not await self.has_room():
            return "low on disk"
        return "ok" if await self.writable() else "unwritable"

    async def close(self) -> None:
        if self._db is not None:
            await self._run(self._conn.close)
            self._db = None
        self._thread.shutdown(wait=True)


_DAMAGE = frozenset({"SQLITE_CORRUPT", "SQLITE_NOTADB"})


def _prepare(path: Path) -> None:
    """DATA_DIR (0700) and the database file (0600), or one line naming what failed."""
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
        # A folder and a file made by an older version (0755, 0644) are made private too.
        for made, mode in ((path.parent, 0o700), (path, 0o600)):
            if made.stat().st_uid == os.getuid():
                made.chmod(mode)
    except OSError as error:
        raise StoreUnwritableError(
            f"DATA_DIR {path.parent} cannot be used: {error.strerror or error} (the service "
            "needs to create and write it)"
        ) from None


def damaged(path: Path | None, error: BaseException) -> StoreDamagedError:
    detail = str(error).splitlines()[0][:120] if str(error) else type(error).__name__
    return StoreDamagedError(
        f"the job store {path or ':memory:'} is damaged ({detail}): `clinic-events store "
        "check` says more, `clinic-events store quarantine` sets it aside (kept as "
        "jobs.sqlite3.damaged-<time>) so that the service starts empty"
    )


def _unusable(path: Path | None, error: sqlite3.OperationalError) -> StoreError:
    message = str(error)
    if "full" in message:  # SQLITE_FULL: "database or disk is full"
        return StoreFullError(f"the job store {path} cannot be written: its disk is full")
    if "readonly" in message or "unable to open" in message:
        return StoreUnwritableError(f"the job store {path} cannot be written: {message}")
    return StoreUnavailableError(f"the job store {path} cannot be used right now: {message}")


def _dumps(record: JobRecord) -> str:
    return json.dumps(record.to_json(), ensure_ascii=False)

"""The embedded store of the scopes' history: exports added whole or not at all, the same
file known by its SHA-256, a scope's settings kept, the oldest exports dropped past the
bound, a scope forgotten; and a store of the earlier schema opened and given the history."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from datetime import date, timedelta
from pathlib import Path

import pytest

from bot.store.history import ExportFacts, SqliteHistory
from bot.store.sqlite import DB_FILE, SCHEMA_VERSION, SqliteJobStore
from processing import analyze
from processing.history import encode_export, export_of
from tests.helpers import csv_of

MONDAY = date(2024, 1, 1)


def facts(export_id: str, finished_at: float, sha256: str) -> ExportFacts:
    return ExportFacts(
        id=export_id,
        source=f"{export_id}.csv",
        requested_by="U0ALICE",
        finished_at=finished_at,
        sha256=sha256,
        size_bytes=1234,
        first_day=MONDAY,
        last_day=MONDAY + timedelta(days=13),
    )


def body(export_id: str, finished_at: float, cents: int) -> bytes:
    rows = [
        f"e{n},C1,p{n},TREATMENT_COMPLETED,{MONDAY + timedelta(days=n)}T10:00:00Z,x,{cents / 100:.2f}"
        for n in range(14)
    ]
    report = analyze(iter([csv_of(*rows).encode()]))
    return encode_export(export_of(report, export_id=export_id, finished_at=finished_at))


@pytest.fixture
async def history(tmp_path: Path) -> AsyncIterator[SqliteHistory]:
    store = await SqliteJobStore(tmp_path).open()
    yield SqliteHistory(store, max_exports=3)
    await store.close()


async def test_exports_are_kept_in_order_and_merge_into_the_history(
    history: SqliteHistory,
) -> None:
    """Two exports of the same two weeks: listed oldest first, and the newer gives both."""
    for export_id, at, cents in (("a", 1.0, 100), ("b", 2.0, 300)):
        added = await history.add(
            "C1",
            facts(export_id, at, export_id * 64),
            body(export_id, at, cents),
            timezone="UTC",
            currency="USD",
        )
        assert added.outcome == "added"
    assert [e.id for e in await history.exports("C1")] == ["a", "b"]
    found = await history.history("C1")
    assert found is not None
    merged = found.merged
    assert merged.week_exports == ("b", "b")
    assert merged.report.totals.revenue_cents == 14 * 300
    assert (await history.scope("C1")) is not None


async def test_the_same_file_is_known_and_not_added_again(history: SqliteHistory) -> None:
    """A second export with the same SHA-256 answers with the first, and adds nothing."""
    await history.add(
        "C1", facts("a", 1.0, "f" * 64), body("a", 1.0, 100), timezone="UTC", currency="USD"
    )
    again = await history.add(
        "C1", facts("b", 2.0, "f" * 64), body("b", 2.0, 100), timezone="UTC", currency="USD"
    )
    assert again.outcome == "same_file"
    assert again.export is not None
    assert (again.export.id, again.export.requested_by) == ("a", "U0ALICE")
    assert [e.id for e in await history.exports("C1")] == ["a"]
    assert (await history.same_file("C1", "f" * 64)) == again.export
    assert await history.same_file("C2", "f" * 64) is None  # scopes are apart


async def test_an_export_in_other_settings_is_not_added(history: SqliteHistory) -> None:
    """The scope keeps its first export's timezone and currency."""
    await history.add(
        "C1", facts("a", 1.0, "a" * 64), body("a", 1.0, 100), timezone="UTC", currency="USD"
    )
    other = await history.add(
        "C1",
        facts("b", 2.0, "b" * 64),
        body("b", 2.0, 100),
        timezone="Europe/London",
        currency="USD",
    )
    assert other.outcome == "other_settings"
    assert other.scope is not None
    assert (other.scope.timezone, other.scope.currency) == ("UTC", "USD")
    assert [e.id for e in await history.exports("C1")] == ["a"]


async def test_past_the_bound_the_oldest_exports_go(history: SqliteHistory) -> None:
    """At most 3 here (1,000 by default): the fourth drops the oldest."""
    for n in range(4):
        await history.add(
            "C1",
            facts(f"x{n}", float(n), str(n) * 64),
            body(f"x{n}", float(n), 100),
            timezone="UTC",
            currency="USD",
        )
    assert [e.id for e in await history.exports("C1")] == ["x1", "x2", "x3"]


async def test_an_add_that_fails_leaves_nothing_behind(history: SqliteHistory) -> None:
    """A failure after the scope's row was written rolls it back: the scope is not there."""
    with pytest.raises(sqlite3.IntegrityError):
        await history.add(
            "C9",
            facts("a", 1.0, "a" * 64),
            None,  # type: ignore[arg-type]
            timezone="UTC",
            currency="USD",
        )
    assert await history.scope("C9") is None
    assert await history.exports("C9") == []


async def test_a_scope_is_forgotten_whole(history: SqliteHistory) -> None:
    await history.add(
        "C1", facts("a", 1.0, "a" * 64), body("a", 1.0, 100), timezone="UTC", currency="USD"
    )
    assert await history.forget("C1")
    assert await history.scope("C1") is None
    assert await history.exports("C1") == []
    assert not await history.forget("C1")


async def test_a_store_of_the_earlier_schema_gains_the_history(tmp_path: Path) -> None:
    """A version-1 file (jobs only) opens, keeps its jobs table, and takes exports."""
    old = sqlite3.connect(tmp_path / DB_FILE)
    old.execute(
        "CREATE TABLE jobs (id TEXT PRIMARY KEY, kind TEXT NOT NULL, status TEXT NOT NULL, created_at TEXT NOT NULL, finished_at REAL, attempt INTEGER NOT NULL DEFAULT 0, worker TEXT, lease_until REAL, summary_posted INTEGER NOT NULL DEFAULT 0, record TEXT NOT NULL)"
    )
    old.execute("PRAGMA user_version=1")
    old.commit()
    old.close()
    store = await SqliteJobStore(tmp_path).open()
    history = SqliteHistory(store)
    added = await history.add(
        "C1", facts("a", 1.0, "a" * 64), body("a", 1.0, 100), timezone="UTC", currency="USD"
    )
    assert added.outcome == "added"
    await store.close()
    reopened = sqlite3.connect(tmp_path / DB_FILE)
    assert reopened.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 2
    assert reopened.execute("SELECT COUNT(*) FROM exports").fetchone()[0] == 1
    reopened.close()

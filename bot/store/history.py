"""Where each scope keeps its exports (the embedded store; DynamoDB comes with scale-out):
a scope's timezone and currency, and per export its facts (who, when, the file's SHA-256,
its days) and its aggregates as bytes (processing.history.encode_export). Never a row.

The history itself is not stored: it is merged again from the stored exports whenever it is
read (processing.history.merge), so two jobs of one scope that finish together each add
their export and neither is lost. Each change is one transaction: an export is in the
history whole, or not at all.

```
add(scope, export)   the same file (SHA-256) there already -> that export, nothing added
                     another timezone or currency than the scope's -> refused, nothing added
                     else added; past MAX_EXPORTS the oldest exports are dropped
forget(scope)        the scope, its exports and all, gone
```
"""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import dataclass
from datetime import date
from typing import Literal

from bot.store.sqlite import SqliteJobStore
from processing import History, decode_export, merge

MAX_EXPORTS = 1000  # per scope, the oldest dropped first

AddOutcome = Literal["added", "same_file", "other_settings"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ExportFacts:
    """An export as the history lists it (exports.csv)."""

    id: str
    source: str  # the file's name, or its s3:// address
    requested_by: str | None  # a Slack user id; None on the command line and the page
    finished_at: float
    sha256: str
    size_bytes: int
    first_day: date | None
    last_day: date | None


@dataclass(frozen=True, slots=True)
class Scope:
    name: str
    timezone: str
    currency: str


@dataclass(frozen=True, slots=True)
class Added:
    outcome: AddOutcome
    export: ExportFacts | None = None  # the earlier export of the same file
    scope: Scope | None = None  # the scope's settings, when they differ


@dataclass(frozen=True, slots=True)
class ScopeHistory:
    scope: Scope
    exports: list[ExportFacts]  # oldest first
    merged: History


class SqliteHistory:
    def __init__(self, store: SqliteJobStore, *, max_exports: int = MAX_EXPORTS) -> None:
        self._store = store
        self._max_exports = max_exports

    async def add(
        self, scope: str, facts: ExportFacts, body: bytes, *, timezone: str, currency: str
    ) -> Added:
        def add(db: sqlite3.Connection) -> Added:
            known = _scope(db, scope)
            if known is None:
                db.execute(
                    "INSERT INTO scopes (name, timezone, currency, created_at) VALUES (?, ?, ?, ?)",
                    (scope, timezone, currency, facts.finished_at),
                )
            elif (known.timezone, known.currency) != (timezone, currency):
                return Added("other_settings", scope=known)
            same = _same_file(db, scope, facts.sha256)
            if same is not None:
                return Added("same_file", export=same)
            db.execute(
                "INSERT INTO exports (scope, id, finished_at, sha256, source, requested_by, "
                "size_bytes, first_day, last_day, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    scope,
                    facts.id,
                    facts.finished_at,
                    facts.sha256,
                    facts.source,
                    facts.requested_by,
                    facts.size_bytes,
                    _day(facts.first_day),
                    _day(facts.last_day),
                    body,
                ),
            )
            db.execute(
                "DELETE FROM exports WHERE scope = ? AND id IN (SELECT id FROM exports "
                "WHERE scope = ? ORDER BY finished_at DESC, id DESC LIMIT -1 OFFSET ?)",
                (scope, scope, self._max_exports),
            )
            return Added("added")

        return await self._store.in_transaction(add)

    async def scope(self, name: str) -> Scope | None:
        return await self._store.in_transaction(lambda db: _scope(db, name))

    async def exports(self, scope: str) -> list[ExportFacts]:
        """Oldest first."""

        def listed(db: sqlite3.Connection) -> list[ExportFacts]:
            rows = db.execute(
                f"SELECT {_FACTS} FROM exports WHERE scope = ? ORDER BY finished_at, id",
                (scope,),
            )
            return [_facts(row) for row in rows]

        return await self._store.in_transaction(listed)

    async def history(self, scope: str) -> ScopeHistory | None:
        """The scope's exports and their merged history (merged off the event loop), or
        None for a scope it does not know."""

        def read(db: sqlite3.Connection) -> tuple[Scope, list[ExportFacts], list[bytes]] | None:
            known = _scope(db, scope)
            if known is None:
                return None
            rows = db.execute(
                f"SELECT {_FACTS}, body FROM exports WHERE scope = ? ORDER BY finished_at, id",
                (scope,),
            ).fetchall()
            return known, [_facts(row[:-1]) for row in rows], [bytes(row[-1]) for row in rows]

        found = await self._store.in_transaction(read)
        if found is None:
            return None
        known, exports, bodies = found

        def merged() -> History:
            return merge([decode_export(body) for body in bodies], timezone=known.timezone)

        return ScopeHistory(known, exports, await asyncio.to_thread(merged))

    async def same_file(self, scope: str, sha256: str) -> ExportFacts | None:
        return await self._store.in_transaction(lambda db: _same_file(db, scope, sha256))

    async def forget(self, scope: str) -> bool:
        """Whether there was such a scope."""

        def forget(db: sqlite3.Connection) -> bool:
            db.execute("DELETE FROM exports WHERE scope = ?", (scope,))
            return db.execute("DELETE FROM scopes WHERE name = ?", (scope,)).rowcount > 0

        return await self._store.in_transaction(forget)


_FACTS = "id, source, requested_by, finished_at, sha256, size_bytes, first_day, last_day"


def _scope(db: sqlite3.Connection, name: str) -> Scope | None:
    row = db.execute("SELECT name, timezone, currency FROM scopes WHERE name = ?", (name,))
    found = row.fetchone()
    return None if found is None else Scope(*found)


def _same_file(db: sqlite3.Connection, scope: str, sha256: str) -> ExportFacts | None:
    row = db.execute(
        f"SELECT {_FACTS} FROM exports WHERE scope = ? AND sha256 = ? ORDER BY finished_at LIMIT 1",
        (scope, sha256),
    ).fetchone()
    return None if row is None else _facts(row)


def _facts(row: tuple[object, ...]) -> ExportFacts:
    export_id, source, by, finished_at, sha256, size_bytes, first_day, last_day = row
    return ExportFacts(
        id=str(export_id),
        source=str(source),
        requested_by=None if by is None else str(by),
        finished_at=float(finished_at),  # type: ignore[arg-type]
        sha256=str(sha256),
        size_bytes=int(size_bytes),  # type: ignore[call-overload]
        first_day=None if first_day is None else date.fromisoformat(str(first_day)),
        last_day=None if last_day is None else date.fromisoformat(str(last_day)),
    )


def _day(day: date | None) -> str | None:
    return None if day is None else day.isoformat()

"""The command line's side of a scope's history: an export remembered after `report --scope`,
and the history read back for `history NAME`. The store is DATA_DIR's, opened for one short
transaction at a time, so this works while a `serve` holds the same directory.

Slack channels and the web will remember their exports through the job runner; the rule of
what is remembered is the same (bot/store/history.py, processing/history.py).
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

from bot.config import DEFAULT_DATA_DIR
from bot.store.history import Added, ExportFacts, ScopeHistory, SqliteHistory
from bot.store.sqlite import SqliteJobStore
from processing import READ_SIZE, WeeklyReport, encode_export, export_of, iso_utc
from processing.text import displayable

T = TypeVar("T")

EXPORT_COLUMNS = (
    "id",
    "source",
    "by",
    "finished_at",
    "sha256",
    "bytes",
    "first_day",
    "last_day",
    "weeks_won",
)


class Hashed:
    """A source's bytes on their way to the engine, their SHA-256 and count taken as they
    pass: the file as it was received, whatever the engine makes of it."""

    def __init__(self, source: BinaryIO | Iterable[bytes]) -> None:
        self._source = source
        self._digest = hashlib.sha256()
        self.size_bytes = 0

    def __iter__(self) -> Iterator[bytes]:
        source = self._source
        chunks = iter(lambda: source.read(READ_SIZE), b"") if hasattr(source, "read") else source
        for chunk in chunks:
            self._digest.update(chunk)
            self.size_bytes += len(chunk)
            yield chunk

    @property
    def sha256(self) -> str:
        return self._digest.hexdigest()


def data_dir(env: Mapping[str, str]) -> Path:
    return Path(env.get("DATA_DIR", "").strip() or DEFAULT_DATA_DIR)


def remember(
    directory: Path,
    scope: str,
    report: WeeklyReport,
    *,
    source: str,
    received: Hashed,
    currency: str,
) -> Added:
    """Add the export to the scope's history, unless the same file is there already or the
    scope keeps another timezone or currency."""
    finished_at = time.time()
    export = export_of(report, export_id=secrets.token_hex(4), finished_at=finished_at)
    facts = ExportFacts(
        id=export.id,
        source=displayable(source),
        requested_by=None,
        finished_at=finished_at,
        sha256=received.sha256,
        size_bytes=received.size_bytes,
        first_day=report.first_day,
        last_day=report.last_day,
    )

    body = encode_export(export)
    return _with_history(
        directory,
        lambda history: history.add(
            scope, facts, body, timezone=report.timezone, currency=currency
        ),
    )


def read(directory: Path, scope: str) -> ScopeHistory | None:
    return _with_history(directory, lambda history: history.history(scope))


def forget(directory: Path, scope: str) -> bool:
    return _with_history(directory, lambda history: history.forget(scope))


def _with_history(directory: Path, use: Callable[[SqliteHistory], Awaitable[T]]) -> T:
    """One use of DATA_DIR's history, the store open only for it."""

    async def once() -> T:
        store = await SqliteJobStore(directory).open()
        try:
            return await use(SqliteHistory(store))
        finally:
            await store.close()

    return asyncio.run(once())


def exports_json(found: ScopeHistory) -> list[dict[str, Any]]:
    """The exports as the history JSON lists them, oldest first."""
    won = found.merged.weeks_won
    return [
        {
            "id": facts.id,
            "source": facts.source,
            "by": facts.requested_by,
            "finished_at": iso_utc(datetime.fromtimestamp(facts.finished_at, UTC)),
            "sha256": facts.sha256,
            "bytes": facts.size_bytes,
            "first_day": None if facts.first_day is None else facts.first_day.isoformat(),
            "last_day": None if facts.last_day is None else facts.last_day.isoformat(),
            "weeks_won": won.get(facts.id, 0),
        }
        for facts in found.exports
    ]


def exports_csv(found: ScopeHistory) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(EXPORT_COLUMNS)
    for entry in exports_json(found):
        writer.writerow(["" if entry[name] is None else entry[name] for name in EXPORT_COLUMNS])
    return out.getvalue()

"""A scope's history: the weeks of every export it kept, merged into one week list, and the
report over it with the same rules as a file's report.

The merge rule (one home): each week's figures (its week entry and that week's clinic cells)
come from exactly one export, the one that covers more days of that week (`days_covered`;
an empty week inside an export's range counts as covered: the export says there was no
data); on equal coverage, the newer export (by the time its job finished; then the larger
id, so that the rule is a total order). A week between exports that none covers is an empty
week of no export. Only the latest `max_weeks` weeks are kept.

The plan: one pass over the exports' weeks keeps, per Monday, the best (coverage, finished
at, id) seen; the clinic cells of each kept week are taken from its winner by one boolean
mask per export. Aggregates only: an Export holds week entries and clinic sums, never a row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, timedelta

import msgspec
import numpy as np
from msgspec import Struct
from msgspec.structs import replace

from processing import insights
from processing.report import (
    FIRST_MONDAY,
    ClinicWeeks,
    ReasonSummary,
    WeeklyReport,
    WeekStats,
    no_clinic_weeks,
)
from processing.schema import REASONS

HISTORY_WEEKS = 156  # three years of weeks per scope; older ones are dropped first


class Export(Struct, frozen=True, kw_only=True):
    """What a succeeded job leaves in its scope's history."""

    id: str
    finished_at: float  # seconds since the epoch: the newer export wins a tie
    first_day: date | None  # its report's first and last day with a valid row
    last_day: date | None
    weeks: tuple[WeekStats, ...]  # its report's weeks (complete_week() applied)
    clinic_weeks: ClinicWeeks  # its report's cells per (week, clinic)


class Restatement(Struct, frozen=True):
    """A week complete in the history and complete again in a new export, with another
    revenue: late invoices, corrected rows."""

    week_start: date
    before_cents: int
    after_cents: int
    previous_export: str  # the id of the export the history had the week from


class History(Struct, frozen=True, kw_only=True):
    """The merged weeks and their report. `report` has a file's report's weeks, headline,
    clinics, totals and movers, computed over the history; its row counts are zero (rows
    belong to files)."""

    report: WeeklyReport
    week_exports: tuple[str | None, ...]  # parallel to report.weeks: where each came from
    weeks_won: Mapping[str, int]  # per export id, the kept weeks it gives (0 for none)


def export_of(report: WeeklyReport, *, export_id: str, finished_at: float) -> Export:
    return Export(
        id=export_id,
        finished_at=finished_at,
        first_day=report.first_day,
        last_day=report.last_day,
        weeks=tuple(_plain(week) for week in report.weeks),
        clinic_weeks=report.clinic_weeks,
    )


class _StoredCells(Struct, frozen=True, array_like=True):
    """ClinicWeeks as a store keeps them: columns as lists; a sum past what MessagePack's
    integers hold (an export of extreme amounts) as its decimal digits."""

    weeks: list[int]
    clinic_ids: list[int]
    values: list[list[int | str]]
    clinic_names: tuple[str, ...]


class _StoredExport(Struct, frozen=True, array_like=True):
    id: str
    finished_at: float
    first_day: date | None
    last_day: date | None
    weeks: tuple[WeekStats, ...]
    cells: _StoredCells


def encode_export(export: Export) -> bytes:
    """An export as bytes for a store (MessagePack): aggregates only, as the Export holds."""
    cells = export.clinic_weeks
    stored = _StoredExport(
        id=export.id,
        finished_at=export.finished_at,
        first_day=export.first_day,
        last_day=export.last_day,
        weeks=export.weeks,
        cells=_StoredCells(
            weeks=[int(n) for n in cells.weeks],
            clinic_ids=[int(n) for n in cells.clinic_ids],
            values=[[_storable(int(v)) for v in row] for row in cells.values],
            clinic_names=tuple(cells.clinic_names),
        ),
    )
    return msgspec.msgpack.encode(stored)


def _storable(value: int) -> int | str:
    return value if -(2**63) <= value < 2**63 else str(value)


def decode_export(data: bytes) -> Export:
    """The export encode_export() stored. Raises msgspec.DecodeError on anything else."""
    stored = msgspec.msgpack.decode(data, type=_StoredExport)
    cells = stored.cells
    width = len(cells.values[0]) if cells.values else 7
    try:
        rows = [[int(v) for v in row] for row in cells.values]
    except ValueError:  # digits are all encode_export() writes
        raise msgspec.DecodeError("a clinic sum is not a number") from None
    fits = all(isinstance(v, int) for row in cells.values for v in row)
    values = np.array(rows, dtype=np.int64 if fits else object).reshape(-1, width)
    return Export(
        id=stored.id,
        finished_at=stored.finished_at,
        first_day=stored.first_day,
        last_day=stored.last_day,
        weeks=stored.weeks,
        clinic_weeks=ClinicWeeks(
            weeks=np.array(cells.weeks, dtype=np.int64),
            clinic_ids=np.array(cells.clinic_ids, dtype=np.int64),
            values=values,
            clinic_names=cells.clinic_names,
        ),
    )


def merge(exports: Sequence[Export], *, timezone: str, max_weeks: int = HISTORY_WEEKS) -> History:
    """The history of these exports (in any order)."""
    winners = _winners(exports)
    mondays = _kept_mondays(sorted(winners), max_weeks)
    by_id = {export.id: export for export in exports}
    weeks: list[WeekStats] = []
    week_exports: list[str | None] = []
    for monday in mondays:
        winner = winners.get(monday)
        weeks.append(winner[1] if winner else _empty_week(monday))
        week_exports.append(winner[0] if winner else None)
    cells = _cells(by_id, dict(zip(mondays, week_exports, strict=True)))
    derived = insights.derive(weeks, cells)
    first_day, last_day = _span(mondays, week_exports, by_id)
    report = WeeklyReport(
        timezone=timezone,
        rows_total=0,
        rows_valid=0,
        errors={reason: ReasonSummary() for reason in REASONS},
        revenue_on_other_event=0,
        weeks=derived.weeks,
        bytes_read=0,
        first_day=first_day,
        last_day=last_day,
        headline=derived.headline,
        clinics=derived.clinics,
        clinic_weeks=cells,
        totals=derived.totals,
        movers=derived.movers,
    )
    weeks_won = dict.fromkeys((export.id for export in exports), 0)
    for export_id in week_exports:
        if export_id is not None:
            weeks_won[export_id] += 1
    return History(report=report, week_exports=tuple(week_exports), weeks_won=weeks_won)


def restatements(before: History, after: History, export_id: str) -> list[Restatement]:
    """The weeks `export_id` restated: complete in `before` and in `after`, where it now
    gives them, with another revenue. Oldest first."""
    was = {
        week.week_start: (week, source)
        for week, source in zip(before.report.weeks, before.week_exports, strict=True)
        if source is not None and week.status == "complete"
    }
    found = []
    for week, source in zip(after.report.weeks, after.week_exports, strict=True):
        earlier = was.get(week.week_start)
        if source != export_id or week.status != "complete" or earlier is None:
            continue
        old, previous = earlier
        if old.revenue_cents != week.revenue_cents and previous != export_id:
            found.append(
                Restatement(week.week_start, old.revenue_cents, week.revenue_cents, previous)
            )
    return found


def _winners(exports: Sequence[Export]) -> dict[date, tuple[str, WeekStats]]:
    best: dict[date, tuple[tuple[int, float, str], WeekStats]] = {}
    for export in exports:
        for week in export.weeks:
            rank = (week.days_covered, export.finished_at, export.id)
            held = best.get(week.week_start)
            if held is None or rank > held[0]:
                best[week.week_start] = (rank, week)
    return {monday: (rank[2], week) for monday, (rank, week) in best.items()}


def _kept_mondays(covered: list[date], max_weeks: int) -> list[date]:
    """Every Monday from the first covered to the last, the latest max_weeks of them."""
    if not covered or max_weeks <= 0:
        return []
    last = covered[-1]
    first = max(covered[0], last - timedelta(weeks=max_weeks - 1))
    return [first + timedelta(weeks=n) for n in range((last - first).days // 7 + 1)]


def _empty_week(monday: date) -> WeekStats:
    return WeekStats(week_start=monday, days_covered=0, status="empty")


def _plain(week: WeekStats) -> WeekStats:
    """A week as an export keeps it: without the changes measured inside its own file (the
    history measures them again, against its own weeks)."""
    return replace(week, change_pct=None, average_4w_revenue_cents=None)


def _cells(exports: Mapping[str, Export], source_of: Mapping[date, str | None]) -> ClinicWeeks:
    """The clinic cells of each kept week, from the export that gives it."""
    names: dict[str, int] = {}
    weeks, clinic_ids, values = [], [], []
    won: dict[str, list[int]] = {}
    for monday, export_id in source_of.items():
        if export_id is not None:
            won.setdefault(export_id, []).append((monday - FIRST_MONDAY).days // 7)
    for export_id, numbers in won.items():
        cells = exports[export_id].clinic_weeks
        if not len(cells):
            continue
        given = np.isin(cells.weeks, np.array(numbers, dtype=np.int64))
        if not given.any():
            continue
        remap = np.array([names.setdefault(name, len(names)) for name in cells.clinic_names])
        weeks.append(cells.weeks[given])
        clinic_ids.append(remap[cells.clinic_ids[given]])
        values.append(cells.values[given])
    if not weeks:
        return no_clinic_weeks()
    if any(v.dtype == object for v in values):  # an amount that needed Python ints
        values = [v.astype(object) for v in values]
    stacked = np.concatenate(values)
    return ClinicWeeks(
        weeks=np.concatenate(weeks),
        clinic_ids=np.concatenate(clinic_ids),
        values=stacked,
        clinic_names=tuple(names),
    )


def _span(
    mondays: Sequence[date], sources: Sequence[str | None], exports: Mapping[str, Export]
) -> tuple[date | None, date | None]:
    """The first and last day covered in the kept weeks, from the winners' own days."""
    given = [(monday, source) for monday, source in zip(mondays, sources, strict=True) if source]
    if not given:
        return None, None
    (first_monday, first_source), (last_monday, last_source) = given[0], given[-1]
    first, last = exports[first_source].first_day, exports[last_source].last_day
    first_day = first_monday if first is None else max(first_monday, first)
    last_sunday = last_monday + timedelta(days=6)
    last_day = last_sunday if last is None else min(last_sunday, last)
    return first_day, last_day

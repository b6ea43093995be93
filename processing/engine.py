"""analyze(): a CSV byte stream in, a WeeklyReport out, in flat memory."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from datetime import date, timedelta
from itertools import repeat
from operator import attrgetter
from typing import TYPE_CHECKING, BinaryIO

if TYPE_CHECKING:
    from processing.arrays import BoolArray, IntArray

import numpy as np
import pyarrow as pa
from msgspec import Struct

from processing import fields, insights, kernels, timestamps
from processing.errors import AnalysisCancelledError, NoRowsError
from processing.prefetch import prefetched
from processing.reader import DEFAULT_BLOCK_SIZE, Block, BlockReader, Finish, merge
from processing.report import InvalidRow, Progress, ReasonSummary, WeeklyReport
from processing.schema import (
    CLINIC_COLUMN,
    EVENT_TYPE_COLUMN,
    FIRST_ROWS_KEPT,
    INVALID_REVENUE,
    INVALID_TIMESTAMP,
    MALFORMED_ROW,
    MISSING_REQUIRED_FIELD,
    REASONS,
    REQUIRED_COLUMNS,
    REVENUE_COLUMN,
    TIMESTAMP_COLUMN,
    TREATMENT_COLUMN,
    TREATMENT_COMPLETED,
    UNKNOWN_TREATMENT,
    WHITESPACE,
)
from processing.timestamps import FIRST_DAY, LAST_DAY, ZoneOffsets
from processing.weekly import ClinicAccumulator, Labels, WeeklyAccumulator

_EPOCH = date(1970, 1, 1)
_NO_CENTS = np.zeros(0, np.int64)

# Reading and parsing the next blocks (pyarrow, GIL released) overlaps with analysing these.
# The parser is fastest on 1 MiB blocks, but the analysis's per-block steps (a few dozen
# numpy and pyarrow calls) cost less per row on several blocks at once: it takes up to
# BLOCKS_PER_BATCH of those parsed while it worked. The parser's thread hands blocks on
# unfinished (BlockReader.pending); when it is ahead, it finishes them and reads their
# timestamps (_screened) as spare work. The analysis keeps up with the parser on a usual
# file, so it does not wait for a full batch: waiting would leave both threads idle in turn.
# Bad rows change that: the parser's thread then runs Python (pyarrow calls back for each
# row it drops, a broken quote is walked) and the two threads take turns holding the GIL
# rather than working side by side. Over FULL_BATCHES_OVER_INVALID of a batch's rows
# invalid, the next batch is a full one: fewer, larger batches mean fewer turns, and a
# usual file (well under that share invalid) never takes them.
PREFETCH_BLOCKS = 6
BLOCKS_PER_BATCH = 4
FULL_BATCHES_OVER_INVALID = 0.02

ProgressCallback = Callable[[Progress], None]
InvalidRowsCallback = Callable[[list[InvalidRow]], None]
# pyarrow scalars made once, not Python values converted again on every kernel call.
_TREATMENT_COMPLETED = pa.scalar(TREATMENT_COMPLETED, pa.string())
_UNKNOWN = pa.scalar(UNKNOWN_TREATMENT, pa.string())
_EMPTY = pa.scalar("", pa.string())
CancelCheck = Callable[[], bool]
_ROW_OF = attrgetter("row")


class _ErrorLog:
    """Counts per reason and the first FIRST_ROWS_KEPT rows of each."""

    def __init__(self) -> None:
        self.counts = dict.fromkeys(REASONS, 0)
        self.rows: dict[str, list[int]] = {reason: [] for reason in REASONS}
        self.columns: dict[str, int] = {}

    def wants_rows(self, reason: str) -> bool:
        return len(self.rows[reason]) < FIRST_ROWS_KEPT

    def add(self, reason: str, count: int, rows: Iterable[int] = ()) -> None:
        self.counts[reason] += count
        kept = self.rows[reason]
        for row in rows:
            if len(kept) >= FIRST_ROWS_KEPT:
                break
            kept.append(row)

    def count_column(self, column: str, count: int) -> None:
        """Rows missing a value, by their first empty required column."""
        self.columns[column] = self.columns.get(column, 0) + count

    def summary(self) -> dict[str, ReasonSummary]:
        return {
            reason: ReasonSummary(
                self.counts[reason],
                tuple(self.rows[reason]),
                {c: self.columns[c] for c in REQUIRED_COLUMNS if c in self.columns}
                if reason == MISSING_REQUIRED_FIELD
                else {},
            )
            for reason in REASONS
        }


class _Checks(Struct, frozen=True):
    """One block's rows as the rules see them, in the order they apply."""

    timestamps: pa.Array  # trimmed: the words for a bad timestamp come from it
    first_empty: IntArray  # index into REQUIRED_COLUMNS of each row's first empty value, or -1
    days: IntArray  # local day numbers; meaningful where the timestamp is valid
    missing: BoolArray
    bad_timestamp: BoolArray
    bad_revenue: BoolArray
    revenue_present: BoolArray
    cents: IntArray  # of valid rows with an amount (0 elsewhere)
    large_cents: dict[int, int]  # row -> exact cents of amounts too long for int64 cents

    @property
    def valid(self) -> BoolArray:
        valid: BoolArray = ~(self.missing | self.bad_timestamp | self.bad_revenue)
        return valid


def _trimmed(values: pa.Array) -> pa.Array:
    return kernels.utf8_trim(values, WHITESPACE)


def _event_type_names(values: pa.Array) -> pa.Array:
    return kernels.upper(_trimmed(values))


def _treatment_names(values: pa.Array) -> pa.Array:
    names = kernels.lower(_trimmed(values))
    return kernels.if_else(kernels.equal(names, _EMPTY), _UNKNOWN, names)


class _Analysis:
    def __init__(self, zone_name: str) -> None:
        self.zone = None if zone_name == "UTC" else ZoneOffsets(zone_name)
        self.event_types = Labels(EVENT_TYPE_COLUMN, _event_type_names)
        self.treatment_types = Labels(TREATMENT_COLUMN, _treatment_names)
        self.weekly = WeeklyAccumulator(self.event_types, self.treatment_types)
        self.clinics = ClinicAccumulator(self.event_types.names, Labels(CLINIC_COLUMN, _trimmed))
        self.errors = _ErrorLog()
        self.rows_total = 0
        self.rows_valid = 0
        self.revenue_on_other_event = 0
        self.decimal_comma = False
        self.on_invalid_rows: InvalidRowsCallback | None = None
        self.first_day = LAST_DAY  # day numbers; crossed over until a valid row is seen
        self.last_day = FIRST_DAY

    @property
    def rows_invalid(self) -> int:
        return self.rows_total - self.rows_valid

    def add(self, screened: _Screened) -> None:
        block = screened.block
        if block.malformed:
            self.errors.add(MALFORMED_ROW, block.malformed, block.malformed_rows.tolist())
        table = block.table
        self.rows_total += block.malformed + table.num_rows
        if table.num_rows == 0:
            if block.malformed and self.on_invalid_rows is not None:
                self.on_invalid_rows(_malformed(block))
            return
        checks = self._check(table, block.ascii_only, screened)
        for index, column in enumerate(REQUIRED_COLUMNS):
            count = int(np.count_nonzero(checks.first_empty == index))
            if count:  # a row counts under its first empty column
                self.errors.count_column(column, count)
        for reason, mask in (
            (MISSING_REQUIRED_FIELD, checks.missing),
            (INVALID_TIMESTAMP, checks.bad_timestamp),
            (INVALID_REVENUE, checks.bad_revenue),
        ):
            count = int(np.count_nonzero(mask))
            if count:
                rows = block.rows[mask][:FIRST_ROWS_KEPT] if self.errors.wants_rows(reason) else ()
                self.errors.add(reason, count, [int(row) for row in rows])
        if self.on_invalid_rows is not None:
            self._report_invalid(block, checks)
        valid = checks.valid
        valid_count = int(np.count_nonzero(valid))
        self.rows_valid += valid_count
        if valid_count:
            self._aggregate(table, checks, valid, valid_count)

    def _report_invalid(self, block: Block, checks: _Checks) -> None:
        """Every invalid row of the block, in row order, for the invalid-rows file. Python
        per invalid row only (words for a timestamp need a look at it)."""
        found = _malformed(block)
        missing = np.flatnonzero(checks.missing)
        if missing.size:
            columns = [REQUIRED_COLUMNS[k] for k in checks.first_empty[missing].tolist()]
            rows = block.rows[missing].tolist()
            found += map(InvalidRow, rows, repeat(MISSING_REQUIRED_FIELD), columns, repeat("empty"))
        bad_timestamps = np.flatnonzero(checks.bad_timestamp)
        if bad_timestamps.size:
            values = kernels.take(checks.timestamps, bad_timestamps).to_pylist()
            problems = [timestamps.timestamp_problem(value) for value in values]
            rows = block.rows[bad_timestamps].tolist()
            found += map(
                InvalidRow, rows, repeat(INVALID_TIMESTAMP), repeat(TIMESTAMP_COLUMN), problems
            )
        bad_revenue = np.flatnonzero(checks.bad_revenue)
        if bad_revenue.size:
            problem = fields.revenue_problem(self.decimal_comma)
            rows = block.rows[bad_revenue].tolist()
            found += map(
                InvalidRow, rows, repeat(INVALID_REVENUE), repeat(REVENUE_COLUMN), repeat(problem)
            )
        if found:
            assert self.on_invalid_rows is not None
            found.sort(key=_ROW_OF)
            self.on_invalid_rows(found)

    def _check(self, table: pa.Table, ascii_only: bool, screened: _Screened) -> _Checks:
        """The rules over a block's columns: a dozen vectorised pyarrow/numpy passes."""

        def column(name: str) -> pa.Array:
            if name == TIMESTAMP_COLUMN:
                return screened.timestamps
            return fields.trim(table.column(name).combine_chunks(), ascii_only)

        rows = table.num_rows
        columns = {name: column(name) for name in REQUIRED_COLUMNS}
        missing = np.zeros(rows, np.bool_)
        first_empty = np.full(rows, -1, np.int64)
        for index, values in enumerate(columns.values()):
            empty = fields.is_empty(values)
            first_empty[empty & ~missing] = index
            missing |= empty
        ts_valid, days = screened.timestamp_valid, screened.days
        bad_timestamp = ~missing & ~ts_valid
        revenue_present = bad_revenue = np.zeros(rows, np.bool_)
        cents = np.zeros(rows, np.int64)
        large_cents: dict[int, int] = {}
        if REVENUE_COLUMN in table.column_names:
            amounts = column(REVENUE_COLUMN)
            revenue_present = ~fields.is_empty(amounts)
            bad_revenue = np.zeros(rows, np.bool_)
            # Only amounts the earlier rules let through are checked: a quarter of the rows
            # in a typical export, and the regex is the costly part.
            checked = np.flatnonzero(~missing & ts_valid & revenue_present)
            checked_amounts = kernels.take(amounts, checked)
            well_formed = fields.revenue_valid(checked_amounts, decimal_comma=self.decimal_comma)
            bad_revenue[checked[~well_formed]] = True
            counted = checked[well_formed]
            if counted.size:
                counted_amounts = (
                    checked_amounts
                    if counted.size == checked.size
                    else kernels.keep(checked_amounts, well_formed)
                )
                if self.decimal_comma:
                    counted_amounts = kernels.replace_substring(counted_amounts, ",", ".")
                counted_cents, large = fields.to_cents(counted_amounts)
                cents[counted] = counted_cents
                large_cents = {int(counted[position]): value for position, value in large.items()}
        return _Checks(
            timestamps=screened.timestamps,
            first_empty=first_empty,
            days=days,
            missing=missing,
            bad_timestamp=bad_timestamp,
            bad_revenue=bad_revenue,
            revenue_present=revenue_present,
            cents=cents,
            large_cents=large_cents,
        )

    def _aggregate(
        self, table: pa.Table, checks: _Checks, valid: BoolArray, valid_count: int
    ) -> None:
        all_valid = valid_count == table.num_rows
        valid_rows = np.flatnonzero(valid)

        def ids_of_valid(labels: Labels, name: str) -> IntArray:
            values = table.column(name).combine_chunks()
            return labels.ids(values, None if all_valid else valid_rows)

        days = checks.days if all_valid else checks.days[valid]
        self.first_day = min(self.first_day, int(days.min()))
        self.last_day = max(self.last_day, int(days.max()))
        mondays = timestamps.monday_of(days)
        event_type_ids = ids_of_valid(self.event_types, EVENT_TYPE_COLUMN)
        self.weekly.add_events(mondays, event_type_ids)
        completed = event_type_ids == self.event_types.find(TREATMENT_COMPLETED)
        if REVENUE_COLUMN in table.column_names:
            other_with_revenue = checks.revenue_present[valid_rows] & ~completed
            self.revenue_on_other_event += int(np.count_nonzero(other_with_revenue))
        clinic_ids = ids_of_valid(self.clinics.clinics, CLINIC_COLUMN)
        completed_rows = valid_rows[completed]
        cents = checks.cents[completed_rows]
        large_cents = {}
        if checks.large_cents:
            position_of = {int(row): position for position, row in enumerate(completed_rows)}
            large_cents = {
                position_of[row]: amount
                for row, amount in checks.large_cents.items()
                if row in position_of
            }
        if completed_rows.size:
            if TREATMENT_COLUMN in table.column_names:
                treatments = table.column(TREATMENT_COLUMN).combine_chunks()
                treatment_ids = self.treatment_types.ids(treatments, completed_rows)
            else:
                unknown = self.treatment_types.id_of(UNKNOWN_TREATMENT)
                treatment_ids = np.full(completed_rows.size, unknown, np.int64)
            self.weekly.add_treatments(mondays[completed], treatment_ids, cents, large_cents)
        self.clinics.add(mondays, clinic_ids, event_type_ids, completed, cents, large_cents)

    def progress(self, bytes_read: int) -> Progress:
        return Progress(
            rows_total=self.rows_total,
            rows_valid=self.rows_valid,
            revenue_cents=self.weekly.revenue_cents,
            bytes_read=bytes_read,
            invalid_by_reason=dict(self.errors.counts),
        )


class _Screened(Struct, frozen=True):
    """A block with its timestamps trimmed and read."""

    block: Block
    timestamps: pa.Array  # trimmed
    timestamp_valid: BoolArray
    days: IntArray  # local day numbers; meaningful where the timestamp is valid


def _screened(piece: Finish | _Screened, zone: ZoneOffsets | None) -> _Screened:
    """Reading timestamps is the costliest step of the analysis; the prefetch thread does
    it, as spare work, whenever it is ahead of the main thread (see PREFETCH_BLOCKS)."""
    if isinstance(piece, _Screened):
        return piece
    return _screened_block(piece(), zone)


def _screened_block(block: Block, zone: ZoneOffsets | None) -> _Screened:
    column = block.table.column(TIMESTAMP_COLUMN).combine_chunks()
    trimmed = fields.trim(column, block.ascii_only)
    return _Screened(block, trimmed, *timestamps.local_days(trimmed, zone))


def _merged(pieces: Sequence[Finish | _Screened], zone: ZoneOffsets | None) -> _Screened:
    """The batch as one block. Blocks not screened yet are screened together: reading
    timestamps costs more per row on one block than on several at once."""
    if len(pieces) == 1:
        return _screened(pieces[0], zone)
    fresh = [piece for piece in pieces if not isinstance(piece, _Screened)]
    if len(fresh) == len(pieces):
        return _screened_block(merge([finish() for finish in fresh]), zone)
    screened = [_screened(piece, zone) for piece in pieces]
    return _Screened(
        block=merge([piece.block for piece in screened]),
        timestamps=pa.concat_arrays([piece.timestamps for piece in screened]),
        timestamp_valid=np.concatenate([piece.timestamp_valid for piece in screened]),
        days=np.concatenate([piece.days for piece in screened]),
    )


def _malformed(block: Block) -> list[InvalidRow]:
    rows = block.malformed_rows.tolist()
    return list(map(InvalidRow, rows, repeat(MALFORMED_ROW), repeat(""), block.malformed_problems))


def analyze(
    source: Iterable[bytes] | BinaryIO,
    *,
    timezone: str = "UTC",
    on_progress: ProgressCallback | None = None,
    cancelled: CancelCheck | None = None,
    block_size: int = DEFAULT_BLOCK_SIZE,
    on_invalid_rows: InvalidRowsCallback | None = None,
) -> WeeklyReport:
    """Analyse a CSV export given as a binary file object or an iterable of byte chunks.

    `timezone` is an IANA name (weeks start Monday 00:00 there). `on_progress` gets a
    snapshot after every block, or every few blocks when they arrive faster than they are
    analysed; `cancelled` is polled as often and stops the analysis with
    AnalysisCancelledError.
    `on_invalid_rows` gets every invalid row (not only the first 20 per reason), a batch's
    worth at a time in row order, as the rows are read. Raises an InputError subclass when
    the file cannot be analysed.
    """
    analysis = _Analysis(timezone)
    analysis.on_invalid_rows = on_invalid_rows
    reader = BlockReader(source, block_size=block_size)
    analysis.decimal_comma = reader.dialect.delimiter == ";"
    bytes_read = reader.header.bytes_consumed
    blocks: Iterable[Finish | _Screened] = reader.pending()
    with prefetched(
        blocks,
        depth=PREFETCH_BLOCKS,
        most=BLOCKS_PER_BATCH,
        spare=functools.partial(_screened, zone=analysis.zone),
    ) as prefetcher:
        for screened in map(functools.partial(_merged, zone=analysis.zone), prefetcher.batches()):
            if cancelled is not None and cancelled():
                raise AnalysisCancelledError()
            rows_before, invalid_before = analysis.rows_total, analysis.rows_invalid
            analysis.add(screened)
            invalid = analysis.rows_invalid - invalid_before
            rows = analysis.rows_total - rows_before
            prefetcher.full_batches = invalid > rows * FULL_BATCHES_OVER_INVALID
            bytes_read = screened.block.end_offset
            if on_progress is not None:
                on_progress(analysis.progress(bytes_read))
    if analysis.rows_total == 0:
        raise NoRowsError("a header but no rows")
    weeks = analysis.weekly.weeks()
    first_day = last_day = None
    if weeks:
        first_day = _EPOCH + timedelta(days=analysis.first_day)
        last_day = _EPOCH + timedelta(days=analysis.last_day)
        weeks = tuple(insights.complete_week(week, first_day, last_day) for week in weeks)
    clinic_weeks = analysis.clinics.cells()
    derived = insights.derive(weeks, clinic_weeks)
    return WeeklyReport(
        timezone=timezone,
        rows_total=analysis.rows_total,
        rows_valid=analysis.rows_valid,
        errors=analysis.errors.summary(),
        revenue_on_other_event=analysis.revenue_on_other_event,
        weeks=derived.weeks,
        bytes_read=bytes_read,
        dialect=reader.dialect,
        first_day=first_day,
        last_day=last_day,
        headline=derived.headline,
        clinics=derived.clinics,
        clinic_weeks=clinic_weeks,
        totals=derived.totals,
        movers=derived.movers,
    )

"""WeeklyAccumulator: merges per-block partial aggregates into per-week totals.

Goal: no per-row and few per-group Python steps. Each block is reduced by numpy to sums
per (week, label) under one int64 key (`monday << 24 | label id`), counted over the block's
small grid of weeks and labels without a sort; those partials queue up and are merged,
vectorised, every few million rows, into Python ints, which cannot overflow. Money stays in
integer cents throughout, never floats. The int64 sums of the waiting partials stay far
below 2**63 because fields.to_cents sends amounts of more than 10 integer digits to the
exact Python path.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import date, timedelta
from itertools import repeat
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from processing.arrays import BoolArray, IntArray

import numpy as np
import pyarrow as pa

from processing import kernels
from processing.errors import TooManyValuesError
from processing.report import CLINIC_SUMS, ClinicWeeks, WeekStats
from processing.schema import (
    CANCELLED,
    CLINIC_COLUMN,
    MAX_DISTINCT_VALUES,
    MAX_WEEK_CLINIC_PAIRS,
    MAX_WEEK_VALUE_PAIRS,
    NO_SHOW,
    appointment_outcome,
    is_appointment,
    is_booking,
)
from processing.timestamps import FIRST_DAY

FIRST_MONDAY: Final = FIRST_DAY  # 1900-01-01 was a Monday

_EPOCH = date(1970, 1, 1)
_LABEL_BITS = 24
_LABEL_MASK = (1 << _LABEL_BITS) - 1
# Partials are merged once this many keys wait (memory) or once they sum this many rows:
# a row brings at most 10**12 cents (see above), so int64 sums of 2**22 rows cannot overflow.
COMPACT_AT_KEYS = 1 << 16
COMPACT_AT_ROWS = 1 << 22
# Running int64 totals past this take the next COMPACT_AT_ROWS rows' sums without overflow.
_INT64_HEADROOM = 2**61
# Clinic cells are merged once as many wait as are merged already, within these bounds: a
# few clinics' partials then stay small (merging only at the upper bound let them pile up
# over a long file), and thousands of clinics are not merged after every block.
CLINIC_COMPACT_CELLS: Final = (1 << 14, 1 << 16)
# A block's grid of weeks by labels (or by clinics) up to this size is counted densely.
_DENSE_CELLS: Final = 1 << 16


def _sum_by_key(keys: IntArray, values: IntArray) -> tuple[IntArray, IntArray]:
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
    return sorted_keys[starts], np.add.reduceat(values[order], starts)


Normalize = Callable[[pa.Array], pa.Array]


class Labels:
    """Small integer ids for label strings, stable for one analysis; at most MAX_DISTINCT_VALUES
    of them, far below what the key's label bits could hold."""

    def __init__(self, column: str, normalize: Normalize) -> None:
        self.column = column
        self._normalize = normalize
        self._ids: dict[str, int] = {}
        self.names: list[str] = []
        # Values as written that have an id, and their ids: most blocks hold no others, and
        # looking values up in a known set costs less than encoding them afresh.
        self._written = pa.array([], pa.string())
        self._written_ids: IntArray = np.zeros(0, np.int64)

    def ids(self, values: pa.Array, rows: IntArray | None = None) -> IntArray:
        """The id of each value as written (untrimmed), of all values or of those at `rows`:
        a block holds few distinct values, so they are normalised (trimmed, cased) once each,
        from the block's dictionary. Only the values at `rows` become labels."""
        if rows is not None and rows.size < len(values) // 2:
            # A few rows of many (treatments of completed events): taking them first halves
            # the cost of encoding the column.
            values, rows = kernels.take(values, rows), None
        if len(self._written):
            found = kernels.index_in(values, self._written)
            if found.null_count == 0:
                positions = found.to_numpy()
                known: IntArray = self._written_ids[positions if rows is None else positions[rows]]
                if known.min(initial=0) >= 0:
                    return known
        encoded = kernels.dictionary_encode(values)
        codes = encoded.indices.to_numpy()
        if rows is not None:
            codes = codes[rows]
        names = self._normalize(encoded.dictionary).to_pylist()
        local_ids = np.fromiter(map(self._ids.get, names, repeat(-1)), np.int64, len(names))
        used = np.bincount(codes, minlength=len(names)) > 0
        for index in np.flatnonzero(used & (local_ids < 0)).tolist():
            local_ids[index] = self.id_of(names[index])  # a value first seen in this block
        self._remember(encoded.dictionary, local_ids)
        label_ids: IntArray = local_ids[codes]
        return label_ids

    def _remember(self, written: pa.Array, ids: IntArray) -> None:
        """Keep the block's values as written with their ids (-1: none yet), up to
        MAX_DISTINCT_VALUES of them."""
        if len(self._written) >= MAX_DISTINCT_VALUES:
            return
        encoded = kernels.dictionary_encode(pa.concat_arrays([self._written, written]))
        merged = np.full(len(encoded.dictionary), -1, np.int64)
        np.maximum.at(merged, encoded.indices.to_numpy(), np.concatenate([self._written_ids, ids]))
        self._written, self._written_ids = encoded.dictionary, merged

    def find(self, name: str) -> int:
        """The id of a name seen before, or -1."""
        return self._ids.get(name, -1)

    def id_of(self, name: str) -> int:
        label_id = self._ids.get(name)
        if label_id is None:
            if len(self.names) >= MAX_DISTINCT_VALUES:
                raise TooManyValuesError(self.column, MAX_DISTINCT_VALUES)
            label_id = self._ids[name] = len(self.names)
            self.names.append(name)
        return label_id


def _keys(mondays: IntArray, label_ids: IntArray) -> IntArray:
    keys: IntArray = (mondays.astype(np.int64) << _LABEL_BITS) | label_ids
    return keys


def _sums_per_week_and_label(
    mondays: IntArray, label_ids: IntArray, values: IntArray | None
) -> tuple[IntArray, IntArray]:
    """One block's sums per (week, label) key, or counts when `values` is None. A block
    spans few weeks and labels: counted over that grid in O(rows); sorted when the grid
    would be large (a block spread over centuries)."""
    first_monday = int(mondays.min())
    weeks = (mondays - first_monday) // 7
    width = int(label_ids.max()) + 1
    size = (int(weeks.max()) + 1) * width
    if size > _DENSE_CELLS:
        ones = np.ones(len(mondays), np.int64)
        return _sum_by_key(_keys(mondays, label_ids), ones if values is None else values)
    cells = weeks * width + label_ids
    counts = np.bincount(cells, minlength=size)
    present = np.flatnonzero(counts)
    if values is None:
        sums = counts[present]
    else:
        totals = np.zeros(size, np.int64)
        np.add.at(totals, cells, values)  # integers: bincount's weights would be floats
        sums = totals[present]
    return _keys(present // width * 7 + first_monday, present % width), sums


class _Table:
    """Integer totals per (week, label), fed in vectorised batches; at most
    MAX_WEEK_VALUE_PAIRS of them (checked as pending batches are merged, so memory stays
    bounded by that plus COMPACT_AT_KEYS pending keys)."""

    def __init__(self, labels: Labels) -> None:
        self._labels = labels
        self._pending_keys: list[IntArray] = []
        self._pending_values: list[IntArray] = []
        self._pending_keys_count = 0
        self._pending_rows = 0
        self.totals: Counter[tuple[int, str]] = Counter()

    def add(self, mondays: IntArray, label_ids: IntArray, values: IntArray | None = None) -> None:
        """Add one block's rows: their `values`, or a count of them when None."""
        if len(mondays):
            keys, sums = _sums_per_week_and_label(mondays, label_ids, values)
            self._pending_keys.append(keys)
            self._pending_values.append(sums)
            self._pending_keys_count += len(keys)
            self._pending_rows += len(mondays)
            if self._pending_keys_count >= COMPACT_AT_KEYS or self._pending_rows >= COMPACT_AT_ROWS:
                self.compact()

    def add_one(self, monday: int, label: str, value: int) -> None:
        self.totals[(monday, label)] += value
        self._check_size()

    def compact(self) -> None:
        if not self._pending_keys:
            return
        keys, sums = _sum_by_key(
            np.concatenate(self._pending_keys), np.concatenate(self._pending_values)
        )
        self._pending_keys.clear()
        self._pending_values.clear()
        self._pending_keys_count = self._pending_rows = 0
        if len(keys) > MAX_WEEK_VALUE_PAIRS:  # distinct already: no need to merge them first
            raise TooManyValuesError(self._labels.column, MAX_WEEK_VALUE_PAIRS, per_week=True)
        for key, total in zip(keys.tolist(), sums.tolist(), strict=True):
            self.totals[(key >> _LABEL_BITS, self._labels.names[key & _LABEL_MASK])] += total
            if len(self.totals) > MAX_WEEK_VALUE_PAIRS:
                self._check_size()

    def _check_size(self) -> None:
        if len(self.totals) > MAX_WEEK_VALUE_PAIRS:
            raise TooManyValuesError(self._labels.column, MAX_WEEK_VALUE_PAIRS, per_week=True)


class WeeklyAccumulator:
    def __init__(self, event_types: Labels, treatment_types: Labels) -> None:
        self.event_types = event_types
        self.treatment_types = treatment_types
        self._events = _Table(event_types)
        self._revenue = _Table(treatment_types)  # cents per (week, treatment type)
        self._treatments = _Table(treatment_types)  # completed treatments
        self.revenue_cents = 0

    def add_events(self, mondays: IntArray, event_type_ids: IntArray) -> None:
        """Count events per (week, type); `mondays` are day numbers since 1970-01-01."""
        self._events.add(mondays, event_type_ids)

    @property
    def event_type_names(self) -> list[str]:
        return self.event_types.names

    def add_treatments(
        self,
        mondays: IntArray,
        treatment_ids: IntArray,
        cents: IntArray,
        large_cents: dict[int, int],
    ) -> None:
        """Add completed treatments: revenue per (week, treatment type) and their count.
        `large_cents` holds the exact amounts too long for int64 cents, by position."""
        if len(mondays) == 0:
            return
        self._revenue.add(mondays, treatment_ids, cents)
        self._treatments.add(mondays, treatment_ids)
        self.revenue_cents += int(cents.sum())
        for row, amount in large_cents.items():
            name = self.treatment_types.names[int(treatment_ids[row])]
            self._revenue.add_one(int(mondays[row]), name, amount)
            self.revenue_cents += amount

    def weeks(self) -> tuple[WeekStats, ...]:
        """Every week from the first to the last with a valid row; empty weeks included."""
        for table in (self._events, self._revenue, self._treatments):
            table.compact()
        events: dict[int, dict[str, int]] = {}
        revenue: dict[int, dict[str, int]] = {}
        for (monday, label), count in self._events.totals.items():
            events.setdefault(monday, {})[label] = count
        for (monday, label), cents in self._revenue.totals.items():
            revenue.setdefault(monday, {})[label] = cents
        treatments = Counter[int]()
        for (monday, _), count in self._treatments.totals.items():
            treatments[monday] += count
        if not events:
            return ()
        result = []
        for monday in range(min(events), max(events) + 1, 7):
            by_treatment = revenue.get(monday, {})
            result.append(
                WeekStats(
                    week_start=_EPOCH + timedelta(days=monday),
                    revenue_cents=sum(by_treatment.values()),
                    revenue_by_treatment_cents=dict(sorted(by_treatment.items())),
                    treatments_completed=treatments.get(monday, 0),
                    events_by_type=dict(sorted(events.get(monday, {}).items())),
                )
            )
        return tuple(result)


# Per (week, clinic) cell, in this column order.
CLINIC_METRICS: Final = (*CLINIC_SUMS, "events")
_CLINIC_BITS: Final = 14  # ids below 16,384 > MAX_DISTINCT_VALUES
_FLAG_COLUMNS: Final = slice(2, 6)  # appointments, bookings, cancelled, no_show
# Cells counted per event type on a dense grid at most (8 MiB of int64 counts).
_DENSE_CELLS_BY_TYPE: Final = 1 << 20


class ClinicAccumulator:
    """Per (week, clinic) sums, kept as sorted numpy arrays (never one Python object per cell)
    and merged as CLINIC_COMPACT_CELLS says."""

    def __init__(self, event_type_names: list[str], clinics: Labels) -> None:
        self.clinics = clinics
        self._event_type_names = event_type_names  # grows as the analysis meets new types
        self._flags = np.zeros((0, 4), np.int64)
        self._pending: list[tuple[IntArray, IntArray]] = []
        self._pending_count = 0
        self._pending_rows = 0
        self._keys: IntArray = np.zeros(0, np.int64)
        self._values: IntArray = np.zeros((0, len(CLINIC_METRICS)), np.int64)
        self._large_cents: Counter[int] = Counter()

    def add(
        self,
        mondays: IntArray,
        clinic_ids: IntArray,
        event_type_ids: IntArray,
        completed: BoolArray,
        cents: IntArray,
        large_cents: dict[int, int],
    ) -> None:
        """One block's valid rows; `cents` and `large_cents` (by position) are those of the
        completed rows, in order."""
        if len(mondays) == 0:
            return
        weeks = (mondays - FIRST_MONDAY) // 7
        type_flags = self._type_flags()
        completed_rows = np.flatnonzero(completed)
        first_week = int(weeks.min())
        span = int(weeks.max()) - first_week + 1
        clinic_count = len(self.clinics.names)
        if span * clinic_count * len(type_flags) <= _DENSE_CELLS_BY_TYPE:
            keys, values = _dense_sums(
                (weeks - first_week) * clinic_count + clinic_ids,
                span * clinic_count,
                event_type_ids,
                type_flags,
                completed_rows,
                cents,
            )
            keys = ((keys // clinic_count + first_week) << _CLINIC_BITS) | (keys % clinic_count)
        else:  # thousands of clinics or types: sort instead of a grid of every (week, clinic)
            keys = (weeks << _CLINIC_BITS) | clinic_ids
            row_values = np.zeros((len(keys), len(CLINIC_METRICS)), np.int64)
            row_values[completed_rows, 0] = cents
            row_values[completed_rows, 1] = 1
            row_values[:, _FLAG_COLUMNS] = type_flags[event_type_ids]
            row_values[:, 6] = 1
            keys, values = _sum_rows_by_key(keys, row_values)
        for position, amount in large_cents.items():
            row = completed_rows[position]
            self._large_cents[(int(weeks[row]) << _CLINIC_BITS) | int(clinic_ids[row])] += amount
        self._pending.append((keys, values))
        self._pending_count += len(keys)
        self._pending_rows += len(mondays)
        fewest, most = CLINIC_COMPACT_CELLS
        enough_waiting = self._pending_count >= min(max(fewest, len(self._keys)), most)
        if enough_waiting or self._pending_rows >= COMPACT_AT_ROWS:
            self.compact()

    def _type_flags(self) -> IntArray:
        """Per event type: is it an appointment, a booking, cancelled, a no-show (0 or 1)."""
        names = self._event_type_names
        if len(self._flags) < len(names):
            new = [
                [
                    is_appointment(name),
                    is_booking(name),
                    appointment_outcome(name) == CANCELLED,
                    appointment_outcome(name) == NO_SHOW,
                ]
                for name in names[len(self._flags) :]
            ]
            self._flags = np.concatenate([self._flags, np.array(new, np.int64)])
        return self._flags

    def compact(self) -> None:
        if not self._pending:
            return
        self._keys, self._values = _sum_rows_by_key(
            np.concatenate([self._keys, *(keys for keys, _ in self._pending)]),
            np.concatenate([self._values, *(values for _, values in self._pending)]),
        )
        self._pending.clear()
        self._pending_count = self._pending_rows = 0
        if len(self._keys) > MAX_WEEK_CLINIC_PAIRS:
            raise TooManyValuesError(CLINIC_COLUMN, MAX_WEEK_CLINIC_PAIRS, per_week=True)
        revenue = self._values[:, 0]  # the only column that can near the limit: counts are rows
        if self._values.dtype != object and revenue.max(initial=0) > _INT64_HEADROOM:
            # Running totals near int64's limit go on as Python ints: exact, and slow only
            # for files of tens of millions of rows at the largest amounts.
            self._values = self._values.astype(object)

    def cells(self) -> ClinicWeeks:
        self.compact()
        values = self._values.copy()
        if self._large_cents:
            # Amounts beyond the int64 fast path: exact, as Python ints, in an object array.
            values = values.astype(object)
            positions = np.searchsorted(self._keys, list(self._large_cents))
            for position, amount in zip(positions, self._large_cents.values(), strict=True):
                values[position, 0] += amount
        return ClinicWeeks(
            weeks=self._keys >> _CLINIC_BITS,
            clinic_ids=self._keys & ((1 << _CLINIC_BITS) - 1),
            values=values,
            clinic_names=self.clinics.names,
        )


def _dense_sums(
    cells: IntArray,
    size: int,
    event_type_ids: IntArray,
    type_flags: IntArray,
    completed_rows: IntArray,
    cents: IntArray,
) -> tuple[IntArray, IntArray]:
    """Sums per cell over a small dense grid: counting is O(rows), no sort. Rows are counted
    per (cell, event type) in one pass; appointments, bookings, cancellations and no-shows
    follow from the types' flags. Integer arithmetic only (bincount without weights,
    np.add.at for cents)."""
    types = len(type_flags)
    by_type = np.bincount(cells * types + event_type_ids, minlength=size * types)
    by_type = by_type.reshape(size, types)
    events = by_type.sum(axis=1)
    present = np.flatnonzero(events)
    values = np.empty((len(present), len(CLINIC_METRICS)), np.int64)
    revenue = np.zeros(size, np.int64)
    np.add.at(revenue, cells[completed_rows], cents)
    values[:, 0] = revenue[present]
    values[:, 1] = np.bincount(cells[completed_rows], minlength=size)[present]
    values[:, _FLAG_COLUMNS] = by_type[present] @ type_flags
    values[:, 6] = events[present]
    return present, values


def _sum_rows_by_key(keys: IntArray, values: IntArray) -> tuple[IntArray, IntArray]:
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
    return sorted_keys[starts], np.add.reduceat(values[order], starts, axis=0)

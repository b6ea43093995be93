"""The weekly accumulator: exact integer sums however many rows and blocks come in; labels
for the rows asked about only."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pyarrow as pa
import pytest

from processing import kernels, weekly
from processing.insights import clinic_stats
from processing.report import ClinicWeeks, Headline
from processing.timestamps import monday_of
from processing.weekly import CLINIC_COMPACT_CELLS, ClinicAccumulator, Labels, WeeklyAccumulator

LARGEST_FAST_CENTS = 10**12 - 1  # 10 integer digits and 2 decimals: the int64 path's limit


def test_ten_million_rows_at_the_largest_amount_add_up_exactly() -> None:
    """Per-block partials wait in int64 before they are merged into Python ints: ten million
    rows of 9,999,999,999.99 in one week (past 2**63 cents in all) still sum exactly."""
    event_types = Labels("event_type", lambda values: values)
    treatments = Labels("treatment_type", lambda values: values)
    weekly = WeeklyAccumulator(event_types, treatments)
    completed, cleaning = event_types.id_of("TREATMENT_COMPLETED"), treatments.id_of("cleaning")
    rows = 100_000
    mondays = monday_of(np.full(rows, 19_725, np.int64))  # a week of January 2024
    for _ in range(100):
        weekly.add_events(mondays, np.full(rows, completed))
        weekly.add_treatments(
            mondays, np.full(rows, cleaning), np.full(rows, LARGEST_FAST_CENTS), {}
        )
    [week] = weekly.weeks()
    assert week.revenue_cents == 10_000_000 * LARGEST_FAST_CENTS > 2**63
    assert week.revenue_by_treatment_cents == {"cleaning": 10_000_000 * LARGEST_FAST_CENTS}
    assert week.treatments_completed == 10_000_000


def test_clinic_totals_past_int64_stay_exact() -> None:
    """Per (week, clinic) totals are int64 until they near its limit, then Python ints: ten
    million rows of 9,999,999,999.99 in one clinic's week sum exactly."""
    event_types = Labels("event_type", lambda values: values)
    completed = event_types.id_of("TREATMENT_COMPLETED")
    clinics = ClinicAccumulator(event_types.names, Labels("clinic_id", lambda values: values))
    clinic = clinics.clinics.id_of("C1")
    rows = 100_000
    mondays = monday_of(np.full(rows, 19_725, np.int64))
    for _ in range(100):
        clinics.add(
            mondays,
            np.full(rows, clinic),
            np.full(rows, completed),
            np.ones(rows, np.bool_),
            np.full(rows, LARGEST_FAST_CENTS),
            {},
        )
    cells = clinics.cells()
    assert cells.values[0, 0] == 10_000_000 * LARGEST_FAST_CENTS > 2**63
    assert cells.values[0, 1] == 10_000_000  # completed treatments


def test_a_clinics_total_over_weeks_past_int64_stays_exact() -> None:
    """Each week's cell fits int64, their sum over the year does not: the clinic's total is
    exact (a Python int), as is its latest week."""
    cells = ClinicWeeks(
        weeks=np.arange(52, dtype=np.int64),
        clinic_ids=np.zeros(52, np.int64),
        values=np.tile(np.array([2**61, 1, 0, 0, 0, 0, 1], np.int64), (52, 1)),
        clinic_names=["C1"],
    )
    latest = date(1900, 1, 1) + timedelta(weeks=51)  # week numbers count from 1900-01-01
    headline = Headline(latest_week=latest, previous_week=latest - timedelta(weeks=1))
    [clinic] = clinic_stats(cells, headline)
    assert clinic.revenue_cents == 52 * 2**61
    assert clinic.latest_week_revenue_cents == 2**61


@pytest.mark.parametrize("picked", [[1], [0, 2, 3], [0, 1, 2, 3]])
def test_label_ids_of_some_rows_name_only_those_values(picked: list[int]) -> None:
    """Few rows or most of them: each gets its value's id, and only their values are labels."""
    labels = Labels("treatment_type", lambda values: values)
    values = pa.array(["filling", "crown", "filling", "implant"], pa.string())
    ids = labels.ids(values, np.array(picked, np.int64))
    expected = [values[row].as_py() for row in picked]
    assert [labels.names[label_id] for label_id in ids.tolist()] == expected
    assert sorted(labels.names) == sorted(set(expected))


def test_values_met_before_keep_their_ids_and_new_ones_become_labels_when_used() -> None:
    """Blocks of values already known are looked up, not encoded again, with the same ids; a
    value first met on a row not asked about gets its id when a later block uses it."""
    labels = Labels("event_type", lambda values: kernels.upper(values))
    first = pa.array(["a", "b", " x", "a"], pa.string())
    assert labels.ids(first, np.array([0, 1, 3], np.int64)).tolist() == [0, 1, 0]
    assert labels.names == ["A", "B"]
    again = pa.array(["b", "a", "b"], pa.string())
    assert labels.ids(again).tolist() == [1, 0, 1]
    later = pa.array(["a", " x", "B", "c"], pa.string())
    assert labels.ids(later).tolist() == [0, 2, 1, 3]
    assert labels.names == ["A", "B", " X", "C"]
    assert labels.ids(pa.array([" x", "B"], pa.string())).tolist() == [2, 1]


@pytest.mark.parametrize("clinic_count", [3, 400, 5_000])
def test_clinic_cells_are_the_same_however_often_they_are_merged(clinic_count: int) -> None:
    """Blocks of a few clinics (merged at the lower bound of waiting cells) and of thousands
    (at the upper one) give the cells one block of all the rows gives, and the partials that
    wait stay within the bound."""
    rng = np.random.default_rng(clinic_count)
    rows, blocks = 6_000, 40
    days = rng.integers(19_000, 19_400, rows * blocks)
    clinic_of_row = rng.integers(0, clinic_count, rows * blocks)
    kinds = rng.integers(0, 2, rows * blocks)
    cents = rng.integers(0, 10_000, rows * blocks)

    def accumulate(pieces: int) -> tuple[ClinicAccumulator, int]:
        event_types = Labels("event_type", lambda values: values)
        ids = np.array([event_types.id_of("TREATMENT_COMPLETED"), event_types.id_of("X")])
        clinics = ClinicAccumulator(event_types.names, Labels("clinic_id", lambda values: values))
        clinic_ids = np.array([clinics.clinics.id_of(f"C{n}") for n in range(clinic_count)])
        most_waiting = 0
        for piece in np.array_split(np.arange(rows * blocks), pieces):
            completed = kinds[piece] == 0
            clinics.add(
                monday_of(days[piece]),
                clinic_ids[clinic_of_row[piece]],
                ids[kinds[piece]],
                completed,
                cents[piece][completed],
                {},
            )
            most_waiting = max(most_waiting, clinics._pending_count)
        return clinics, most_waiting

    whole, _ = accumulate(1)
    merged, most_waiting = accumulate(blocks)
    expected, got = whole.cells(), merged.cells()
    assert np.array_equal(got.weeks, expected.weeks)
    assert np.array_equal(got.clinic_ids, expected.clinic_ids)
    assert np.array_equal(got.values, expected.values)
    assert most_waiting < CLINIC_COMPACT_CELLS[1]


def test_the_dense_grid_and_the_sort_give_the_same_cells(monkeypatch: pytest.MonkeyPatch) -> None:
    """Per (week, clinic) sums counted on a grid, per event type, equal those found by
    sorting the rows: revenue, treatments, appointments, bookings, cancellations, no-shows."""
    rng = np.random.default_rng(7)
    rows = 20_000
    names = [
        "TREATMENT_COMPLETED",
        "APPOINTMENT_SCHEDULED",
        "APPOINTMENT_CANCELLED",
        "APPOINTMENT_NO_SHOW",
        "TREATMENT_BOOKED",
        "INVOICE_SENT",
    ]
    days = rng.integers(19_000, 19_400, rows)
    clinic_of_row = rng.integers(0, 30, rows)
    kinds = rng.integers(0, len(names), rows)
    cents = rng.integers(0, 10_000, rows)

    def cells(dense_limit: int) -> ClinicWeeks:
        monkeypatch.setattr(weekly, "_DENSE_CELLS_BY_TYPE", dense_limit)
        event_types = Labels("event_type", lambda values: values)
        ids = np.array([event_types.id_of(name) for name in names])
        clinics = ClinicAccumulator(event_types.names, Labels("clinic_id", lambda values: values))
        clinic_ids = np.array([clinics.clinics.id_of(f"C{n}") for n in range(30)])
        completed = kinds == 0
        clinics.add(
            monday_of(days), clinic_ids[clinic_of_row], ids[kinds], completed, cents[completed], {}
        )
        return clinics.cells()

    dense, sorted_ = cells(1 << 20), cells(0)
    assert np.array_equal(dense.weeks, sorted_.weeks)
    assert np.array_equal(dense.clinic_ids, sorted_.clinic_ids)
    assert np.array_equal(dense.values, sorted_.values)
    assert dense.values[:, 2:6].sum(axis=0).tolist() == [
        int(np.count_nonzero((kinds >= 1) & (kinds <= 3))),  # appointments
        int(np.count_nonzero(kinds == 4)),  # bookings
        int(np.count_nonzero(kinds == 2)),  # cancelled
        int(np.count_nonzero(kinds == 3)),  # no-shows
    ]

"""A scope's history: the merge rule (coverage, then the newer export), gaps, the cap, the
report over the merged weeks, and restated weeks."""

from __future__ import annotations

from datetime import date, timedelta

import msgspec
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from processing import analyze, to_dict
from processing.history import (
    Export,
    decode_export,
    encode_export,
    export_of,
    merge,
    restatements,
)
from processing.report import ClinicWeeks, WeekStats, no_clinic_weeks
from tests.helpers import csv_of

MONDAY = date(2024, 1, 1)


def week(n: int, cents: int, covered: int = 7, status: str = "complete") -> WeekStats:
    return WeekStats(
        week_start=MONDAY + timedelta(weeks=n),
        revenue_cents=cents,
        days_covered=covered,
        status=status,  # type: ignore[arg-type]
    )


def export(export_id: str, finished_at: float, *weeks: WeekStats) -> Export:
    return Export(
        id=export_id,
        finished_at=finished_at,
        first_day=weeks[0].week_start if weeks else None,
        last_day=weeks[-1].week_start + timedelta(days=6) if weeks else None,
        weeks=weeks,
        clinic_weeks=no_clinic_weeks(),
    )


def folded(exports: list[Export], max_weeks: int) -> dict[date, str | None]:
    """An independent reading of the rule: take the exports oldest first and let each one
    take a week unless the week's holder covers more of it; then fill the gaps, keep the
    latest max_weeks."""
    held: dict[date, tuple[int, str]] = {}
    for each in sorted(exports, key=lambda e: (e.finished_at, e.id)):
        for entry in each.weeks:
            holder = held.get(entry.week_start)
            if holder is None or entry.days_covered >= holder[0]:
                held[entry.week_start] = (entry.days_covered, each.id)
    if not held:
        return {}
    last = max(held)
    monday = min(held)
    result: dict[date, str | None] = {}
    while monday <= last:
        result[monday] = held[monday][1] if monday in held else None
        monday += timedelta(weeks=1)
    return dict(list(result.items())[-max_weeks:]) if max_weeks > 0 else {}


exports_strategy = st.lists(
    st.tuples(
        st.integers(0, 5),  # finished_at: ties happen
        st.lists(
            st.tuples(st.integers(0, 40), st.integers(0, 7), st.integers(0, 10**6)),
            max_size=12,
            unique_by=lambda w: w[0],
        ),
    ),
    max_size=6,
)


@settings(max_examples=300, deadline=None)
@given(exports_strategy, st.integers(0, 50))
def test_each_week_comes_from_the_export_covering_most_of_it_then_the_newest(
    drawn: list[tuple[int, list[tuple[int, int, int]]]], max_weeks: int
) -> None:
    """Against an independent fold over generated exports: which export gives each week,
    the empty weeks between exports, and the cap on weeks kept."""
    exports = [
        export(
            f"x{n}",
            finished_at,
            *(week(w, cents, covered) for w, covered, cents in sorted(weeks)),
        )
        for n, (finished_at, weeks) in enumerate(drawn)
    ]
    history = merge(exports, timezone="UTC", max_weeks=max_weeks)
    expected = folded(exports, max_weeks)
    weeks = zip(history.report.weeks, history.week_exports, strict=True)
    got = {entry.week_start: source for entry, source in weeks}
    assert got == expected
    for entry, source in zip(history.report.weeks, history.week_exports, strict=True):
        if source is None:
            assert (entry.status, entry.days_covered, entry.revenue_cents) == ("empty", 0, 0)
    assert sum(history.weeks_won.values()) == sum(s is not None for s in expected.values())
    assert set(history.weeks_won) == {e.id for e in exports}


def test_equal_coverage_goes_to_the_newer_export_and_more_days_beat_newer() -> None:
    """Week 0: both complete, the newer wins; week 1: the older covers 7 days, the newer 3."""
    older = export("old", 1.0, week(0, 100), week(1, 200))
    newer = export("new", 2.0, week(0, 150), week(1, 90, covered=3, status="partial"))
    history = merge([newer, older], timezone="UTC")
    assert history.week_exports == ("new", "old")
    assert [w.revenue_cents for w in history.report.weeks] == [150, 200]
    assert history.weeks_won == {"new": 1, "old": 1}


def test_only_the_latest_weeks_are_kept() -> None:
    """200 weeks in, 156 out: the oldest are dropped first."""
    many = export("all", 1.0, *(week(n, n) for n in range(200)))
    history = merge([many], timezone="UTC")
    assert len(history.report.weeks) == 156
    assert history.report.weeks[0].week_start == MONDAY + timedelta(weeks=44)
    assert history.weeks_won == {"all": 156}


def daily_rows(first: date, days: int, cents: int, clinic: str = "C1") -> list[str]:
    """One completed treatment a day, `cents` each."""
    return [
        f"e{clinic}{n},{clinic},p{n},TREATMENT_COMPLETED,"
        f"{first + timedelta(days=n)}T10:00:00Z,cleaning,{cents / 100:.2f}"
        for n in range(days)
    ]


def test_a_weekly_export_is_measured_against_the_weeks_before_it() -> None:
    """Eight weeks, then an export of the next week only: alone, that week has no change and
    no average; in the history it has both, from the earlier export's weeks."""
    eight = analyze(iter([csv_of(*daily_rows(MONDAY, 56, 1000)).encode()]))
    ninth_day = MONDAY + timedelta(weeks=8)
    one = analyze(iter([csv_of(*daily_rows(ninth_day, 7, 2000)).encode()]))
    assert one.headline.change_pct is None
    assert one.headline.average_4w_revenue_cents is None

    history = merge(
        [
            export_of(eight, export_id="a", finished_at=1.0),
            export_of(one, export_id="b", finished_at=2.0),
        ],
        timezone="UTC",
    )
    headline = history.report.headline
    assert headline.latest_week == ninth_day
    assert headline.latest_revenue_cents == 14_000
    assert headline.previous_revenue_cents == 7_000
    assert headline.change_pct == "100.0"
    assert headline.average_4w_revenue_cents == 7_000
    assert history.report.totals.revenue_cents == 8 * 7_000 + 14_000
    assert (history.report.first_day, history.report.last_day) == (
        MONDAY,
        ninth_day + timedelta(days=6),
    )
    [clinic] = history.report.clinics
    assert (clinic.clinic_id, clinic.revenue_cents, clinic.change_pct) == ("C1", 70_000, "100.0")


def test_a_restated_week_is_named_and_a_completed_partial_week_is_not() -> None:
    """Week 2 had 5,000 and now has 5,100: restated, from the first export. Week 3 was cut
    short and is now complete: not a restatement. Week 1 is unchanged."""
    first = export("a", 1.0, week(1, 4_000), week(2, 5_000), week(3, 100, 2, "partial"))
    second = export("b", 2.0, week(1, 4_000), week(2, 5_100), week(3, 6_000))
    before = merge([first], timezone="UTC")
    after = merge([first, second], timezone="UTC")
    [only] = restatements(before, after, "b")
    assert (only.week_start, only.before_cents, only.after_cents, only.previous_export) == (
        MONDAY + timedelta(weeks=2),
        5_000,
        5_100,
        "a",
    )


def test_an_export_reads_back_from_its_bytes_as_it_was() -> None:
    """encode_export() then decode_export(): the same weeks, days and clinic cells, amounts
    past int64 included, and the same history from either."""
    report = analyze(
        iter([csv_of(*daily_rows(MONDAY, 20, 1234), *daily_rows(MONDAY, 9, 5, "C2")).encode()])
    )
    original = export_of(report, export_id="a", finished_at=1.5)
    again = decode_export(encode_export(original))
    assert (again.id, again.finished_at, again.first_day, again.last_day, again.weeks) == (
        original.id,
        original.finished_at,
        original.first_day,
        original.last_day,
        original.weeks,
    )
    assert list(again.clinic_weeks.rows()) == list(original.clinic_weeks.rows())
    as_read, as_made = (merge([e], timezone="UTC").report for e in (again, original))
    assert to_dict(as_read, "h", "USD") == to_dict(as_made, "h", "USD")
    assert list(as_read.clinic_weeks.rows()) == list(as_made.clinic_weeks.rows())

    huge = ClinicWeeks(
        weeks=np.array([6200], dtype=np.int64),
        clinic_ids=np.array([0], dtype=np.int64),
        values=np.array([[2**70, 1, 1, 1, 0, 0, 1]], dtype=object),
        clinic_names=("C9",),
    )
    kept = decode_export(
        encode_export(
            Export(
                id="b", finished_at=2.0, first_day=None, last_day=None, weeks=(), clinic_weeks=huge
            )
        )
    )
    assert kept.clinic_weeks.values[0][0] == 2**70


def test_bytes_that_are_not_an_export_are_refused() -> None:
    """A damaged record raises msgspec's DecodeError, never a half-read export."""
    with pytest.raises(msgspec.DecodeError):
        decode_export(b"\x93not an export")

"""Frozen results of an analysis: what the engine hands to renderers and the bot."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import numpy.typing as npt

import numpy as np
from msgspec import Struct, field

from processing.dialect import Dialect
from processing.percent import rate
from processing.schema import REASONS, is_appointment, is_booking

WeekStatus = Literal["complete", "partial", "empty"]


class ReasonSummary(Struct, frozen=True):
    """How many rows failed for one reason, and the first of them as spreadsheet rows."""

    count: int = 0
    first_rows: tuple[int, ...] = ()
    columns: Mapping[str, int] = field(default_factory=dict)  # missing_required_field only


class InvalidRow(Struct, frozen=True):
    """One row left out, as the invalid-rows file lists it: never a value of the row. A Struct,
    not a named tuple: a file with one bad row in 20 makes 50,000 of them per million rows,
    and a Struct is the cheaper to make."""

    row: int  # as a spreadsheet shows it
    reason: str  # one of REASONS
    column: str  # the first empty required column, event_timestamp, revenue_amount, or ""
    detail: str  # in words: "expected 10 fields, found 12", "date out of range 1900-2199"


class AppointmentOutcomes(Struct, frozen=True):
    scheduled: int = 0
    completed: int = 0
    cancelled: int = 0
    no_show: int = 0
    rescheduled: int = 0


class WeekStats(Struct, frozen=True):
    week_start: date  # a Monday in the report timezone
    revenue_cents: int = 0
    revenue_by_treatment_cents: Mapping[str, int] = field(default_factory=dict)
    treatments_completed: int = 0
    events_by_type: Mapping[str, int] = field(default_factory=dict)
    days_covered: int = 7  # days of this Monday-Sunday within the report's first..last day
    status: WeekStatus = "complete"
    outcomes: AppointmentOutcomes = field(default_factory=AppointmentOutcomes)
    cancellation_rate: str | None = None  # percent, one decimal; None without outcomes
    no_show_rate: str | None = None
    new_patients: int = 0
    # Revenue against the nearest complete week before; only a complete week has one, so a
    # week cut short or without data never reads as a collapse.
    change_pct: str | None = None
    average_4w_revenue_cents: int | None = None  # of up to 4 complete weeks before it

    @property
    def week_end(self) -> date:
        return self.week_start + timedelta(days=6)

    @property
    def appointments(self) -> int:
        return sum(n for kind, n in self.events_by_type.items() if is_appointment(kind))

    @property
    def bookings(self) -> int:
        return sum(n for kind, n in self.events_by_type.items() if is_booking(kind))

    @property
    def events(self) -> int:
        return sum(self.events_by_type.values())


class TreatmentRevenue(Struct, frozen=True):
    treatment_type: str
    revenue_cents: int
    share_pct: str | None  # of the period's revenue; None when that is 0


class PeriodTotals(Struct, frozen=True):
    """The whole period's sums: what a surface shows under "all weeks"."""

    revenue_cents: int = 0
    treatments_completed: int = 0
    appointments: int = 0
    bookings: int = 0
    new_patients: int = 0
    outcomes: AppointmentOutcomes = field(default_factory=AppointmentOutcomes)
    cancellation_rate: str | None = None
    no_show_rate: str | None = None
    by_treatment: tuple[TreatmentRevenue, ...] = ()  # largest first, then by name


class ClinicMovers(Struct, frozen=True):
    """The clinics whose revenue rose most and fell most between the headline's two weeks."""

    up: tuple[str, ...] = ()  # clinic ids, the largest rise first
    down: tuple[str, ...] = ()  # the largest fall first


class Headline(Struct, frozen=True):
    """How the latest complete week went, against the weeks before it. Only complete weeks
    count: an empty or cut-short week is no collapse."""

    latest_week: date | None = None
    latest_revenue_cents: int | None = None
    previous_week: date | None = None
    previous_revenue_cents: int | None = None
    change_pct: str | None = None
    average_4w_revenue_cents: int | None = None
    best_week: date | None = None
    worst_week: date | None = None
    empty_weeks: tuple[date, ...] = ()
    partial_weeks: tuple[date, ...] = ()


class ClinicStats(Struct, frozen=True):
    clinic_id: str
    revenue_cents: int
    treatments_completed: int
    appointments: int
    bookings: int
    cancelled: int
    no_show: int
    weeks_active: int
    latest_week_revenue_cents: int | None  # in the headline's latest week
    previous_week_revenue_cents: int | None
    change_pct: str | None


class ClinicWeek(Struct, frozen=True):
    week_start: date
    clinic_id: str
    revenue_cents: int
    treatments_completed: int
    appointments: int
    bookings: int
    cancelled: int
    no_show: int


FIRST_MONDAY = date(1900, 1, 1)
# The per-clinic sums, in the column order of ClinicWeeks.values (then an event count).
CLINIC_SUMS = (
    "revenue_cents",
    "treatments_completed",
    "appointments",
    "bookings",
    "cancelled",
    "no_show",
)


def clinic_sums(values: Sequence[Any]) -> dict[str, int]:
    """A row of ClinicWeeks.values (or of their totals) as the named sums."""
    return {name: int(value) for name, value in zip(CLINIC_SUMS, values, strict=False)}


class ClinicWeeks(Struct, frozen=True, eq=False):
    """Sums per (week, clinic) that had a valid row, as columns: up to a million cells, so
    never a Python object each until someone iterates them."""

    weeks: npt.NDArray[np.int64]  # weeks since 1900-01-01 (a Monday)
    clinic_ids: npt.NDArray[np.int64]  # index into clinic_names
    values: npt.NDArray[Any]  # per cell: revenue_cents, treatments, appointments, bookings,
    # cancelled, no_show, events (int64; object when an amount needed Python ints)
    clinic_names: Sequence[str]

    def __len__(self) -> int:
        return len(self.weeks)

    def rows(self) -> Iterator[ClinicWeek]:
        """By week, then clinic id."""
        rank = np.argsort(np.argsort(np.array(self.clinic_names, dtype=object)))
        order = np.lexsort((rank[self.clinic_ids], self.weeks)) if len(self) else []
        for index in order:
            yield ClinicWeek(
                week_start=FIRST_MONDAY + timedelta(weeks=int(self.weeks[index])),
                clinic_id=self.clinic_names[int(self.clinic_ids[index])],
                **clinic_sums(self.values[index]),
            )


def no_clinic_weeks() -> ClinicWeeks:
    return ClinicWeeks(
        weeks=np.zeros(0, np.int64),
        clinic_ids=np.zeros(0, np.int64),
        values=np.zeros((0, 7), np.int64),
        clinic_names=(),
    )


class WeeklyReport(Struct, frozen=True, kw_only=True):
    """What the engine found. The derived figures (headline, clinics, totals, movers) are
    computed once, by insights.py's rules, when the engine makes the report; every surface
    formats them and none recomputes them."""

    timezone: str
    rows_total: int
    rows_valid: int
    errors: Mapping[str, ReasonSummary]  # every reason in REASONS, in that order
    revenue_on_other_event: int
    weeks: tuple[WeekStats, ...]
    bytes_read: int
    dialect: Dialect = field(default_factory=Dialect)
    first_day: date | None = None  # local dates of the earliest and latest valid row
    last_day: date | None = None
    headline: Headline  # the derived figures: required, so that none is left out by mistake
    clinics: tuple[ClinicStats, ...] = ()  # by revenue, highest first, then id
    clinic_weeks: ClinicWeeks = field(default_factory=no_clinic_weeks)
    totals: PeriodTotals  # over every week
    movers: ClinicMovers  # of `clinics`

    @property
    def rows_invalid(self) -> int:
        return self.rows_total - self.rows_valid

    @property
    def revenue_cents(self) -> int:
        """The period's revenue."""
        return self.totals.revenue_cents

    @property
    def latest_week(self) -> WeekStats | None:
        """The headline's latest complete week."""
        if self.headline.latest_week is None:
            return None
        index = (self.headline.latest_week - self.weeks[0].week_start).days // 7
        return self.weeks[index]

    @property
    def revenue_by_treatment_cents(self) -> dict[str, int]:
        """The period's revenue per treatment type, largest first (then by name)."""
        return {entry.treatment_type: entry.revenue_cents for entry in self.totals.by_treatment}

    @property
    def invalid_pct(self) -> str | None:
        """Invalid rows as a percentage of all rows, one decimal (None without rows)."""
        return rate(self.rows_invalid, self.rows_total)

    @property
    def treatment_types(self) -> list[str]:
        return sorted({kind for week in self.weeks for kind in week.revenue_by_treatment_cents})

    def error(self, reason: str) -> ReasonSummary:
        return self.errors.get(reason, ReasonSummary())


class Progress(Struct, frozen=True):
    """A snapshot taken after each block of rows; cheap to make and safe to share."""

    rows_total: int
    rows_valid: int
    revenue_cents: int
    bytes_read: int
    invalid_by_reason: Mapping[str, int]

    @property
    def rows_invalid(self) -> int:
        return self.rows_total - self.rows_valid


ETA_AFTER_S = 2.0  # before that, a guess of the time left is mostly noise
ETA_AFTER_FRACTION = 0.01


class Estimate(Struct, frozen=True):
    """How far a job is and how long it may take, the same on every surface."""

    fraction: float | None  # of the bytes read; None when the size is unknown
    percent: int | None  # whole percent, never 100 until the job has finished
    left_s: float | None  # None while it is too early to tell, or the size is unknown


def estimate(
    bytes_read: int, total_bytes: int | None, elapsed_s: float, *, finished: bool = False
) -> Estimate:
    if finished:
        return Estimate(fraction=1.0, percent=100, left_s=0.0)
    if not total_bytes:
        return Estimate(fraction=None, percent=None, left_s=None)
    fraction = min(max(bytes_read / total_bytes, 0.0), 1.0)
    # Never "100%" while reading: the last block may still be on its way.
    percent = min(int(fraction * 100), 99)
    left_s = None
    if elapsed_s >= ETA_AFTER_S and ETA_AFTER_FRACTION <= fraction < 1:
        left_s = elapsed_s * (1 - fraction) / fraction
    return Estimate(fraction=fraction, percent=percent, left_s=left_s)


def empty_errors() -> dict[str, ReasonSummary]:
    return {reason: ReasonSummary() for reason in REASONS}

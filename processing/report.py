"""Frozen results of an analysis: what the engine hands to renderers and the bot."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta

from processing.dialect import Dialect
from processing.schema import REASONS, is_appointment, is_booking


@dataclass(frozen=True, slots=True)
class ReasonSummary:
    """How many rows failed for one reason, and the first of them as spreadsheet rows."""

    count: int = 0
    first_rows: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class WeekStats:
    week_start: date  # a Monday in the report timezone
    revenue_cents: int = 0
    revenue_by_treatment_cents: Mapping[str, int] = field(default_factory=dict)
    treatments_completed: int = 0
    events_by_type: Mapping[str, int] = field(default_factory=dict)

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


@dataclass(frozen=True, slots=True)
class WeeklyReport:
    timezone: str
    rows_total: int
    rows_valid: int
    errors: Mapping[str, ReasonSummary]  # every reason in REASONS, in that order
    revenue_on_other_event: int
    weeks: tuple[WeekStats, ...]
    bytes_read: int
    dialect: Dialect = field(default_factory=Dialect)

    @property
    def rows_invalid(self) -> int:
        return self.rows_total - self.rows_valid

    @property
    def revenue_cents(self) -> int:
        return sum(week.revenue_cents for week in self.weeks)

    @property
    def treatment_types(self) -> list[str]:
        return sorted({kind for week in self.weeks for kind in week.revenue_by_treatment_cents})

    def error(self, reason: str) -> ReasonSummary:
        return self.errors.get(reason, ReasonSummary())


@dataclass(frozen=True, slots=True)
class Progress:
    """A snapshot taken after each block of rows; cheap to make and safe to share."""

    rows_total: int
    rows_valid: int
    revenue_cents: int
    bytes_read: int
    invalid_by_reason: Mapping[str, int]

    @property
    def rows_invalid(self) -> int:
        return self.rows_total - self.rows_valid


def empty_errors() -> dict[str, ReasonSummary]:
    return {reason: ReasonSummary() for reason in REASONS}

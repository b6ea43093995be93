"""What a manager reads first, derived once from the weekly totals: coverage, appointment
outcomes and their rates, the headline (latest complete week against the ones before), and
percent changes, the period's totals and the clinics that moved most. Pure functions over
report values; the engine applies them once, and every surface formats what they give, none
recomputes them. Percentages come from percent.py.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from fractions import Fraction
from typing import Any, NamedTuple

import numpy as np
from msgspec.structs import replace

from processing.percent import percent_change, rate
from processing.report import (
    FIRST_MONDAY,
    AppointmentOutcomes,
    ClinicMovers,
    ClinicStats,
    ClinicWeeks,
    Headline,
    PeriodTotals,
    TreatmentRevenue,
    WeekStats,
    WeekStatus,
    clinic_sums,
)
from processing.schema import OUTCOMES, appointment_outcome, is_new_patient

AVERAGE_WEEKS = 4
MOVERS_KEPT = 5  # clinics up and down; a surface may show fewer


def outcomes_of(events_by_type: Mapping[str, int]) -> AppointmentOutcomes:
    counts = dict.fromkeys(OUTCOMES, 0)
    for event_type, count in events_by_type.items():
        outcome = appointment_outcome(event_type)
        if outcome is not None:
            counts[outcome] += count
    return AppointmentOutcomes(**counts)


def cancellation_rate(outcomes: AppointmentOutcomes) -> str | None:
    """Cancelled appointments, of those whose outcome is known (_decided)."""
    return rate(outcomes.cancelled, _decided(outcomes))


def no_show_rate(outcomes: AppointmentOutcomes) -> str | None:
    """Missed appointments, of those whose outcome is known (_decided)."""
    return rate(outcomes.no_show, _decided(outcomes))


def _decided(outcomes: AppointmentOutcomes) -> int:
    """Appointments completed, cancelled or missed; a scheduled or rescheduled one is
    still to come."""
    return outcomes.completed + outcomes.cancelled + outcomes.no_show


def days_covered(week_start: date, first_day: date, last_day: date) -> int:
    """Days of the Monday-Sunday starting week_start that fall within first_day..last_day."""
    start = max(week_start, first_day)
    end = min(week_start + timedelta(days=6), last_day)
    return max((end - start).days + 1, 0)


def complete_week(week: WeekStats, first_day: date, last_day: date) -> WeekStats:
    """The week with its coverage, status, outcomes, rates and new patients filled in."""
    covered = days_covered(week.week_start, first_day, last_day)
    status: WeekStatus
    if not week.events_by_type:
        status = "empty"
    elif covered < 7:
        status = "partial"
    else:
        status = "complete"
    outcomes = outcomes_of(week.events_by_type)
    return replace(
        week,
        days_covered=covered,
        status=status,
        outcomes=outcomes,
        cancellation_rate=cancellation_rate(outcomes),
        no_show_rate=no_show_rate(outcomes),
        new_patients=sum(n for kind, n in week.events_by_type.items() if is_new_patient(kind)),
    )


def with_changes(weeks: Sequence[WeekStats]) -> tuple[WeekStats, ...]:
    """Each complete week with what it is measured against: its revenue change from the
    nearest complete week before it, and the mean of up to AVERAGE_WEEKS complete weeks
    before it (cents rounded half to even). The headline's rules, so the latest complete
    week's figures are the headline's."""
    result = []
    before: list[int] = []  # revenue cents of the complete weeks so far
    for week in weeks:
        if week.status == "complete":
            recent = before[-AVERAGE_WEEKS:]
            week = replace(
                week,
                change_pct=percent_change(week.revenue_cents, before[-1] if before else None),
                average_4w_revenue_cents=round(Fraction(sum(recent), len(recent)))
                if recent
                else None,
            )
            before.append(week.revenue_cents)
        result.append(week)
    return tuple(result)


def revenue_by_treatment(weeks: Sequence[WeekStats]) -> dict[str, int]:
    """The period's revenue per treatment type, largest first (then by name)."""
    totals: dict[str, int] = {}
    for week in weeks:
        for kind, cents in week.revenue_by_treatment_cents.items():
            totals[kind] = totals.get(kind, 0) + cents
    return dict(sorted(totals.items(), key=lambda item: (-item[1], item[0])))


def period_totals(weeks: Sequence[WeekStats]) -> PeriodTotals:
    """The sums over every week; `weeks` have been through complete_week()."""
    counts = dict.fromkeys(OUTCOMES, 0)
    for week in weeks:
        for name in OUTCOMES:
            counts[name] += getattr(week.outcomes, name)
    outcomes = AppointmentOutcomes(**counts)
    revenue_cents = sum(week.revenue_cents for week in weeks)
    by_treatment = revenue_by_treatment(weeks)
    return PeriodTotals(
        revenue_cents=revenue_cents,
        treatments_completed=sum(week.treatments_completed for week in weeks),
        appointments=sum(week.appointments for week in weeks),
        bookings=sum(week.bookings for week in weeks),
        new_patients=sum(week.new_patients for week in weeks),
        outcomes=outcomes,
        cancellation_rate=cancellation_rate(outcomes),
        no_show_rate=no_show_rate(outcomes),
        by_treatment=tuple(
            TreatmentRevenue(kind, cents, rate(cents, revenue_cents))
            for kind, cents in by_treatment.items()
        ),
    )


def clinic_movers(clinics: Sequence[ClinicStats], kept: int = MOVERS_KEPT) -> ClinicMovers:
    """The clinics that rose most (a positive change) and fell most (a negative one); ties
    go to the lower id. A clinic without a change to compare is in neither."""
    changed = [
        (Fraction(clinic.change_pct), clinic.clinic_id)
        for clinic in clinics
        if clinic.change_pct is not None
    ]
    rises = sorted((-change, name) for change, name in changed if change > 0)
    falls = sorted((change, name) for change, name in changed if change < 0)
    return ClinicMovers(
        up=tuple(name for _, name in rises[:kept]),
        down=tuple(name for _, name in falls[:kept]),
    )


def headline(weeks: Sequence[WeekStats]) -> Headline:
    """Over complete weeks only; `weeks` have been through with_changes()."""
    complete = [week for week in weeks if week.status == "complete"]
    empty = tuple(week.week_start for week in weeks if week.status == "empty")
    partial = tuple(week.week_start for week in weeks if week.status == "partial")
    if not complete:
        return Headline(empty_weeks=empty, partial_weeks=partial)
    latest = complete[-1]
    previous = complete[-2] if len(complete) > 1 else None
    # max/min keep the first of equals: ties go to the earlier week.
    best = max(complete, key=lambda week: week.revenue_cents)
    worst = min(complete, key=lambda week: week.revenue_cents)
    return Headline(
        latest_week=latest.week_start,
        latest_revenue_cents=latest.revenue_cents,
        previous_week=previous.week_start if previous else None,
        previous_revenue_cents=previous.revenue_cents if previous else None,
        change_pct=latest.change_pct,
        average_4w_revenue_cents=latest.average_4w_revenue_cents,
        best_week=best.week_start,
        worst_week=worst.week_start,
        empty_weeks=empty,
        partial_weeks=partial,
    )


class Derived(NamedTuple):
    """Every figure derived from the weeks and the clinic cells, for a file's report and a
    scope's history alike: one definition of each."""

    weeks: tuple[WeekStats, ...]  # with their changes and 4-week averages
    headline: Headline
    clinics: tuple[ClinicStats, ...]
    totals: PeriodTotals
    movers: ClinicMovers


def derive(weeks: Sequence[WeekStats], cells: ClinicWeeks) -> Derived:
    """`weeks` have been through complete_week()."""
    changed = with_changes(weeks)
    top = headline(changed)
    clinics = clinic_stats(cells, top)
    return Derived(changed, top, clinics, period_totals(changed), clinic_movers(clinics))


def clinic_stats(cells: ClinicWeeks, headline: Headline) -> tuple[ClinicStats, ...]:
    """One entry per clinic with a valid row, by revenue (highest first), then id. Every
    clinic is compared on the headline's two weeks, so the changes line up."""
    count = len(cells.clinic_names)
    if count == 0:
        return ()
    totals = np.zeros((count, cells.values.shape[1]), _sum_dtype(cells.values))
    np.add.at(totals, cells.clinic_ids, cells.values)
    weeks_active = np.bincount(cells.clinic_ids, minlength=count)
    latest = _week_revenue(cells, headline.latest_week, count)
    previous = _week_revenue(cells, headline.previous_week, count)
    result = []
    for index, name in enumerate(cells.clinic_names):
        latest_cents = None if latest is None else int(latest[index])
        previous_cents = None if previous is None else int(previous[index])
        result.append(
            ClinicStats(
                clinic_id=name,
                **clinic_sums(totals[index]),
                weeks_active=int(weeks_active[index]),
                latest_week_revenue_cents=latest_cents,
                previous_week_revenue_cents=previous_cents,
                change_pct=None
                if latest_cents is None
                else percent_change(latest_cents, previous_cents),
            )
        )
    result.sort(key=lambda clinic: (-clinic.revenue_cents, clinic.clinic_id))
    return tuple(result)


def _sum_dtype(values: Any) -> Any:
    """int64 when no sum of these cells can overflow it, else Python ints (object)."""
    if values.dtype == object or not values.size:
        return values.dtype
    bound = int(np.abs(values).max()) * len(values)
    return values.dtype if bound < 2**63 else object


def _week_revenue(cells: ClinicWeeks, week: date | None, count: int) -> Any:
    """Revenue cents of each clinic in that week (0 where it had none), or None."""
    if week is None:
        return None
    number = (week - FIRST_MONDAY).days // 7
    revenue = np.zeros(count, _sum_dtype(cells.values))
    in_week = cells.weeks == number
    np.add.at(revenue, cells.clinic_ids[in_week], cells.values[in_week, 0])
    return revenue

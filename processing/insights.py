"""What a manager reads first, derived once from the weekly totals: coverage, appointment
outcomes and their rates, the headline (latest complete week against the ones before), and
percent changes. Pure functions over report values; every surface formats these, none
recomputes them.

Percentages are exact: rationals rounded half to even to one decimal, as strings ("12.5").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import date, timedelta
from fractions import Fraction
from typing import Any

import numpy as np

from processing.report import (
    AppointmentOutcomes,
    ClinicStats,
    ClinicWeeks,
    Headline,
    WeekStats,
    WeekStatus,
    clinic_sums,
)
from processing.schema import OUTCOMES, appointment_outcome, is_new_patient

FIRST_MONDAY = date(1900, 1, 1)

AVERAGE_WEEKS = 4


def tenths(value: Fraction) -> str:
    """A percentage with one decimal, rounded half to even: Fraction(25, 2) -> '12.5'."""
    scaled = round(value * 10)
    sign = "-" if scaled < 0 else ""
    whole, tenth = divmod(abs(scaled), 10)
    return f"{sign}{whole}.{tenth}"


def percent_change(new: int, old: int | None) -> str | None:
    """(new - old) / old as a percentage; None when there is nothing to compare with."""
    if old is None or old == 0:
        return None
    return tenths(Fraction(new - old, old) * 100)


def rate(part: int, whole: int) -> str | None:
    return None if whole == 0 else tenths(Fraction(part, whole) * 100)


def outcomes_of(events_by_type: Mapping[str, int]) -> AppointmentOutcomes:
    counts = dict.fromkeys(OUTCOMES, 0)
    for event_type, count in events_by_type.items():
        outcome = appointment_outcome(event_type)
        if outcome is not None:
            counts[outcome] += count
    return AppointmentOutcomes(**counts)


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
    attended_or_not = outcomes.completed + outcomes.cancelled + outcomes.no_show
    return replace(
        week,
        days_covered=covered,
        status=status,
        outcomes=outcomes,
        cancellation_rate=rate(outcomes.cancelled, attended_or_not),
        no_show_rate=rate(outcomes.no_show, attended_or_not),
        new_patients=sum(n for kind, n in week.events_by_type.items() if is_new_patient(kind)),
    )


def headline(weeks: Sequence[WeekStats]) -> Headline:
    complete = [week for week in weeks if week.status == "complete"]
    empty = tuple(week.week_start for week in weeks if week.status == "empty")
    partial = tuple(week.week_start for week in weeks if week.status == "partial")
    if not complete:
        return Headline(empty_weeks=empty, partial_weeks=partial)
    latest, before = complete[-1], complete[:-1]
    previous = before[-1] if before else None
    recent = before[-AVERAGE_WEEKS:]
    average = (
        round(Fraction(sum(week.revenue_cents for week in recent), len(recent))) if recent else None
    )
    # max/min keep the first of equals: ties go to the earlier week.
    best = max(complete, key=lambda week: week.revenue_cents)
    worst = min(complete, key=lambda week: week.revenue_cents)
    return Headline(
        latest_week=latest.week_start,
        latest_revenue_cents=latest.revenue_cents,
        previous_week=previous.week_start if previous else None,
        previous_revenue_cents=previous.revenue_cents if previous else None,
        change_pct=percent_change(
            latest.revenue_cents, previous.revenue_cents if previous else None
        ),
        average_4w_revenue_cents=average,
        best_week=best.week_start,
        worst_week=worst.week_start,
        empty_weeks=empty,
        partial_weeks=partial,
    )


def clinic_stats(cells: ClinicWeeks, headline: Headline) -> tuple[ClinicStats, ...]:
    """One entry per clinic with a valid row, by revenue (highest first), then id. Every
    clinic is compared on the headline's two weeks, so the changes line up."""
    count = len(cells.clinic_names)
    if count == 0:
        return ()
    totals = np.zeros((count, cells.values.shape[1]), cells.values.dtype)
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


def _week_revenue(cells: ClinicWeeks, week: date | None, count: int) -> Any:
    """Revenue cents of each clinic in that week (0 where it had none), or None."""
    if week is None:
        return None
    number = (week - FIRST_MONDAY).days // 7
    revenue = np.zeros(count, cells.values.dtype)
    in_week = cells.weeks == number
    np.add.at(revenue, cells.clinic_ids[in_week], cells.values[in_week, 0])
    return revenue

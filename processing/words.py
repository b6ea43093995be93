"""The words people read, one home for every surface: Slack, the console, the CLI's text and
the page (served to it as JSON). JSON and CSV keep the machine names.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import TYPE_CHECKING, Any, Final

from processing.schema import (
    INVALID_REVENUE,
    INVALID_TIMESTAMP,
    MALFORMED_ROW,
    MISSING_REQUIRED_FIELD,
)
from processing.text import displayable

if TYPE_CHECKING:
    from processing.report import WeeklyReport, WeekStats

INVALID_ROWS: Final = "invalid rows"
REASON_WORDS: Final = {
    MALFORMED_ROW: "wrong number of fields",
    MISSING_REQUIRED_FIELD: "missing value",
    INVALID_TIMESTAMP: "bad date",
    INVALID_REVENUE: "bad amount",
}
MONTHS: Final = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
MAX_TREATMENT_CHARS: Final = 40
GAPS_NAMED: Final = 3  # empty weeks named in the data-quality line; the rest are counted
UP: Final = "\u25b2"  # ▲
DOWN: Final = "\u25bc"  # ▼
WARNING: Final = "\u26a0"  # ⚠
CHECK: Final = "\u2713"  # ✓
NOTHING: Final = "\u2013"  # an en dash in a cell that has no figure
SEP: Final = " \u00b7 "  # a middle dot between the parts of a line
_DASH: Final = "\u2013"  # an en dash between dates


def reason_words(reason: str) -> str:
    """'malformed_row' -> 'wrong number of fields'; an unknown reason in plain words."""
    return REASON_WORDS.get(reason) or displayable(reason.replace("_", " "))


def treatment_name(kind: str, limit: int = MAX_TREATMENT_CHARS) -> str:
    """'root_canal' -> 'Root canal', as people write it; safe to show, one line."""
    words = displayable(kind.replace("_", " "), limit)
    return (words[:1].upper() + words[1:]) or "(no type)"


def day_month(day: date) -> str:
    """'1 Jan'."""
    return f"{day.day} {MONTHS[day.month - 1]}"


def day_month_year(day: date) -> str:
    """'1 Jan 2024'."""
    return f"{day_month(day)} {day.year}"


def date_range(start: date, end: date) -> str:
    """'1\u20137 Jan 2024', '29 Jan \u2013 4 Feb 2024', '30 Dec 2024 \u2013 5 Jan 2025' (en dashes)."""
    if start.year != end.year:
        return f"{day_month_year(start)} {_DASH} {day_month_year(end)}"
    if start.month != end.month:
        return f"{day_month(start)} {_DASH} {day_month_year(end)}"
    return f"{start.day}{_DASH}{day_month_year(end)}"


def week_range(week_start: date) -> str:
    """The Monday-Sunday week starting week_start: '1\u20137 Jan 2024'."""
    return date_range(week_start, week_start + timedelta(days=6))


def change_words(pct: str | None) -> str:
    """'12.5' -> '\u25b2 12.5%', '-28.8' -> '\u25bc 28.8%', '0.0' -> '0.0%' (flat to a tenth);
    '' for None. An arrow and a sign that do not depend on colour."""
    if pct is None:
        return ""
    if pct.lstrip("-") == "0.0":
        return "0.0%"
    if pct.startswith("-"):
        return f"{DOWN} {pct[1:]}%"
    return f"{UP} {pct}%"


def week_status_words(week: WeekStats) -> str:
    """'' for a complete week, 'no data', or 'partial, 3 of 7 days'."""
    if week.status == "empty":
        return "no data"
    if week.status == "partial":
        return f"partial, {week.days_covered} of 7 days"
    return ""


def outcomes_words(week: WeekStats) -> str:
    """'30 completed \u00b7 5 cancelled (14.3%) \u00b7 2 no-shows (5.7%)'."""
    outcomes = week.outcomes
    cancelled = f"{outcomes.cancelled:,} cancelled"
    if week.cancellation_rate is not None:
        cancelled += f" ({week.cancellation_rate}%)"
    no_shows = plural(outcomes.no_show, "no-show")
    if week.no_show_rate is not None:
        no_shows += f" ({week.no_show_rate}%)"
    return SEP.join([f"{outcomes.completed:,} completed", cancelled, no_shows])


def plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}" if count == 1 else f"{count:,} {noun}s"


def data_quality_parts(report: WeeklyReport) -> list[str]:
    """What a reader should know before trusting the figures: rows left out, weeks without
    data, weeks cut short. Empty when there is nothing to say."""
    parts = []
    if report.rows_invalid:
        parts.append(
            f"{plural(report.rows_invalid, 'row')} ({report.invalid_pct}%) left out"
            if report.invalid_pct != "0.0"
            else f"{plural(report.rows_invalid, 'row')} (under 0.1%) left out"
        )
    gaps = _runs(report.headline.empty_weeks)
    if gaps:
        named = ", ".join(
            date_range(first, last + timedelta(days=6)) for first, last in gaps[:GAPS_NAMED]
        )
        more = sum((last - first).days // 7 + 1 for first, last in gaps[GAPS_NAMED:])
        parts.append(f"no data {named}" + (f" and {plural(more, 'more week')}" if more else ""))
    weeks = report.weeks
    if weeks and weeks[0].status == "partial" and len(weeks) > 1:
        parts.append(f"first week partial, {weeks[0].days_covered} of 7 days")
    if weeks and weeks[-1].status == "partial":
        parts.append(f"last week partial, {weeks[-1].days_covered} of 7 days")
    return parts


def _runs(mondays: tuple[date, ...]) -> list[tuple[date, date]]:
    """Consecutive weeks as (first Monday, last Monday) runs."""
    runs: list[tuple[date, date]] = []
    for monday in mondays:
        if runs and monday - runs[-1][1] == timedelta(weeks=1):
            runs[-1] = (runs[-1][0], monday)
        else:
            runs.append((monday, monday))
    return runs


def data_quality_line(report: WeeklyReport) -> str:
    """'\u26a0 958 rows (0.5%) left out \u00b7 no data 19\u201325 Aug 2024 \u00b7 last week
    partial, 1 of 7 days', or '\u2713 every row valid, no gaps'."""
    parts = data_quality_parts(report)
    if not parts:
        return f"{CHECK} every row valid, every week complete"
    return f"{WARNING} " + SEP.join(parts)


def sentence(clause: str) -> str:
    """An error's clause ("the upload stalled: ...") as a sentence standing on its own:
    capitalised, with its full stop."""
    return clause[:1].upper() + clause[1:] + ("" if clause.endswith(".") else ".")


def duration(seconds: float) -> str:
    """'under a second', '3 s', '2 min 5 s', '1 h 4 min'."""
    if seconds < 1:
        return "under a second"
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def time_left(left_s: float | None) -> str:
    """'about 3 s left', 'less than a second left', or that it is too early to tell."""
    if left_s is None:
        return "estimating the time left…"
    if left_s < 1:
        return "less than a second left"
    return f"about {duration(left_s)} left"


def display_words(report: WeeklyReport) -> dict[str, Any]:
    """Everything the page shows in words, so that it formats and never derives: lists run
    parallel to the report's `weeks` and `clinics`."""
    headline = report.headline
    latest = report.latest_week

    def week_words(monday: date | None) -> str | None:
        return None if monday is None else week_range(monday)

    return {
        "period": date_range(report.weeks[0].week_start, report.weeks[-1].week_end)
        if report.weeks
        else None,
        "data_quality": data_quality_line(report),
        "data_quality_ok": not data_quality_parts(report),
        "dialect": None if report.dialect.plain else f"File {report.dialect.describe()}",
        "latest_week": week_words(headline.latest_week),
        "previous_week": week_words(headline.previous_week),
        "best_week": week_words(headline.best_week),
        "worst_week": week_words(headline.worst_week),
        "change": change_words(headline.change_pct) or None,
        "latest_outcomes": None if latest is None else outcomes_words(latest),
        "weeks": [
            {
                "label": week_range(week.week_start),
                "change": change_words(week.change_pct),
                "status": week_status_words(week),
            }
            for week in report.weeks
        ],
        "clinic_changes": [change_words(clinic.change_pct) for clinic in report.clinics],
        "treatment_names": {
            entry.treatment_type: treatment_name(entry.treatment_type)
            for entry in report.totals.by_treatment
        },
        "reasons": {reason: reason_words(reason) for reason in report.errors},
    }

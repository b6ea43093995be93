"""The words people read, one home for every surface: Slack, the console, the CLI's text and
the page (served to it as JSON). JSON and CSV keep the machine names.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any, Final, Literal, NamedTuple

from processing.schema import (
    INVALID_REVENUE,
    INVALID_TIMESTAMP,
    MALFORMED_ROW,
    MISSING_REQUIRED_FIELD,
    REASONS,
)
from processing.text import displayable

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from processing.report import Headline, ReasonSummary, WeeklyReport, WeekStats

Direction = Literal["up", "down"]

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
# Clinics named as up most and as down most, on every surface; the report's JSON keeps more
# (processing/insights.py MOVERS_KEPT) for whoever wants them.
CLINICS_SHOWN: Final = 3
MAX_CLINIC_ID_CHARS: Final = 30
MOVERS_TITLES: Final[dict[Direction, str]] = {"up": "Up most", "down": "Down most"}
# The headline's sentences when a figure is missing.
NO_WEEK: Final = "no week: no row was valid"
NO_COMPLETE_WEEK: Final = "no week has data on all seven days"
NO_EARLIER_WEEK: Final = "no earlier complete week to compare"
LATEST_WEEK: Final = "Latest complete week"
AVERAGE_4W: Final = "4-week average"
# The chart's words (bot/report/chart.py), and its file's title in Slack.
CHART_TITLE: Final = "Weekly revenue by treatment type"
OTHER_TYPES: Final = "Other"  # the types past the chart's colours, stacked as one
PARTIAL_WEEK: Final = "Week cut short"
NO_DATA: Final = "No data"
NO_VALID_ROWS: Final = "no valid rows"
NO_TREATMENT_REVENUE: Final = "No treatment revenue in this period"
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


def direction(pct: str | None) -> Direction | None:
    """Which way a change went, as change_words() draws it: 'up', 'down', or None (no change
    to show, or flat to a tenth). What a surface colours by, never by the words."""
    if pct is None or pct.lstrip("-") == "0.0":
        return None
    return "down" if pct.startswith("-") else "up"


class Change(NamedTuple):
    words: str
    direction: Direction | None


COMPLETE_WEEK: Final = "complete"


def week_status_words(week: WeekStats) -> str:
    """'' for a complete week (COMPLETE_WEEK where a table must say it), 'no data', or
    'partial, 3 of 7 days'."""
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


def file_size(size_bytes: int) -> str:
    """'1 byte', '1,023 bytes', '1.5 KB', '12 KB', '9.5 MB', '1,024 MB'. Binary units, and MB
    from 1 MB on, however large: the size limit is set in MB (MAX_FILE_SIZE_MB), so a size
    and the limit compare at a glance. One decimal under 10 (none for .0), whole numbers from
    10; halves round up. Integer arithmetic only, so the page's fileSize() (app.js), which
    formats the bytes it is sending, writes the same words (tests/web/test_page_rules.py)."""
    if size_bytes < 1024:
        return "1 byte" if size_bytes == 1 else f"{size_bytes:,} bytes"
    # KB while the whole KB stay under 1,024: 1,048,575 bytes read "1 MB", not "1,024 KB".
    unit, name = (1024, "KB") if size_bytes < 1024**2 - 512 else (1024**2, "MB")
    tenths = (20 * size_bytes + unit) // (2 * unit)
    if tenths < 100:
        whole, tenth = divmod(tenths, 10)
        return f"{whole}.{tenth} {name}" if tenth else f"{whole} {name}"
    return f"{(2 * size_bytes + unit) // (2 * unit):,} {name}"


def waiting_for_a_slot(position: int | None) -> str:
    """'waiting for a free slot (position 3 in the queue)': a queued job, as a clause."""
    place = "" if position is None else f" (position {position:,} in the queue)"
    return f"waiting for a free slot{place}"


def queue_words(position: int | None) -> str:
    """A job waiting for a slot: 'Waiting for a free slot (position 3 in the queue)…'."""
    clause = waiting_for_a_slot(position)
    return f"{clause[0].upper()}{clause[1:]}…"


# -- the headline, in the same words on every surface --------------------------------------


def weeks_words(report: WeeklyReport) -> str:
    """'53 weeks, 1 Jan 2024 \u2013 5 Jan 2025', or that there is no week at all."""
    if not report.weeks:
        return NO_WEEK
    return f"{plural(len(report.weeks), 'week')}, {_period(report)}"


def over_weeks(report: WeeklyReport) -> str | None:
    """'over 53 weeks (1 Jan 2024 \u2013 5 Jan 2025)'; None without a week."""
    if not report.weeks:
        return None
    return f"over {plural(len(report.weeks), 'week')} ({_period(report)})"


def _period(report: WeeklyReport) -> str:
    return date_range(report.weeks[0].week_start, report.weeks[-1].week_end)


def latest_week_title(headline: Headline) -> str:
    """'Latest complete week, 23\u201329 Dec 2024', or the bare title when there is none."""
    if headline.latest_week is None:
        return LATEST_WEEK
    return f"{LATEST_WEEK}, {week_range(headline.latest_week)}"


def comparison(headline: Headline) -> Change:
    """The latest complete week against the one before: '\u25bc 28.8% vs 16\u201322 Dec 2024',
    or why there is nothing to compare."""
    if headline.latest_week is None:
        return Change(NO_COMPLETE_WEEK, None)
    if headline.previous_week is None:
        return Change(NO_EARLIER_WEEK, None)
    previous = week_range(headline.previous_week)
    if headline.change_pct is None:  # the week before took nothing: no percentage of zero
        return Change(f"no revenue in {previous} to compare", None)
    return Change(
        f"{change_words(headline.change_pct)} vs {previous}", direction(headline.change_pct)
    )


def average_note(headline: Headline) -> str:
    """What the 4-week average is an average of, or why there is none."""
    if headline.average_4w_revenue_cents is None:
        return "needs complete weeks before the latest"
    return "of the complete weeks before it"


def best_worst(headline: Headline, amount: Callable[[date], str] | None = None) -> str | None:
    """'Best week 18\u201324 Mar 2024 \u00b7 worst week 20\u201326 May 2024', each week followed by
    its `amount(week_start)` in brackets when given; None without a complete week."""
    if headline.best_week is None or headline.worst_week is None:
        return None

    def week(monday: date) -> str:
        return week_range(monday) + ("" if amount is None else f" ({amount(monday)})")

    return f"Best week {week(headline.best_week)}{SEP}worst week {week(headline.worst_week)}"


def appointments_title(week: WeekStats) -> str:
    """'Appointments, 23\u201329 Dec 2024', before that week's outcomes_words()."""
    return f"Appointments, {week_range(week.week_start)}"


def movers_words(report: WeeklyReport) -> dict[Direction, list[str]]:
    """The CLINICS_SHOWN clinics up most and down most: 'CL-025 \u25b2 799.6%' each."""
    movers = report.movers
    changes = {clinic.clinic_id: clinic.change_pct for clinic in report.clinics}

    def named(ids: Iterable[str]) -> list[str]:
        return [
            f"{displayable(clinic_id, MAX_CLINIC_ID_CHARS)} {change_words(changes[clinic_id])}"
            for clinic_id in ids
        ]

    return {
        "up": named(movers.up[:CLINICS_SHOWN]),
        "down": named(movers.down[:CLINICS_SHOWN]),
    }


def invalid_rows_line(reason: str, summary: ReasonSummary, rows_shown: int | None = None) -> str:
    """'bad date: 3 (rows 294, 988, 1733)': the first rows_shown row numbers (all of those
    kept without it), then '\u2026' when there are more."""
    line = f"{reason_words(reason)}: {summary.count:,}"
    rows = summary.first_rows[:rows_shown]
    if not rows:
        return line
    more = ", …" if summary.count > len(rows) else ""
    label = "row" if summary.count == 1 else "rows"
    # No thousands separators: "rows 1,963, 2,518" would read as four rows.
    return f"{line} ({label} {', '.join(str(row) for row in rows)}{more})"


def invalid_rows_lines(
    errors: Mapping[str, ReasonSummary], rows_shown: int | None = None
) -> list[str]:
    """invalid_rows_line() for each reason with a row, in the order the engine checks them."""
    ordered = [*(r for r in REASONS if r in errors), *(r for r in errors if r not in REASONS)]
    return [
        invalid_rows_line(reason, errors[reason], rows_shown)
        for reason in ordered
        if errors[reason].count
    ]


def other_event_note(count: int) -> str:
    """Rows with an amount on an event that is not a completed treatment, which no figure
    counts."""
    verb = "has" if count == 1 else "have"
    return (
        f"{plural(count, 'row')} {verb} an amount on an event other than a completed "
        "treatment; those amounts are not counted."
    )


def display_words(report: WeeklyReport, *, source_name: str, currency: str) -> dict[str, Any]:
    """Everything the page shows in words, so that it formats and never composes: lists run
    parallel to the report's `weeks` and `clinics`; a `direction` wherever the page colours a
    change. Every label in it has been through displayable()."""
    return {
        "source": SEP.join(
            [
                f"From {displayable(source_name)}",
                f"weeks in {report.timezone}",
                f"amounts in {currency}",
            ]
        ),
        **_headline_display(report),
        "data_quality": data_quality_line(report),
        "data_quality_ok": not data_quality_parts(report),
        "dialect": None if report.dialect.plain else f"File {report.dialect.describe()}",
        "movers": [
            f"{MOVERS_TITLES[way]}: {', '.join(names) or 'none'}"
            for way, names in movers_words(report).items()
        ],
        "clinics_week": "Latest week"
        if report.headline.latest_week is None
        else f"Week of {week_range(report.headline.latest_week)}",
        "weeks": [
            {
                "label": week_range(week.week_start),
                "change": change_words(week.change_pct),
                "direction": direction(week.change_pct),
                "status": week_status_words(week) or COMPLETE_WEEK,
            }
            for week in report.weeks
        ],
        "clinics": [
            {"change": change_words(clinic.change_pct), "direction": direction(clinic.change_pct)}
            for clinic in report.clinics
        ],
        "treatment_names": {
            entry.treatment_type: treatment_name(entry.treatment_type)
            for entry in report.totals.by_treatment
        },
        **_invalid_rows_display(report),
        "show_all": {
            "weeks": f"Show all {plural(len(report.weeks), 'week')}",
            "clinics": f"Show all {plural(len(report.clinics), 'clinic')}",
            "treatment_types": f"Show all {plural(len(report.totals.by_treatment), 'treatment type')}",
        },
    }


def _headline_display(report: WeeklyReport) -> dict[str, Any]:
    headline = report.headline
    latest = report.latest_week
    change = comparison(headline)
    return {
        "weeks_period": weeks_words(report),
        "latest_title": latest_week_title(headline),
        "comparison": {"words": change.words, "direction": change.direction},
        "average_note": average_note(headline),
        "best_worst": best_worst(headline),
        "appointments": None
        if latest is None
        else f"{appointments_title(latest)}: {outcomes_words(latest)}",
    }


def _invalid_rows_display(report: WeeklyReport) -> dict[str, Any]:
    invalid = report.rows_invalid
    return {
        "invalid_intro": None
        if not invalid
        else (
            f"{invalid:,} of {report.rows_total:,} rows are {INVALID_ROWS}, left out of every "
            "figure (row numbers as a spreadsheet shows them; the invalid rows CSV lists every "
            "one):"
        ),
        "invalid_reasons": invalid_rows_lines(report.errors),
        "other_event": other_event_note(report.revenue_on_other_event)
        if report.revenue_on_other_event
        else None,
    }

"""WeeklyReport -> the CLI's output formats (json, csv, text). Pure functions."""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from decimal import Decimal
from typing import Any, TextIO

from processing.report import ClinicStats, Headline, InvalidRow, WeeklyReport, WeekStats
from processing.schema import MISSING_REQUIRED_FIELD, REASONS, TREATMENT_COMPLETED
from processing.text import displayable
from processing.words import reason_words, treatment_name

CSV_COLUMNS = (
    "week_start",
    "week_end",
    "revenue",
    "treatments_completed",
    "appointments",
    "bookings",
    "status",
    "days_covered",
    "scheduled",
    "completed",
    "cancelled",
    "no_show",
    "rescheduled",
    "cancellation_rate",
    "no_show_rate",
    "new_patients",
)
CLINIC_CSV_COLUMNS = (
    "week_start",
    "clinic_id",
    "revenue",
    "treatments_completed",
    "appointments",
    "bookings",
    "cancelled",
    "no_show",
)


def amount(cents: int) -> str:
    """Cents as a plain decimal string with two places: 1234567 -> '12345.67'."""
    sign = "-" if cents < 0 else ""
    whole, part = divmod(abs(cents), 100)
    return f"{sign}{whole}.{part:02d}"


def grouped_amount(cents: int) -> str:
    """Cents with thousands separators: 1234567 -> '12,345.67'."""
    sign = "-" if cents < 0 else ""
    whole, part = divmod(abs(cents), 100)
    return f"{sign}{whole:,}.{part:02d}"


def _money(cents: int | None) -> str | None:
    return None if cents is None else amount(cents)


def _day(day: date | None) -> str | None:
    return None if day is None else day.isoformat()


def _errors(report: WeeklyReport) -> dict[str, Any]:
    errors: dict[str, Any] = {}
    for reason in REASONS:
        summary = report.error(reason)
        entry: dict[str, Any] = {"count": summary.count, "first_rows": list(summary.first_rows)}
        if reason == MISSING_REQUIRED_FIELD:
            entry["columns"] = dict(summary.columns)
        errors[reason] = entry
    return errors


def _headline(headline: Headline) -> dict[str, Any]:
    return {
        "latest_week": _day(headline.latest_week),
        "latest_revenue": _money(headline.latest_revenue_cents),
        "previous_week": _day(headline.previous_week),
        "previous_revenue": _money(headline.previous_revenue_cents),
        "change_pct": headline.change_pct,
        "average_4w_revenue": _money(headline.average_4w_revenue_cents),
        "best_week": _day(headline.best_week),
        "worst_week": _day(headline.worst_week),
        "empty_weeks": [day.isoformat() for day in headline.empty_weeks],
        "partial_weeks": [day.isoformat() for day in headline.partial_weeks],
    }


def _week(week: WeekStats) -> dict[str, Any]:
    outcomes = week.outcomes
    return {
        "week_start": week.week_start.isoformat(),
        "week_end": week.week_end.isoformat(),
        "revenue": amount(week.revenue_cents),
        "revenue_by_treatment": {
            kind: amount(cents) for kind, cents in week.revenue_by_treatment_cents.items()
        },
        "treatments_completed": week.treatments_completed,
        "appointments": week.appointments,
        "bookings": week.bookings,
        "events_by_type": dict(week.events_by_type),
        "days_covered": week.days_covered,
        "status": week.status,
        "appointment_outcomes": {
            "scheduled": outcomes.scheduled,
            "completed": outcomes.completed,
            "cancelled": outcomes.cancelled,
            "no_show": outcomes.no_show,
            "rescheduled": outcomes.rescheduled,
        },
        "cancellation_rate": week.cancellation_rate,
        "no_show_rate": week.no_show_rate,
        "new_patients": week.new_patients,
    }


def _clinic(clinic: ClinicStats) -> dict[str, Any]:
    return {
        "clinic_id": clinic.clinic_id,
        "revenue": amount(clinic.revenue_cents),
        "treatments_completed": clinic.treatments_completed,
        "appointments": clinic.appointments,
        "bookings": clinic.bookings,
        "cancelled": clinic.cancelled,
        "no_show": clinic.no_show,
        "weeks_active": clinic.weeks_active,
        "latest_week_revenue": _money(clinic.latest_week_revenue_cents),
        "previous_week_revenue": _money(clinic.previous_week_revenue_cents),
        "change_pct": clinic.change_pct,
    }


def to_dict(report: WeeklyReport, source: str, currency: str) -> dict[str, Any]:
    """The report as JSON values; the keys' order is part of the contract (README)."""
    return {
        "source": source,
        "timezone": report.timezone,
        "currency": currency,
        "dialect": {
            "encoding": report.dialect.encoding,
            "delimiter": report.dialect.delimiter,
            "line_end": report.dialect.line_end,
        },
        "rows": {
            "total": report.rows_total,
            "valid": report.rows_valid,
            "invalid": report.rows_invalid,
        },
        "errors": _errors(report),
        "warnings": {"revenue_on_other_event": report.revenue_on_other_event},
        "revenue": amount(report.revenue_cents),
        "first_day": _day(report.first_day),
        "last_day": _day(report.last_day),
        "headline": _headline(report.headline),
        "weeks": [_week(week) for week in report.weeks],
        "clinics": [_clinic(clinic) for clinic in report.clinics],
    }


def to_json(report: WeeklyReport, source: str, currency: str) -> str:
    return json.dumps(to_dict(report, source, currency), indent=2, ensure_ascii=False) + "\n"


def to_csv(report: WeeklyReport) -> str:
    """One row per week; rates are empty where there is nothing to divide by."""
    treatment_types = report.treatment_types
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*CSV_COLUMNS, *(f"revenue_{kind}" for kind in treatment_types)])
    for week in report.weeks:
        by_type = week.revenue_by_treatment_cents
        outcomes = week.outcomes
        writer.writerow(
            [
                week.week_start.isoformat(),
                week.week_end.isoformat(),
                amount(week.revenue_cents),
                week.treatments_completed,
                week.appointments,
                week.bookings,
                week.status,
                week.days_covered,
                outcomes.scheduled,
                outcomes.completed,
                outcomes.cancelled,
                outcomes.no_show,
                outcomes.rescheduled,
                week.cancellation_rate or "",
                week.no_show_rate or "",
                week.new_patients,
                *(amount(by_type.get(kind, 0)) for kind in treatment_types),
            ]
        )
    return out.getvalue()


def to_clinic_csv(report: WeeklyReport) -> str:
    """One row per (week, clinic) with any valid row: `report --format csv --by clinic`."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CLINIC_CSV_COLUMNS)
    for cell in report.clinic_weeks.rows():
        writer.writerow(
            [
                cell.week_start.isoformat(),
                cell.clinic_id,
                amount(cell.revenue_cents),
                cell.treatments_completed,
                cell.appointments,
                cell.bookings,
                cell.cancelled,
                cell.no_show,
            ]
        )
    return out.getvalue()


INVALID_ROWS_COLUMNS = ("row", "reason", "column", "detail")
INVALID_ROWS_LIMIT = 100_000


class InvalidRowsCsv:
    """The invalid-rows file (`report --invalid-rows FILE`, invalid-rows.csv in Slack):
    every invalid row as it is read, at most `limit` of them, then one line saying how many
    more there were. Row numbers, reasons, column names and words; never a value."""

    def __init__(self, out: TextIO, limit: int = INVALID_ROWS_LIMIT) -> None:
        self._writer = csv.writer(out, lineterminator="\n")
        self._limit = limit
        self.written = 0
        self.left_out = 0
        self._writer.writerow(INVALID_ROWS_COLUMNS)

    def add(self, rows: list[InvalidRow]) -> None:
        room = self._limit - self.written
        for invalid in rows[:room]:
            self._writer.writerow([invalid.row, invalid.reason, invalid.column, invalid.detail])
        self.written += min(room, len(rows))
        self.left_out += max(0, len(rows) - room)

    def close(self) -> None:
        if self.left_out:
            self._writer.writerow(
                ["", "", "", f"and {self.left_out:,} more invalid rows, not listed here"]
            )


def _table(header: list[str], rows: list[list[str]], right: set[int]) -> list[str]:
    widths = [max(len(line[col]) for line in [header, *rows]) for col in range(len(header))]

    def fmt(line: list[str]) -> str:
        cells = [
            cell.rjust(width) if col in right else cell.ljust(width)
            for col, (cell, width) in enumerate(zip(line, widths, strict=True))
        ]
        return "  ".join(cells).rstrip()

    return [fmt(header), "  ".join("-" * width for width in widths), *map(fmt, rows)]


STATUS_MARKS = {"complete": "", "partial": "partial", "empty": "no data"}
CLINICS_SHOWN = 5


def to_text(report: WeeklyReport, source: str, currency: str) -> str:
    """For a terminal: the headline first, then clinics, then the weeks newest first."""
    lines = [
        f"Weekly report for {displayable(source)}",
        f"Timezone {report.timezone}, amounts in {currency}",
        *([f"File {report.dialect.describe()}"] if not report.dialect.plain else []),
        "",
        *_headline_lines(report, currency),
        "",
        f"Rows:     {report.rows_total:,} total, {report.rows_valid:,} valid, "
        f"{report.rows_invalid:,} invalid",
        f"Revenue:  {grouped_amount(report.revenue_cents)} {currency}",
    ]
    if report.weeks:
        lines.append(
            f"Weeks:    {len(report.weeks)} "
            f"({report.weeks[0].week_start} to {report.weeks[-1].week_end})"
        )
    lines += _clinic_lines(report)
    lines.append("")
    rows = [
        [
            str(week.week_start),
            grouped_amount(week.revenue_cents),
            f"{week.treatments_completed:,}",
            f"{week.appointments:,}",
            f"{week.bookings:,}",
            "" if week.cancellation_rate is None else f"{week.cancellation_rate}%",
            f"{week.events:,}",
            STATUS_MARKS[week.status]
            + (f" ({week.days_covered} of 7 days)" if week.status == "partial" else ""),
        ]
        for week in reversed(report.weeks)
    ]
    header = [
        "Week of", "Revenue", "Treatments", "Appointments", "Bookings", "Cancelled", "Events",
        "",
    ]  # fmt: skip
    lines += _table(header, rows, right={1, 2, 3, 4, 5, 6})
    totals = report.revenue_by_treatment_cents
    if totals:
        lines += ["", "Revenue by treatment type:"]
        lines += [
            "  " + line
            for line in _table(
                ["Treatment", "Revenue"],
                [
                    [treatment_name(kind, 60), grouped_amount(cents)]
                    for kind, cents in totals.items()
                ],
                right={1},
            )
        ]
    lines += ["", "Invalid rows:" if report.rows_invalid else "Invalid rows: none"]
    for reason in REASONS:
        summary = report.error(reason)
        if summary.count:
            shown = ", ".join(map(str, summary.first_rows))
            more = ", ..." if summary.count > len(summary.first_rows) else ""
            lines.append(f"  {reason_words(reason)}: {summary.count:,} (rows {shown}{more})")
    if report.revenue_on_other_event:
        lines += [
            "",
            f"Note: {report.revenue_on_other_event:,} rows carry a revenue amount on an event "
            f"other than {TREATMENT_COMPLETED}; those amounts are not counted.",
        ]
    return "\n".join(lines) + "\n"


def _change(pct: str | None) -> str:
    if pct is None:
        return "no earlier week to compare"
    return f"{'+' if not pct.startswith('-') else ''}{pct}%"


def _headline_lines(report: WeeklyReport, currency: str) -> list[str]:
    headline = report.headline
    if headline.latest_week is None or headline.latest_revenue_cents is None:
        lines = ["Latest complete week: none (no week with data on all seven days)"]
    else:
        line = (
            f"Latest complete week ({headline.latest_week}): "
            f"{grouped_amount(headline.latest_revenue_cents)} {currency}"
        )
        if headline.previous_week is not None:
            line += f", {_change(headline.change_pct)} vs {headline.previous_week}"
        if headline.average_4w_revenue_cents is not None:
            line += f", 4-week average {grouped_amount(headline.average_4w_revenue_cents)}"
        lines = [line, f"Best week {headline.best_week}, worst week {headline.worst_week}"]
    gaps = []
    if headline.empty_weeks:
        gaps.append("no data in the weeks of " + ", ".join(map(str, headline.empty_weeks[:10])))
        if len(headline.empty_weeks) > 10:
            gaps[-1] += f" and {len(headline.empty_weeks) - 10:,} more"
    if headline.partial_weeks:
        gaps.append("partial weeks " + ", ".join(map(str, headline.partial_weeks)))
    quality = "Data quality: every row valid"
    if report.rows_invalid:
        quality = (
            f"Data quality: {report.rows_invalid:,} of {report.rows_total:,} rows invalid "
            f"({report.invalid_pct}%), left out of every figure"
        )
    return [*lines, *(["; ".join(gaps).capitalize()] if gaps else []), quality]


def _clinic_lines(report: WeeklyReport) -> list[str]:
    compared = [clinic for clinic in report.clinics if clinic.change_pct is not None]
    if not compared or report.headline.latest_week is None:
        return []
    ranked = sorted(
        compared, key=lambda clinic: (-Decimal(clinic.change_pct or "0"), clinic.clinic_id)
    )
    top = ranked[:CLINICS_SHOWN]
    bottom = [clinic for clinic in ranked[::-1][:CLINICS_SHOWN] if clinic not in top]

    def names(clinics: list[ClinicStats]) -> str:
        return ", ".join(
            f"{displayable(clinic.clinic_id, 30)} {_change(clinic.change_pct)}"
            for clinic in clinics
        )

    lines = [
        "",
        f"Clinics by revenue change, week of {report.headline.latest_week} "
        f"vs {report.headline.previous_week}:",
        f"  Up most:   {names(top)}",
    ]
    if bottom:
        lines.append(f"  Down most: {names(bottom)}")
    return lines

"""WeeklyReport -> the CLI's output formats (json, csv, text). Pure functions."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any, TextIO

import msgspec
from msgspec.structs import asdict

from processing.history import History
from processing.report import (
    AppointmentOutcomes,
    ClinicMovers,
    ClinicStats,
    Headline,
    InvalidRow,
    PeriodTotals,
    WeeklyReport,
    WeekStats,
)
from processing.schema import MISSING_REQUIRED_FIELD, REASONS
from processing.text import displayable
from processing.words import (
    AVERAGE_4W,
    INVALID_ROWS,
    MOVERS_TITLES,
    NO_COMPLETE_WEEK,
    appointments_title,
    best_worst,
    change_words,
    comparison,
    data_quality_line,
    invalid_rows_lines,
    latest_week_title,
    movers_words,
    other_event_note,
    outcomes_words,
    over_weeks,
    plural,
    treatment_name,
    week_range,
    week_status_words,
)

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
    "revenue_change_pct",
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


def iso_utc(moment: datetime) -> str:
    """An instant as the JSON answers give it: UTC, to the millisecond, `Z` at the end."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


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


def _headline(headline: Headline, movers: ClinicMovers) -> dict[str, Any]:
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
        "clinics_up": list(movers.up),
        "clinics_down": list(movers.down),
    }


def _outcomes(outcomes: AppointmentOutcomes) -> dict[str, int]:
    return asdict(outcomes)  # field order: scheduled, completed, cancelled, no_show, rescheduled


def _totals(totals: PeriodTotals) -> dict[str, Any]:
    return {
        "treatments_completed": totals.treatments_completed,
        "appointments": totals.appointments,
        "bookings": totals.bookings,
        "new_patients": totals.new_patients,
        "appointment_outcomes": _outcomes(totals.outcomes),
        "cancellation_rate": totals.cancellation_rate,
        "no_show_rate": totals.no_show_rate,
        "revenue_by_treatment": [
            {
                "treatment_type": entry.treatment_type,
                "revenue": amount(entry.revenue_cents),
                "share_pct": entry.share_pct,
            }
            for entry in totals.by_treatment
        ],
    }


def _week(week: WeekStats) -> dict[str, Any]:
    return {
        "week_start": week.week_start.isoformat(),
        "week_end": week.week_end.isoformat(),
        "revenue": amount(week.revenue_cents),
        "change_pct": week.change_pct,
        "average_4w_revenue": _money(week.average_4w_revenue_cents),
        "revenue_by_treatment": {
            kind: amount(cents) for kind, cents in week.revenue_by_treatment_cents.items()
        },
        "treatments_completed": week.treatments_completed,
        "appointments": week.appointments,
        "bookings": week.bookings,
        "events_by_type": dict(week.events_by_type),
        "days_covered": week.days_covered,
        "status": week.status,
        "appointment_outcomes": _outcomes(week.outcomes),
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
        "totals": _totals(report.totals),
        "headline": _headline(report.headline, report.movers),
        "weeks": [_week(week) for week in report.weeks],
        "clinics": [_clinic(clinic) for clinic in report.clinics],
    }


def to_json(report: WeeklyReport, source: str, currency: str) -> str:
    # msgspec formats in C what json.dumps(indent=2) formats in Python; the
    # bytes are the same (tests/processing/test_render.py).
    document = msgspec.json.encode(to_dict(report, source, currency))
    return msgspec.json.format(document, indent=2).decode() + "\n"


def history_to_dict(
    history: History, *, scope: str, currency: str, exports: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """A scope's history as JSON values: `totals`, `headline`, `weeks` and `clinics` as in a
    file's report, each week ending with the export it comes from (README)."""
    report = history.report
    return {
        "scope": scope,
        "timezone": report.timezone,
        "currency": currency,
        "exports": list(exports),
        "first_day": _day(report.first_day),
        "last_day": _day(report.last_day),
        "totals": _totals(report.totals),
        "headline": _headline(report.headline, report.movers),
        "weeks": [
            {**_week(week), "export": source}
            for week, source in zip(report.weeks, history.week_exports, strict=True)
        ],
        "clinics": [_clinic(clinic) for clinic in report.clinics],
    }


def history_to_json(
    history: History, *, scope: str, currency: str, exports: Sequence[Mapping[str, Any]]
) -> str:
    document = msgspec.json.encode(
        history_to_dict(history, scope=scope, currency=currency, exports=exports)
    )
    return msgspec.json.format(document, indent=2).decode() + "\n"


def to_csv(report: WeeklyReport, *, week_exports: Sequence[str | None] | None = None) -> str:
    """One row per week; rates are empty where there is nothing to divide by. With
    `week_exports` (a history's), each row ends with the export its week comes from."""
    treatment_types = report.treatment_types
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    tail = ["export"] if week_exports is not None else []
    writer.writerow([*CSV_COLUMNS, *(f"revenue_{kind}" for kind in treatment_types), *tail])
    for index, week in enumerate(report.weeks):
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
                week.change_pct or "",
                *(amount(by_type.get(kind, 0)) for kind in treatment_types),
                *([week_exports[index] or ""] if week_exports is not None else []),
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
INVALID_ROWS_CHARS = 16 * 1_048_576  # and at most 16 MiB of them


_RESTS_KEPT = 1024


class InvalidRowsCsv:
    """The invalid-rows file (`report --invalid-rows FILE`, invalid-rows.csv in Slack):
    every invalid row as it is read, at most `limit` of them, then one line saying how many
    more there were. Row numbers, reasons, column names and words; never a value."""

    def __init__(
        self, out: TextIO, limit: int = INVALID_ROWS_LIMIT, limit_chars: int = INVALID_ROWS_CHARS
    ) -> None:
        self._out = out
        self._writer = csv.writer(out, lineterminator="\n")
        self._limit = limit
        self._limit_chars = limit_chars
        self._chars = 0
        self.written = 0
        self.left_out = 0
        self._writer.writerow(INVALID_ROWS_COLUMNS)
        # A file with one bad row in 20 lists 50,000 per million rows, nearly all with one of
        # a few (reason, column, detail): each is quoted once, a line is then its row number
        # and that text, rather than a csv module call per line.
        self._rests: dict[tuple[str, str, str], str] = {}

    def add(self, rows: list[InvalidRow]) -> None:
        room = self._limit - self.written
        lines = [f"{invalid.row},{self._rest(invalid)}" for invalid in rows[:room]]
        text = "".join(lines)
        if self._chars + len(text) > self._limit_chars:  # long details: keep what fits
            fits = self._limit_chars - self._chars
            kept = 0
            while kept < len(lines) and len(lines[kept]) <= fits:
                fits -= len(lines[kept])
                kept += 1
            lines, text = lines[:kept], "".join(lines[:kept])
        self._out.write(text)
        self._chars += len(text)
        self.written += len(lines)
        self.left_out += len(rows) - len(lines)

    def _rest(self, invalid: InvalidRow) -> str:
        """The line after the row number, CSV-quoted as needed."""
        key = (invalid.reason, invalid.column, invalid.detail)
        rest = self._rests.get(key)
        if rest is None:
            line = io.StringIO()
            csv.writer(line, lineterminator="\n").writerow(key)
            rest = line.getvalue()
            if len(self._rests) < _RESTS_KEPT:
                self._rests[key] = rest
        return rest

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
        f"{report.rows_invalid:,} {INVALID_ROWS}",
    ]
    lines += _clinic_lines(report)
    lines += _weeks_and_types(report)
    lines += ["", "Invalid rows:" if report.rows_invalid else "Invalid rows: none"]
    lines += [f"  {line}" for line in invalid_rows_lines(report.errors)]
    if report.revenue_on_other_event:
        lines += ["", f"Note: {other_event_note(report.revenue_on_other_event)}"]
    return "\n".join(lines) + "\n"


def history_to_text(history: History, *, scope: str, currency: str, exports: int) -> str:
    """A scope's history for a terminal: a file's report's parts that are not about rows,
    each week with the export it comes from."""
    report = history.report
    lines = [
        f"History of {displayable(scope)}: {plural(exports, 'export')}",
        f"Timezone {report.timezone}, amounts in {currency}",
        "",
        *_headline_lines(report, currency, of_a_file=False),
        *_clinic_lines(report),
        *_weeks_and_types(report, history.week_exports),
    ]
    return "\n".join(lines) + "\n"


def _weeks_and_types(
    report: WeeklyReport, week_exports: Sequence[str | None] | None = None
) -> list[str]:
    """The weeks newest first (with their export, for a history), then the types."""
    lines = [""]
    sources = list(week_exports) if week_exports is not None else [None] * len(report.weeks)
    rows = [
        [
            week_range(week.week_start),
            grouped_amount(week.revenue_cents),
            change_words(week.change_pct),
            f"{week.treatments_completed:,}",
            f"{week.appointments:,}",
            f"{week.bookings:,}",
            "" if week.cancellation_rate is None else f"{week.cancellation_rate}%",
            f"{week.events:,}",
            week_status_words(week),
            *([source or ""] if week_exports is not None else []),
        ]
        for week, source in zip(reversed(report.weeks), reversed(sources), strict=True)
    ]
    header = [
        "Week", "Revenue", "Change", "Treatments", "Appointments", "Bookings", "Cancelled",
        "Events", "", *(["Export"] if week_exports is not None else []),
    ]  # fmt: skip
    lines += _table(header, rows, right={1, 2, 3, 4, 5, 6, 7})
    by_treatment = report.totals.by_treatment
    if by_treatment:
        lines += ["", "Revenue by treatment type:"]
        lines += [
            "  " + line
            for line in _table(
                ["Treatment", "Revenue", "Share"],
                [
                    [
                        treatment_name(entry.treatment_type, 60),
                        grouped_amount(entry.revenue_cents),
                        "" if entry.share_pct is None else f"{entry.share_pct}%",
                    ]
                    for entry in by_treatment
                ],
                right={1, 2},
            )
        ]
    return lines


def _headline_lines(report: WeeklyReport, currency: str, *, of_a_file: bool = True) -> list[str]:
    """The headline's lines; a file's end with its data quality, which counts its rows."""
    headline = report.headline
    total = f"Total revenue: {grouped_amount(report.revenue_cents)} {currency}"
    over = over_weeks(report)
    lines = [total if over is None else f"{total} {over}"]
    latest = report.latest_week
    if latest is None:
        lines.append(f"{latest_week_title(headline)}: none ({NO_COMPLETE_WEEK})")
    else:
        parts = [
            f"{latest_week_title(headline)}: {grouped_amount(latest.revenue_cents)} {currency}",
            comparison(headline).words,
        ]
        if headline.average_4w_revenue_cents is not None:
            parts.append(f"{AVERAGE_4W} {grouped_amount(headline.average_4w_revenue_cents)}")
        lines.append(", ".join(parts))
        weeks = best_worst(headline)
        if weeks is not None:
            lines.append(weeks)
        lines.append(f"{appointments_title(latest)}: {outcomes_words(latest)}")
    if of_a_file:
        lines.append(f"Data quality: {data_quality_line(report)}")
    return lines


def _clinic_lines(report: WeeklyReport) -> list[str]:
    headline = report.headline
    if headline.latest_week is None:
        return []
    movers = movers_words(report)
    if not (movers["up"] or movers["down"]):
        return []
    lines = [
        "",
        f"Clinics by revenue change, {week_range(headline.latest_week)} "
        f"vs {week_range(headline.previous_week or headline.latest_week)}:",
    ]
    width = max(len(title) for title in MOVERS_TITLES.values()) + 1
    lines += [
        f"  {MOVERS_TITLES[way] + ':':<{width}} {', '.join(names)}"
        for way, names in movers.items()
        if names
    ]
    return lines

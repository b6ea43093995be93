"""WeeklyReport -> the CLI's output formats (json, csv, text). Pure functions."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from processing.report import WeeklyReport
from processing.schema import REASONS, TREATMENT_COMPLETED
from processing.text import displayable

CSV_COLUMNS = (
    "week_start",
    "week_end",
    "revenue",
    "treatments_completed",
    "appointments",
    "bookings",
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


def to_dict(report: WeeklyReport, source: str, currency: str) -> dict[str, Any]:
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
        "errors": {
            reason: {
                "count": report.error(reason).count,
                "first_rows": list(report.error(reason).first_rows),
            }
            for reason in REASONS
        },
        "warnings": {"revenue_on_other_event": report.revenue_on_other_event},
        "revenue": amount(report.revenue_cents),
        "weeks": [
            {
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
            }
            for week in report.weeks
        ],
    }


def to_json(report: WeeklyReport, source: str, currency: str) -> str:
    return json.dumps(to_dict(report, source, currency), indent=2, ensure_ascii=False) + "\n"


def to_csv(report: WeeklyReport) -> str:
    treatment_types = report.treatment_types
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*CSV_COLUMNS, *(f"revenue_{kind}" for kind in treatment_types)])
    for week in report.weeks:
        by_type = week.revenue_by_treatment_cents
        writer.writerow(
            [
                week.week_start.isoformat(),
                week.week_end.isoformat(),
                amount(week.revenue_cents),
                week.treatments_completed,
                week.appointments,
                week.bookings,
                *(amount(by_type.get(kind, 0)) for kind in treatment_types),
            ]
        )
    return out.getvalue()


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
    lines = [
        f"Weekly report for {displayable(source)}",
        f"Timezone {report.timezone}, amounts in {currency}",
        *([f"File {report.dialect.describe()}"] if not report.dialect.plain else []),
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
    lines.append("")
    rows = [
        [
            str(week.week_start),
            grouped_amount(week.revenue_cents),
            f"{week.treatments_completed:,}",
            f"{week.appointments:,}",
            f"{week.bookings:,}",
            f"{week.events:,}",
        ]
        for week in report.weeks
    ]
    header = ["Week of", "Revenue", "Treatments", "Appointments", "Bookings", "Events"]
    lines += _table(header, rows, right={1, 2, 3, 4, 5})
    totals: dict[str, int] = {}
    for week in report.weeks:
        for kind, cents in week.revenue_by_treatment_cents.items():
            totals[kind] = totals.get(kind, 0) + cents
    if totals:
        lines += ["", "Revenue by treatment type:"]
        ranked = sorted(totals.items(), key=lambda item: (-item[1], item[0]))
        lines += [
            "  " + line
            for line in _table(
                ["Treatment", "Revenue"],
                [[displayable(kind, 60), grouped_amount(cents)] for kind, cents in ranked],
                right={1},
            )
        ]
    lines += ["", "Invalid rows:" if report.rows_invalid else "Invalid rows: none"]
    for reason in REASONS:
        summary = report.error(reason)
        if summary.count:
            shown = ", ".join(map(str, summary.first_rows))
            more = ", ..." if summary.count > len(summary.first_rows) else ""
            lines.append(f"  {reason}: {summary.count:,} (rows {shown}{more})")
    if report.revenue_on_other_event:
        lines += [
            "",
            f"Note: {report.revenue_on_other_event:,} rows carry a revenue amount on an event "
            f"other than {TREATMENT_COMPLETED}; those amounts are not counted.",
        ]
    return "\n".join(lines) + "\n"

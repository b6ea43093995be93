"""A deliberately plain implementation of the CSV contract: csv.reader, one row at a time.

Two jobs: the benchmark's baseline ("a plain csv.reader implementation of the same rules")
and the oracle the engine's property tests compare against. It favours being obviously
right over being fast; it shares no code with `processing`.
"""

from __future__ import annotations

import csv
import io
import json
import re
import sys
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, TextIO
from zoneinfo import ZoneInfo

REQUIRED = ("event_id", "clinic_id", "patient_id", "event_type", "event_timestamp")
REASONS = ("malformed_row", "missing_required_field", "invalid_timestamp", "invalid_revenue")
TIMESTAMP = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?([Zz]|[+-]\d{2}:?\d{2})?)?",
    re.ASCII,
)
REVENUE = re.compile(r"\+?[0-9]+(\.[0-9]+)?", re.ASCII)


class Rejected(Exception):
    pass


def _records(stream: TextIO) -> Iterator[tuple[str, list[str]]]:
    """(raw text, fields) per record; lines end at \\n only, as the contract says."""
    captured: list[str] = []

    def lines() -> Iterator[str]:
        for line in stream:
            captured.append(line)
            yield line

    reader = csv.reader(lines())
    for fields in reader:
        raw = "".join(captured)
        captured.clear()
        yield raw, fields


def _day(value: str, zone: ZoneInfo) -> date | None:
    match = TIMESTAMP.fullmatch(value)
    if not match:
        return None
    year, month, day, hour, minute, second, offset = match.groups()
    try:
        moment = datetime(
            int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0)
        )
    except ValueError:
        return None
    if offset is None:
        return moment.date()
    if offset in ("Z", "z"):
        delta = timedelta(0)
    else:
        digits = offset[1:].replace(":", "")
        hours, minutes = int(digits[:2]), int(digits[2:])
        if hours > 23 or minutes > 59:
            return None
        delta = timedelta(hours=hours, minutes=minutes) * (-1 if offset[0] == "-" else 1)
    return moment.replace(tzinfo=timezone(delta)).astimezone(zone).date()


def analyze(data: bytes, tz: str = "UTC") -> dict[str, Any]:
    """The report as the engine's JSON shows it, minus source and currency."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise Rejected("not UTF-8") from error
    return analyze_text(io.StringIO(text, newline="\n"), tz)


def analyze_text(stream: TextIO, tz: str = "UTC") -> dict[str, Any]:
    """Same, from a text stream opened with newline="\\n" (so \\r stays in the line)."""
    zone = ZoneInfo(tz)
    records = _records(stream)
    first = True
    row = 0
    header: list[str] | None = None
    for raw, fields in records:
        row += 1
        if first:
            raw = raw.removeprefix("\ufeff")
            fields[:1] = [fields[0].removeprefix("\ufeff")] if fields else []
            first = False
        if raw.strip():
            header = [name.strip().lower() for name in fields]
            break
    if header is None:
        raise Rejected("no rows")
    missing = [name for name in REQUIRED if name not in header]
    if missing:
        raise Rejected("missing columns: " + ", ".join(missing))
    index = {
        name: header.index(name)
        for name in (*REQUIRED, "revenue_amount", "treatment_type")
        if name in header
    }
    errors: dict[str, list[int]] = {reason: [] for reason in REASONS}
    counts: Counter[str] = Counter()
    total = valid = other_revenue = 0
    events: defaultdict[date, Counter[str]] = defaultdict(Counter)
    revenue: defaultdict[date, Counter[str]] = defaultdict(Counter)
    treatments: Counter[date] = Counter()

    def bad(reason: str) -> None:
        counts[reason] += 1
        if len(errors[reason]) < 20:
            errors[reason].append(row)

    for raw, fields in records:
        row += 1
        if not raw.strip():
            continue
        total += 1
        if len(fields) != len(header):
            bad("malformed_row")
            continue
        values = {name: fields[position].strip() for name, position in index.items()}
        if any(not values[name] for name in REQUIRED):
            bad("missing_required_field")
            continue
        day = _day(values["event_timestamp"], zone)
        if day is None:
            bad("invalid_timestamp")
            continue
        amount = values.get("revenue_amount", "")
        if amount and not REVENUE.fullmatch(amount):
            bad("invalid_revenue")
            continue
        valid += 1
        monday = day - timedelta(days=day.weekday())
        event_type = values["event_type"].upper()
        events[monday][event_type] += 1
        if event_type == "TREATMENT_COMPLETED":
            kind = values.get("treatment_type", "").lower() or "unknown"
            cents = 0
            if amount:
                cents = int(Decimal(amount).quantize(Decimal("0.01"), ROUND_HALF_EVEN) * 100)
            revenue[monday][kind] += cents
            treatments[monday] += 1
        elif amount:
            other_revenue += 1
    if total == 0:
        raise Rejected("no rows")

    def money(cents: int) -> str:
        return f"{cents // 100}.{cents % 100:02d}"

    weeks = []
    if events:
        monday = min(events)
        while monday <= max(events):
            by_type = revenue.get(monday, Counter())
            kinds = events.get(monday, Counter())
            weeks.append(
                {
                    "week_start": monday.isoformat(),
                    "week_end": (monday + timedelta(days=6)).isoformat(),
                    "revenue": money(sum(by_type.values())),
                    "revenue_by_treatment": {k: money(v) for k, v in sorted(by_type.items())},
                    "treatments_completed": treatments.get(monday, 0),
                    "appointments": sum(n for k, n in kinds.items() if "APPOINTMENT" in k),
                    "bookings": sum(n for k, n in kinds.items() if "BOOKING" in k or "BOOKED" in k),
                    "events_by_type": dict(sorted(kinds.items())),
                }
            )
            monday += timedelta(days=7)
    return {
        "timezone": tz,
        "rows": {"total": total, "valid": valid, "invalid": total - valid},
        "errors": {r: {"count": counts[r], "first_rows": errors[r]} for r in REASONS},
        "warnings": {"revenue_on_other_event": other_revenue},
        "revenue": money(sum(sum(by_type.values()) for by_type in revenue.values())),
        "weeks": weeks,
    }


def main() -> int:
    path, tz = sys.argv[1], (sys.argv[2] if len(sys.argv) > 2 else "UTC")
    with open(path, encoding="utf-8", newline="\n") as stream:
        report = analyze_text(stream, tz)
    json.dump(report, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

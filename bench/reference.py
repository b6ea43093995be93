"""A deliberately plain implementation of the CSV contract: the whole file, one character at a
time where quotes are involved.

Two jobs: the benchmark's baseline ("a plain Python implementation of the same rules") and the
oracle the engine's property tests compare against. It favours being obviously right over
being fast; it shares no code with `processing`.
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta, timezone
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

REQUIRED = ("event_id", "clinic_id", "patient_id", "event_type", "event_timestamp")
REASONS = ("malformed_row", "missing_required_field", "invalid_timestamp", "invalid_revenue")
TIMESTAMP = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?([Zz]|[+-]\d{2}:?\d{2})?)?",
    re.ASCII,
)
REVENUE = re.compile(r"\+?[0-9]+(\.[0-9]+)?", re.ASCII)
REVENUE_DECIMAL_COMMA = re.compile(r"\+?[0-9]+([.,][0-9]+)?", re.ASCII)
DELIMITERS = (",", ";", "\t", "|")
ASCII_WHITESPACE = " \t\n\r\x0b\x0c"
MAX_RECORD_BYTES = 1 << 20
MAX_HEADER_BYTES = 1 << 20
SNIFF_BYTES = 1 << 20
MAX_LABELS = 10_000
MAX_WEEK_LABEL_PAIRS = 200_000
MAX_WEEK_CLINIC_PAIRS = 1_000_000
OUTCOMES = ("scheduled", "completed", "cancelled", "no_show", "rescheduled")
FIRST_DAY, LAST_DAY = date(1900, 1, 1), date(2199, 12, 31)
MAGIC = (b"\x1f\x8b", b"PK\x03\x04", b"\xd0\xcf\x11\xe0", b"%PDF", b"BZh", b"\xfd7zXZ\x00",
         b"\x28\xb5\x2f\xfd", b"PAR1", b"SQLite format 3")  # fmt: skip


class Rejected(Exception):
    pass


def _cp1252(data: bytes) -> str:
    return "".join(bytes([b]).decode("cp1252", errors="ignore") or chr(b) for b in data)


def _decode(data: bytes) -> tuple[str, str]:
    """(encoding, text) by the contract's rules; Rejected for binary or non-UTF-8 files."""
    if data.startswith(b"\xef\xbb\xbf"):
        body = data[3:]
        if any(body.startswith(m) for m in MAGIC) or b"\x00" in body[:4096]:
            raise Rejected("binary")
        try:
            return "utf-8-sig", body.decode("utf-8")
        except UnicodeDecodeError as error:
            raise Rejected("not UTF-8") from error
    for bom, name in ((b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be")):
        if data.startswith(bom):
            try:
                text = data[2:].decode(name)
            except UnicodeDecodeError as error:
                raise Rejected("not UTF-16") from error
            if b"\x00" in text.encode("utf-8")[:4096]:
                raise Rejected("binary")
            return name, text
    if any(data.startswith(m) for m in MAGIC) or b"\x00" in data[:4096]:
        raise Rejected("binary")
    try:
        return "utf-8", data.decode("utf-8")
    except UnicodeDecodeError as error:
        first_block_ok = True
        try:
            data[:SNIFF_BYTES].decode("utf-8")
        except UnicodeDecodeError as first:
            # A character cut at the end of the first block is not an error yet.
            first_block_ok = len(data) > SNIFF_BYTES and first.start >= SNIFF_BYTES - 3
        if not first_block_ok or data[: error.start].isascii():
            return "windows-1252", _cp1252(data)
        raise Rejected("not UTF-8") from error


def _parse_record(lines: list[str], first: int, delimiter: str) -> tuple[list[str], int] | None:
    """Fields of the record starting at lines[first], and its last line; None if unclosed."""
    fields: list[str] = []
    value: list[str] = []
    state = "start"
    index = first
    size = 0
    while index < len(lines):
        line = lines[index]
        size += len(line.encode("utf-8")) + (index > first)
        if size > MAX_RECORD_BYTES:
            return None
        for char in line:
            if state == "start":
                if char == '"':
                    state = "quoted"
                elif char == delimiter:
                    fields.append("")
                else:
                    value, state = [char], "plain"
            elif state == "plain":
                if char == delimiter:
                    fields.append("".join(value))
                    value, state = [], "start"
                else:
                    value.append(char)
            elif state == "quoted":
                if char == '"':
                    state = "quote in quoted"
                else:
                    value.append(char)
            elif char == '"':  # quote in quoted: a doubled quote
                value.append('"')
                state = "quoted"
            elif char == delimiter:
                fields.append("".join(value))
                value, state = [], "start"
            else:
                value.append(char)  # after the closing quote: kept as written
                state = "plain"
        if state != "quoted":
            fields.append("".join(value))
            return fields, index
        value.append("\n")
        index += 1
    return None  # the end of the file inside quotes


def _day(value: str, zone: ZoneInfo) -> date | None:
    match = TIMESTAMP.fullmatch(value)
    if not match:
        return None
    year, month, day, hour, minute, second, offset = match.groups()
    if not 1899 <= int(year) <= 2200:
        return None
    try:
        moment = datetime(
            int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0)
        )
    except ValueError:
        return None
    if offset is None:
        local = moment.date()
    else:
        if offset in ("Z", "z"):
            delta = timedelta(0)
        else:
            digits = offset[1:].replace(":", "")
            hours, minutes = int(digits[:2]), int(digits[2:])
            if hours > 23 or minutes > 59:
                return None
            delta = timedelta(hours=hours, minutes=minutes) * (-1 if offset[0] == "-" else 1)
        local = moment.replace(tzinfo=timezone(delta)).astimezone(zone).date()
    return local if FIRST_DAY <= local <= LAST_DAY else None


def _header(text: str) -> tuple[int, int, str, str]:
    """(index of the header's first character, its row, its line, the line end)."""
    start = 0
    while start < len(text) and text[start] in ASCII_WHITESPACE:
        start += 1
    if start == len(text):
        raise Rejected("no rows")
    line_start = max(text.rfind("\n", 0, start), text.rfind("\r", 0, start)) + 1
    breaks = [i for i in (text.find("\n", line_start), text.find("\r", line_start)) if i >= 0]
    end = min(breaks) if breaks else len(text)
    if end - line_start > MAX_HEADER_BYTES or len(text[line_start:end].encode()) > MAX_HEADER_BYTES:
        raise Rejected("header too long")
    if not breaks or text[end] == "\n":
        line_end = "\n"
    else:
        line_end = "\r\n" if text[end + 1 : end + 2] == "\n" else "\r"
    row = text.count("\r" if line_end == "\r" else "\n", 0, line_start) + 1
    return line_start, row, text[line_start:end], line_end


def analyze(
    data: bytes, tz: str = "UTC", listing: list[tuple[int, str]] | None = None
) -> dict[str, Any]:
    """The report as the engine's JSON shows it, minus source and currency. `listing`, when
    given, gets every invalid row as (row, reason), in row order."""
    encoding, text = _decode(data)
    if not text:
        raise Rejected("empty")
    line_start, row, header_line, line_end = _header(text)
    delimiter, header = ",", []
    for candidate in DELIMITERS:
        parsed = _parse_record([header_line], 0, candidate)
        names = [
            name.strip().lower() for name in (parsed[0] if parsed else header_line.split(candidate))
        ]
        if candidate == ",":
            header = names
        if all(name in names for name in REQUIRED):
            delimiter, header = candidate, names
            break
    missing = [name for name in REQUIRED if name not in header]
    if missing:
        raise Rejected("missing columns: " + ", ".join(missing))
    body = text[line_start:]
    if line_end == "\r":
        body = body.translate(str.maketrans("\r\n", "\n\r"))  # CR and LF trade places
    lines = body.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return _report(lines[1:], row, header, delimiter, tz, listing) | {
        "dialect": {"encoding": encoding, "delimiter": delimiter, "line_end": line_end}
    }


def _report(
    lines: list[str],
    header_row: int,
    header: list[str],
    delimiter: str,
    tz: str,
    listing: list[tuple[int, str]] | None = None,
) -> dict[str, Any]:
    zone = ZoneInfo(tz)
    index = {
        name: header.index(name)
        for name in (*REQUIRED, "revenue_amount", "treatment_type")
        if name in header
    }
    revenue_grammar = REVENUE_DECIMAL_COMMA if delimiter == ";" else REVENUE
    errors: dict[str, list[int]] = {reason: [] for reason in REASONS}
    counts: Counter[str] = Counter()
    total = valid = other_revenue = 0
    events: defaultdict[date, Counter[str]] = defaultdict(Counter)
    revenue: defaultdict[date, Counter[str]] = defaultdict(Counter)
    treatments: Counter[date] = Counter()
    event_types: set[str] = set()
    treatment_types: set[str] = set()
    missing_columns: Counter[str] = Counter()
    days: list[date] = []  # first and last valid local date
    clinic_cells: defaultdict[tuple[str, date], Counter[str]] = defaultdict(Counter)
    row = header_row

    def bad(reason: str) -> None:
        if listing is not None:
            listing.append((row, reason))
        counts[reason] += 1
        if len(errors[reason]) < 20:
            errors[reason].append(row)

    at = 0
    while at < len(lines):
        row += 1
        first = at
        parsed = _parse_record(lines, at, delimiter)
        if parsed is None or (parsed[1] > first and len(parsed[0]) != len(header)):
            total += 1
            bad("malformed_row")  # unclosed, too long or broken: its first line only
            at = first + 1
            continue
        fields, last = parsed
        at = last + 1
        if len(fields) != len(header):
            if not "\n".join(lines[first : last + 1]).strip(ASCII_WHITESPACE):
                continue  # a blank line: a row of the file, not of data
            total += 1
            bad("malformed_row")
            continue
        total += 1
        values = {name: fields[position].strip() for name, position in index.items()}
        empty = [name for name in REQUIRED if not values[name]]
        if empty:
            bad("missing_required_field")
            missing_columns[empty[0]] += 1
            continue
        day = _day(values["event_timestamp"], zone)
        if day is None:
            bad("invalid_timestamp")
            continue
        amount = values.get("revenue_amount", "")
        if amount and not revenue_grammar.fullmatch(amount):
            bad("invalid_revenue")
            continue
        valid += 1
        days[:] = [min(day, days[0]), max(day, days[1])] if days else [day, day]
        monday = day - timedelta(days=day.weekday())
        event_type = values["event_type"].upper()
        cell = clinic_cells[(values["clinic_id"], monday)]
        cell["events"] += 1
        cell["appointments"] += "APPOINTMENT" in event_type
        cell["bookings"] += "BOOKING" in event_type or "BOOKED" in event_type
        outcome = _outcome(event_type)
        cell["cancelled"] += outcome == "cancelled"
        cell["no_show"] += outcome == "no_show"
        event_types.add(event_type)
        if len(event_types) > MAX_LABELS:
            raise Rejected("too many event types")
        events[monday][event_type] += 1
        if event_type == "TREATMENT_COMPLETED":
            kind = values.get("treatment_type", "").lower() or "unknown"
            treatment_types.add(kind)
            if len(treatment_types) > MAX_LABELS:
                raise Rejected("too many treatment types")
            cents = 0
            if amount:
                exact = Decimal(amount.replace(",", "."))
                cents = int(exact.quantize(Decimal("0.01"), ROUND_HALF_EVEN) * 100)
            revenue[monday][kind] += cents
            treatments[monday] += 1
            cell["revenue"] += cents
            cell["treatments"] += 1
        elif amount:
            other_revenue += 1
    if total == 0:
        raise Rejected("no rows")
    for by_week in (events, revenue):
        if sum(len(labels) for labels in by_week.values()) > MAX_WEEK_LABEL_PAIRS:
            raise Rejected("too many (week, type) pairs")
    if len({clinic for clinic, _ in clinic_cells}) > MAX_LABELS:
        raise Rejected("too many clinics")
    if len(clinic_cells) > MAX_WEEK_CLINIC_PAIRS:
        raise Rejected("too many (week, clinic) pairs")

    def money(cents: int) -> str:
        return f"{cents // 100}.{cents % 100:02d}"

    weeks = []
    if events:
        monday = min(events)
        while monday <= max(events):
            by_type = revenue.get(monday, Counter())
            kinds = events.get(monday, Counter())
            outcomes = Counter({name: 0 for name in OUTCOMES})
            for kind, count in kinds.items():
                if (outcome := _outcome(kind)) is not None:
                    outcomes[outcome] += count
            judged = outcomes["completed"] + outcomes["cancelled"] + outcomes["no_show"]
            first_in, last_in = max(monday, days[0]), min(monday + timedelta(days=6), days[1])
            covered = (last_in - first_in).days + 1
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
                    "days_covered": covered,
                    "status": "empty" if not kinds else "partial" if covered < 7 else "complete",
                    "appointment_outcomes": {name: outcomes[name] for name in OUTCOMES},
                    "cancellation_rate": _percent(outcomes["cancelled"], judged),
                    "no_show_rate": _percent(outcomes["no_show"], judged),
                    "new_patients": sum(
                        n for k, n in kinds.items() if "REGISTER" in k or "NEW_PATIENT" in k
                    ),
                }
            )
            monday += timedelta(days=7)
    _compare_weeks(weeks)
    headline = _headline(weeks)
    clinics = _clinics(clinic_cells, headline)
    headline.update(_movers(clinics))
    revenue_cents = sum(sum(by_type.values()) for by_type in revenue.values())
    return {
        "timezone": tz,
        "rows": {"total": total, "valid": valid, "invalid": total - valid},
        "errors": _errors(errors, counts, missing_columns),
        "warnings": {"revenue_on_other_event": other_revenue},
        "revenue": money(revenue_cents),
        "first_day": days[0].isoformat() if days else None,
        "last_day": days[1].isoformat() if days else None,
        "totals": _totals(weeks, revenue, revenue_cents),
        "headline": headline,
        "weeks": weeks,
        "clinics": clinics,
    }


def _compare_weeks(weeks: list[dict[str, Any]]) -> None:
    """Adds change_pct and average_4w_revenue (right after revenue) to every week: complete
    weeks against the complete weeks before them, null for the others."""
    complete_so_far: list[int] = []
    for index, week in enumerate(weeks):
        change = average = None
        if week["status"] == "complete":
            cents = _cents(week["revenue"]) or 0
            if complete_so_far and complete_so_far[-1]:
                change = _percent(cents - complete_so_far[-1], complete_so_far[-1])
            last_four = complete_so_far[-4:]
            if last_four:
                average = _money(round(Fraction(sum(last_four), len(last_four))))
            complete_so_far.append(cents)
        items = list(week.items())
        at = [key for key, _ in items].index("revenue") + 1
        items[at:at] = [("change_pct", change), ("average_4w_revenue", average)]
        weeks[index] = dict(items)


def _totals(
    weeks: list[dict[str, Any]], revenue: dict[date, Counter[str]], revenue_cents: int
) -> dict[str, Any]:
    outcomes = Counter({name: 0 for name in OUTCOMES})
    for week in weeks:
        outcomes.update(week["appointment_outcomes"])
    judged = outcomes["completed"] + outcomes["cancelled"] + outcomes["no_show"]
    by_type: Counter[str] = Counter()
    for week_revenue in revenue.values():
        by_type.update(week_revenue)
    ranked = sorted(by_type.items(), key=lambda item: (-item[1], item[0]))
    return {
        "treatments_completed": sum(w["treatments_completed"] for w in weeks),
        "appointments": sum(w["appointments"] for w in weeks),
        "bookings": sum(w["bookings"] for w in weeks),
        "new_patients": sum(w["new_patients"] for w in weeks),
        "appointment_outcomes": {name: outcomes[name] for name in OUTCOMES},
        "cancellation_rate": _percent(outcomes["cancelled"], judged),
        "no_show_rate": _percent(outcomes["no_show"], judged),
        "revenue_by_treatment": [
            {
                "treatment_type": kind,
                "revenue": _money(cents),
                "share_pct": _percent(cents, revenue_cents),
            }
            for kind, cents in ranked
        ],
    }


def _movers(clinics: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Up to 5 clinics that rose most and 5 that fell most; ties to the lower id."""
    changes = [(Fraction(c["change_pct"]), c["clinic_id"]) for c in clinics if c["change_pct"]]
    up = sorted((c for c in changes if c[0] > 0), key=lambda c: (-c[0], c[1]))
    down = sorted((c for c in changes if c[0] < 0), key=lambda c: (c[0], c[1]))
    return {"clinics_up": [c[1] for c in up[:5]], "clinics_down": [c[1] for c in down[:5]]}


def _errors(
    rows: dict[str, list[int]], counts: Counter[str], columns: Counter[str]
) -> dict[str, Any]:
    result: dict[str, Any] = {r: {"count": counts[r], "first_rows": rows[r]} for r in REASONS}
    result["missing_required_field"]["columns"] = {c: columns[c] for c in REQUIRED if columns[c]}
    return result


def _outcome(event_type: str) -> str | None:
    """The appointment outcome an (upper-cased) event type stands for, if any."""
    if "CANCEL" in event_type:
        return "cancelled"
    if "NO_SHOW" in event_type or "NOSHOW" in event_type or "MISSED" in event_type:
        return "no_show"
    if "RESCHEDUL" in event_type:
        return "rescheduled"
    if "APPOINTMENT" not in event_type:
        return None
    if any(word in event_type for word in ("COMPLETED", "ATTENDED", "CHECKED_OUT")):
        return "completed"
    if any(word in event_type for word in ("SCHEDULED", "CREATED", "BOOKED", "CONFIRMED")):
        return "scheduled"
    return None


def _percent(part: int, whole: int | None) -> str | None:
    """part / whole in percent, one decimal, half to even; None when whole is 0 or None."""
    if not whole:
        return None
    tenths = round(Fraction(part * 1000, whole))
    return ("-" if tenths < 0 else "") + f"{abs(tenths) // 10}.{abs(tenths) % 10}"


def _cents(text: str | None) -> int | None:
    return None if text is None else int(text.replace(".", ""))


def _money(cents: int | None) -> str | None:
    return None if cents is None else f"{cents // 100}.{cents % 100:02d}"


def _headline(weeks: list[dict[str, Any]]) -> dict[str, Any]:
    complete = [week for week in weeks if week["status"] == "complete"]
    result: dict[str, Any] = {
        "latest_week": None,
        "latest_revenue": None,
        "previous_week": None,
        "previous_revenue": None,
        "change_pct": None,
        "average_4w_revenue": None,
        "best_week": None,
        "worst_week": None,
        "empty_weeks": [w["week_start"] for w in weeks if w["status"] == "empty"],
        "partial_weeks": [w["week_start"] for w in weeks if w["status"] == "partial"],
    }
    if not complete:
        return result
    latest = complete[-1]
    before = complete[:-1]
    result["latest_week"], result["latest_revenue"] = latest["week_start"], latest["revenue"]
    if before:
        previous = before[-1]
        result["previous_week"], result["previous_revenue"] = (
            previous["week_start"],
            previous["revenue"],
        )
        old = _cents(previous["revenue"]) or 0
        if old:
            result["change_pct"] = _percent((_cents(latest["revenue"]) or 0) - old, old)
        recent = [_cents(w["revenue"]) or 0 for w in before[-4:]]
        result["average_4w_revenue"] = _money(round(Fraction(sum(recent), len(recent))))
    by_revenue = sorted(complete, key=lambda w: (_cents(w["revenue"]), w["week_start"]))
    result["worst_week"] = by_revenue[0]["week_start"]
    best = max(_cents(w["revenue"]) or 0 for w in complete)
    result["best_week"] = next(w["week_start"] for w in complete if _cents(w["revenue"]) == best)
    return result


def _clinics(
    cells: dict[tuple[str, date], Counter[str]], headline: dict[str, Any]
) -> list[dict[str, Any]]:
    latest = date.fromisoformat(headline["latest_week"]) if headline["latest_week"] else None
    previous = date.fromisoformat(headline["previous_week"]) if headline["previous_week"] else None
    clinics: defaultdict[str, Counter[str]] = defaultdict(Counter)
    for (clinic, _), cell in cells.items():
        clinics[clinic].update(cell)
        clinics[clinic]["weeks_active"] += 1
    result = []
    for clinic, totals in clinics.items():
        latest_cents = None if latest is None else cells.get((clinic, latest), Counter())["revenue"]
        previous_cents = (
            None if previous is None else cells.get((clinic, previous), Counter())["revenue"]
        )
        change = None
        if latest_cents is not None and previous_cents:
            change = _percent(latest_cents - previous_cents, previous_cents)
        result.append(
            {
                "clinic_id": clinic,
                "revenue": _money(totals["revenue"]),
                "treatments_completed": totals["treatments"],
                "appointments": totals["appointments"],
                "bookings": totals["bookings"],
                "cancelled": totals["cancelled"],
                "no_show": totals["no_show"],
                "weeks_active": totals["weeks_active"],
                "latest_week_revenue": _money(latest_cents),
                "previous_week_revenue": _money(previous_cents),
                "change_pct": change,
            }
        )
    result.sort(key=lambda c: (-(_cents(c["revenue"]) or 0), c["clinic_id"]))
    return result


def ordered(report: dict[str, Any]) -> dict[str, Any]:
    """The report with its keys in the engine's JSON order."""
    order = (
        "timezone", "dialect", "rows", "errors", "warnings", "revenue", "first_day", "last_day",
        "totals", "headline", "weeks", "clinics",
    )  # fmt: skip
    return {key: report[key] for key in order if key in report}


def main() -> int:
    path, tz = sys.argv[1], (sys.argv[2] if len(sys.argv) > 2 else "UTC")
    with open(path, "rb") as stream:
        report = ordered(analyze(stream.read(), tz))
    json.dump(report, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

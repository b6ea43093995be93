"""A deliberately plain implementation of the CSV contract: the whole file, one character at a
time where quotes are involved.

Two jobs: the oracle the engine's tests compare against, and the benchmark's baseline ("a
plain Python implementation of the same rules", `python -m tests.oracle FILE [TIMEZONE]`).
It favours being obviously right over being fast; it shares no code with `processing`.

The steps read as the contract does: decode the bytes, find the header and the delimiter,
split records (a transition table, one character at a time), check each row's fields in the
contract's order, tally the valid ones by week and clinic, then derive the weekly figures,
the totals, the headline and the clinics from the tallies.
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
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
FIRST_ROWS_KEPT = 20
OUTCOMES = ("scheduled", "completed", "cancelled", "no_show", "rescheduled")
FIRST_DAY, LAST_DAY = date(1900, 1, 1), date(2199, 12, 31)
MAGIC = (b"\x1f\x8b", b"PK\x03\x04", b"\xd0\xcf\x11\xe0", b"%PDF", b"BZh", b"\xfd7zXZ\x00",
         b"\x28\xb5\x2f\xfd", b"PAR1", b"SQLite format 3")  # fmt: skip
UTF8_BOM = b"\xef\xbb\xbf"
UTF16_BOMS = ((b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be"))


class RejectedError(Exception):
    """The contract refuses the file as a whole (the engine raises an InputError)."""


# -- bytes to text ---------------------------------------------------------------------------


def _cp1252(data: bytes) -> str:
    return "".join(bytes([b]).decode("cp1252", errors="ignore") or chr(b) for b in data)


def _decode(data: bytes) -> tuple[str, str]:
    """(encoding, text) by the contract's rules; RejectedError for binary or non-UTF-8 files."""
    if data.startswith(UTF8_BOM):
        return "utf-8-sig", _decode_utf8_after_bom(data[len(UTF8_BOM) :])
    for bom, name in UTF16_BOMS:
        if data.startswith(bom):
            return name, _decode_utf16(data[len(bom) :], name)
    _refuse_binary(data)
    return _decode_unmarked(data)


def _refuse_binary(data: bytes) -> None:
    if any(data.startswith(m) for m in MAGIC) or b"\x00" in data[:4096]:
        raise RejectedError("binary")


def _decode_utf8_after_bom(body: bytes) -> str:
    _refuse_binary(body)
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise RejectedError("not UTF-8") from error


def _decode_utf16(body: bytes, name: str) -> str:
    try:
        text = body.decode(name)
    except UnicodeDecodeError as error:
        raise RejectedError("not UTF-16") from error
    if b"\x00" in text.encode("utf-8")[:4096]:
        raise RejectedError("binary")
    return text


def _decode_unmarked(data: bytes) -> tuple[str, str]:
    """UTF-8; else Windows-1252 when the first block is not UTF-8 or all before the first bad
    byte is ASCII; else RejectedError (a UTF-8 file that stops being UTF-8 later on)."""
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
        raise RejectedError("not UTF-8") from error


# -- text to records -------------------------------------------------------------------------

# state -> what the character is -> (what becomes of it, the next state): the contract's
# quoting rules, one line each. "keep" adds the character to the field's value, "end" ends the
# field, "" drops it (an opening or a closing quote).
TRANSITIONS = {
    "start": {
        "quote": ("", "quoted"),
        "delimiter": ("end", "start"),
        "other": ("keep", "plain"),
    },
    "plain": {
        "quote": ("keep", "plain"),
        "delimiter": ("end", "start"),
        "other": ("keep", "plain"),
    },
    "quoted": {
        "quote": ("", "quote in quoted"),
        "delimiter": ("keep", "quoted"),
        "other": ("keep", "quoted"),
    },
    "quote in quoted": {
        "quote": ("keep", "quoted"),  # a doubled quote
        "delimiter": ("end", "start"),
        "other": ("keep", "plain"),  # after the closing quote: kept as written
    },
}


def _parse_record(lines: list[str], first: int, delimiter: str) -> tuple[list[str], int] | None:
    """Fields of the record starting at lines[first], and its last line; None if unclosed."""
    kinds = {'"': "quote", delimiter: "delimiter"}
    fields: list[str] = []
    value: list[str] = []
    state = "start"
    size = 0
    for index in range(first, len(lines)):
        line = lines[index]
        size += len(line.encode("utf-8")) + (index > first)
        if size > MAX_RECORD_BYTES:
            return None
        for char in line:
            action, state = TRANSITIONS[state][kinds.get(char, "other")]
            if action == "keep":
                value.append(char)
            elif action == "end":
                fields.append("".join(value))
                value = []
        if state != "quoted":
            fields.append("".join(value))
            return fields, index
        value.append("\n")  # the line break inside quotes is part of the value
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
        raise RejectedError("no rows")
    line_start = max(text.rfind("\n", 0, start), text.rfind("\r", 0, start)) + 1
    breaks = [i for i in (text.find("\n", line_start), text.find("\r", line_start)) if i >= 0]
    end = min(breaks) if breaks else len(text)
    if end - line_start > MAX_HEADER_BYTES or len(text[line_start:end].encode()) > MAX_HEADER_BYTES:
        raise RejectedError("header too long")
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
        raise RejectedError("empty")
    line_start, row, header_line, line_end = _header(text)
    delimiter, header = _delimiter_and_names(header_line)
    missing = [name for name in REQUIRED if name not in header]
    if missing:
        raise RejectedError("missing columns: " + ", ".join(missing))
    body = text[line_start:]
    if line_end == "\r":
        body = body.translate(str.maketrans("\r\n", "\n\r"))  # CR and LF trade places
    lines = body.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return _report(lines[1:], row, header, delimiter, tz, listing) | {
        "dialect": {"encoding": encoding, "delimiter": delimiter, "line_end": line_end}
    }


def _delimiter_and_names(header_line: str) -> tuple[str, list[str]]:
    """The first delimiter whose split names every required column, and the column names
    (lower case); a comma, and what it splits, when none does."""
    delimiter, header = ",", []
    for candidate in DELIMITERS:
        parsed = _parse_record([header_line], 0, candidate)
        names = [
            name.strip().lower() for name in (parsed[0] if parsed else header_line.split(candidate))
        ]
        if candidate == ",":
            header = names
        if all(name in names for name in REQUIRED):
            return candidate, names
    return delimiter, header


# -- records to tallies ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Reading:
    """How to read each record of one file."""

    width: int  # fields in a record: the header's
    delimiter: str
    columns: dict[str, int]  # the position of each column the report reads
    zone: ZoneInfo
    revenue_grammar: re.Pattern[str]


@dataclass
class _Tally:
    """What the rows add up to, as the file is read."""

    row: int  # the row being read (the header's, to begin with)
    listing: list[tuple[int, str]] | None
    total: int = 0
    valid: int = 0
    other_revenue: int = 0  # valid rows with revenue on an event that is not a treatment
    first_rows: dict[str, list[int]] = field(default_factory=lambda: {r: [] for r in REASONS})
    counts: Counter[str] = field(default_factory=Counter)
    missing_columns: Counter[str] = field(default_factory=Counter)
    events: defaultdict[date, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    revenue: defaultdict[date, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    treatments: Counter[date] = field(default_factory=Counter)
    event_types: set[str] = field(default_factory=set)
    treatment_types: set[str] = field(default_factory=set)
    days: list[date] = field(default_factory=list)  # first and last valid local date
    clinic_cells: defaultdict[tuple[str, date], Counter[str]] = field(
        default_factory=lambda: defaultdict(Counter)
    )

    def bad(self, reason: str) -> None:
        if self.listing is not None:
            self.listing.append((self.row, reason))
        self.counts[reason] += 1
        if len(self.first_rows[reason]) < FIRST_ROWS_KEPT:
            self.first_rows[reason].append(self.row)

    def add(self, values: dict[str, str], day: date, amount: str) -> None:
        """A valid row: its event in its week and its clinic's week, its revenue if any."""
        self.valid += 1
        self.days[:] = [min(day, self.days[0]), max(day, self.days[1])] if self.days else [day, day]
        monday = day - timedelta(days=day.weekday())
        event_type = values["event_type"].upper()
        cell = self.clinic_cells[(values["clinic_id"], monday)]
        cell["events"] += 1
        cell["appointments"] += "APPOINTMENT" in event_type
        cell["bookings"] += "BOOKING" in event_type or "BOOKED" in event_type
        outcome = _outcome(event_type)
        cell["cancelled"] += outcome == "cancelled"
        cell["no_show"] += outcome == "no_show"
        self.event_types.add(event_type)
        if len(self.event_types) > MAX_LABELS:
            raise RejectedError("too many event types")
        self.events[monday][event_type] += 1
        if event_type == "TREATMENT_COMPLETED":
            self._add_treatment(values, monday, amount, cell)
        elif amount:
            self.other_revenue += 1

    def _add_treatment(
        self, values: dict[str, str], monday: date, amount: str, cell: Counter[str]
    ) -> None:
        kind = values.get("treatment_type", "").lower() or "unknown"
        self.treatment_types.add(kind)
        if len(self.treatment_types) > MAX_LABELS:
            raise RejectedError("too many treatment types")
        cents = 0
        if amount:
            exact = Decimal(amount.replace(",", "."))
            cents = int(exact.quantize(Decimal("0.01"), ROUND_HALF_EVEN) * 100)
        self.revenue[monday][kind] += cents
        self.treatments[monday] += 1
        cell["revenue"] += cents
        cell["treatments"] += 1


def _tally_rows(lines: list[str], reading: _Reading, tally: _Tally) -> None:
    at = 0
    while at < len(lines):
        tally.row += 1
        at = _tally_record(lines, at, reading, tally)


def _tally_record(lines: list[str], first: int, reading: _Reading, tally: _Tally) -> int:
    """Reads the record that starts at lines[first]; returns where the next one starts."""
    parsed = _parse_record(lines, first, reading.delimiter)
    if parsed is None or (parsed[1] > first and len(parsed[0]) != reading.width):
        tally.total += 1
        tally.bad("malformed_row")  # unclosed, too long or broken: its first line only
        return first + 1
    fields, last = parsed
    if len(fields) != reading.width:
        if "\n".join(lines[first : last + 1]).strip(ASCII_WHITESPACE):
            tally.total += 1
            tally.bad("malformed_row")
        # else a blank line: a row of the file, not of data
        return last + 1
    tally.total += 1
    _tally_fields(fields, reading, tally)
    return last + 1


def _tally_fields(fields: list[str], reading: _Reading, tally: _Tally) -> None:
    """A row of the right width: the first rule it breaks, in the contract's order, or valid."""
    values = {name: fields[position].strip() for name, position in reading.columns.items()}
    empty = [name for name in REQUIRED if not values[name]]
    if empty:
        tally.bad("missing_required_field")
        tally.missing_columns[empty[0]] += 1
        return
    day = _day(values["event_timestamp"], reading.zone)
    if day is None:
        tally.bad("invalid_timestamp")
        return
    amount = values.get("revenue_amount", "")
    if amount and not reading.revenue_grammar.fullmatch(amount):
        tally.bad("invalid_revenue")
        return
    tally.add(values, day, amount)


def _check_limits(tally: _Tally) -> None:
    if tally.total == 0:
        raise RejectedError("no rows")
    for by_week in (tally.events, tally.revenue):
        if sum(len(labels) for labels in by_week.values()) > MAX_WEEK_LABEL_PAIRS:
            raise RejectedError("too many (week, type) pairs")
    if len({clinic for clinic, _ in tally.clinic_cells}) > MAX_LABELS:
        raise RejectedError("too many clinics")
    if len(tally.clinic_cells) > MAX_WEEK_CLINIC_PAIRS:
        raise RejectedError("too many (week, clinic) pairs")


# -- tallies to the report -------------------------------------------------------------------


def _report(
    lines: list[str],
    header_row: int,
    header: list[str],
    delimiter: str,
    tz: str,
    listing: list[tuple[int, str]] | None = None,
) -> dict[str, Any]:
    reading = _Reading(
        width=len(header),
        delimiter=delimiter,
        columns={
            name: header.index(name)
            for name in (*REQUIRED, "revenue_amount", "treatment_type")
            if name in header
        },
        zone=ZoneInfo(tz),
        revenue_grammar=REVENUE_DECIMAL_COMMA if delimiter == ";" else REVENUE,
    )
    tally = _Tally(row=header_row, listing=listing)
    _tally_rows(lines, reading, tally)
    _check_limits(tally)
    weeks = _weeks(tally)
    _compare_weeks(weeks)
    headline = _headline(weeks)
    clinics = _clinics(tally.clinic_cells, headline)
    headline.update(_movers(clinics))
    revenue_cents = sum(sum(by_type.values()) for by_type in tally.revenue.values())
    days = tally.days
    return {
        "timezone": tz,
        "rows": {"total": tally.total, "valid": tally.valid, "invalid": tally.total - tally.valid},
        "errors": _errors(tally.first_rows, tally.counts, tally.missing_columns),
        "warnings": {"revenue_on_other_event": tally.other_revenue},
        "revenue": _money(revenue_cents),
        "first_day": days[0].isoformat() if days else None,
        "last_day": days[1].isoformat() if days else None,
        "totals": _totals(weeks, tally.revenue, revenue_cents),
        "headline": headline,
        "weeks": weeks,
        "clinics": clinics,
    }


def _weeks(tally: _Tally) -> list[dict[str, Any]]:
    """Every week from the first to the last with an event, the empty ones too."""
    weeks: list[dict[str, Any]] = []
    if tally.events:
        monday = min(tally.events)
        while monday <= max(tally.events):
            weeks.append(_week(monday, tally))
            monday += timedelta(days=7)
    return weeks


def _week(monday: date, tally: _Tally) -> dict[str, Any]:
    by_type = tally.revenue.get(monday, Counter())
    kinds = tally.events.get(monday, Counter())
    outcomes = Counter({name: 0 for name in OUTCOMES})
    for kind, count in kinds.items():
        if (outcome := _outcome(kind)) is not None:
            outcomes[outcome] += count
    judged = outcomes["completed"] + outcomes["cancelled"] + outcomes["no_show"]
    first_in = max(monday, tally.days[0])
    last_in = min(monday + timedelta(days=6), tally.days[1])
    covered = (last_in - first_in).days + 1
    return {
        "week_start": monday.isoformat(),
        "week_end": (monday + timedelta(days=6)).isoformat(),
        "revenue": _money(sum(by_type.values())),
        "revenue_by_treatment": {k: _money(v) for k, v in sorted(by_type.items())},
        "treatments_completed": tally.treatments.get(monday, 0),
        "appointments": sum(n for k, n in kinds.items() if "APPOINTMENT" in k),
        "bookings": sum(n for k, n in kinds.items() if "BOOKING" in k or "BOOKED" in k),
        "events_by_type": dict(sorted(kinds.items())),
        "days_covered": covered,
        "status": "empty" if not kinds else "partial" if covered < 7 else "complete",
        "appointment_outcomes": {name: outcomes[name] for name in OUTCOMES},
        "cancellation_rate": _percent(outcomes["cancelled"], judged),
        "no_show_rate": _percent(outcomes["no_show"], judged),
        "new_patients": sum(n for k, n in kinds.items() if "REGISTER" in k or "NEW_PATIENT" in k),
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
    result: list[dict[str, Any]] = []
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

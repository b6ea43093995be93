"""The words people read, one home for every surface: Slack, the console, the CLI's text and
the page (served to it as JSON). JSON and CSV keep the machine names.
"""

from __future__ import annotations

from datetime import date
from typing import Final

from processing.schema import (
    INVALID_REVENUE,
    INVALID_TIMESTAMP,
    MALFORMED_ROW,
    MISSING_REQUIRED_FIELD,
)
from processing.text import displayable

INVALID_ROWS: Final = "invalid rows"
REASON_WORDS: Final = {
    MALFORMED_ROW: "wrong number of fields",
    MISSING_REQUIRED_FIELD: "missing value",
    INVALID_TIMESTAMP: "bad date",
    INVALID_REVENUE: "bad amount",
}
MONTHS: Final = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
MAX_TREATMENT_CHARS: Final = 40
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

"""Dates as people read them in reports: '1 Jan 2024', locale-independent."""

from __future__ import annotations

from datetime import date
from typing import Final

MONTHS: Final = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def day_month(day: date) -> str:
    """'1 Jan'."""
    return f"{day.day} {MONTHS[day.month - 1]}"


def day_month_year(day: date) -> str:
    """'1 Jan 2024'."""
    return f"{day_month(day)} {day.year}"

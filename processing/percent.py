"""Percentages as every surface shows them: exact rationals rounded half to even to one
decimal, as strings ("12.5"), so that no float ever decides a rounding."""

from __future__ import annotations

from fractions import Fraction


def tenths(value: Fraction) -> str:
    """A percentage with one decimal, rounded half to even: Fraction(25, 2) -> '12.5'."""
    scaled = round(value * 10)
    sign = "-" if scaled < 0 else ""
    whole, tenth = divmod(abs(scaled), 10)
    return f"{sign}{whole}.{tenth}"


def percent_change(new: int, old: int | None) -> str | None:
    """(new - old) / old as a percentage; None when there is nothing to compare with."""
    if old is None or old == 0:
        return None
    return tenths(Fraction(new - old, old) * 100)


def rate(part: int, whole: int) -> str | None:
    """part / whole as a percentage; None when whole is 0."""
    return None if whole == 0 else tenths(Fraction(part, whole) * 100)

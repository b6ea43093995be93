"""Timestamps held to the grammar byte by byte, and the day each one falls on.

Every string TIMESTAMP_PATTERN accepts has one of 45 fixed-width layouts: a date; or a date
and a time to the minute, or to the second with 0 to 9 digits of fraction, then no zone, Z,
+HHMM or +HH:MM. A column's values of one width (a file uses one or two) are a byte matrix,
held against each layout of that width in two whole-matrix numpy passes, and their digits
give the day by table lookups. pyarrow's regex kernel spent more on call overhead alone, per
row, than the grammar and the days together cost here.
"""

from __future__ import annotations

import functools
import re
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Final

import numpy as np
import pyarrow as pa

from processing import kernels

if TYPE_CHECKING:
    from processing.arrays import BoolArray, IntArray
    from processing.arrays import ByteArray as ByteMatrix  # one row of bytes per value

_HOUR, _SIXTY = "(?:[01][0-9]|2[0-3])", "[0-5][0-9]"
TIMESTAMP_PATTERN: Final = (
    r"^[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])"
    rf"(?:[Tt ]{_HOUR}:{_SIXTY}(?::{_SIXTY}(?:\.[0-9]{{1,9}})?)?(?:[Zz]|[+-]{_HOUR}:?{_SIXTY})?)?$"
)
SECONDS_PER_DAY: Final = 86_400
# Local dates outside these years are invalid timestamps: weeks stay bounded (about 15,600)
# and no date arithmetic can overflow, whatever a file claims.
FIRST_YEAR: Final = 1900
LAST_YEAR: Final = 2199
# Buckets for looking up a zone's UTC offset: every real-world transition since 1970 falls
# on a quarter hour, so one lookup per bucket is exact.
_OFFSET_BUCKET_S: Final = 900


def days_from_civil(year: IntArray, month: IntArray, day: IntArray) -> IntArray:
    """Days since 1970-01-01 of proleptic Gregorian dates (Howard Hinnant's algorithm)."""
    shifted_year = year - (month <= 2)
    era = shifted_year // 400
    year_of_era = shifted_year - era * 400
    day_of_year = (153 * ((month + 9) % 12) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    days: IntArray = era * 146_097 + day_of_era - 719_468
    return days


FIRST_DAY: Final = int(days_from_civil(np.array([FIRST_YEAR]), np.array([1]), np.array([1]))[0])
LAST_DAY: Final = int(days_from_civil(np.array([LAST_YEAR]), np.array([12]), np.array([31]))[0])


def monday_of(days: IntArray) -> IntArray:
    """The Monday on or before each day (1970-01-01 was a Thursday)."""
    return days - (days + 3) % 7


def known_timezone(name: str) -> bool:
    """Whether `name` is an IANA timezone this machine knows; "UTC" always is."""
    if name == "UTC":
        return True
    # Importing zoneinfo adds to start-up: only reports in another timezone need it.
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


class ZoneOffsets:
    """UTC offsets of one IANA zone (not UTC), looked up once per quarter hour and cached."""

    def __init__(self, name: str) -> None:
        from zoneinfo import ZoneInfo  # imported here for the same reason as in known_timezone

        self._zone = ZoneInfo(name)
        self._cache: dict[int, int] = {}

    def local_seconds(self, utc_seconds: IntArray) -> IntArray:
        buckets, inverse = np.unique(utc_seconds // _OFFSET_BUCKET_S, return_inverse=True)
        offsets = np.fromiter(
            (self._offset(int(bucket)) for bucket in buckets), dtype=np.int64, count=len(buckets)
        )
        return utc_seconds + offsets[inverse.reshape(-1)]

    def _offset(self, bucket: int) -> int:
        cached = self._cache.get(bucket)
        if cached is None:
            moment = datetime.fromtimestamp(bucket * _OFFSET_BUCKET_S, tz=UTC)
            delta = moment.astimezone(self._zone).utcoffset()
            cached = int(delta.total_seconds()) if delta is not None else 0
            self._cache[bucket] = cached
        return cached


_ANY: Final = 255  # a byte position the whole-matrix pass lets through (checked on its own)
# Matrix rows held at once: the per-byte masks are tiled to this many rows and cached.
_CHUNK_ROWS: Final = 16_384
_DATE: Final = "9999-19-39"
_ZONES: Final = ("", "Z", "S2959", "S29:59")
_COMMON_ZONES: Final = ("Z", "S29:59", "", "S2959")  # the order layouts are tried in


def _byte_table(pairs: dict[str, int], otherwise: int | None) -> bytes:
    """A bytes.translate table: these characters to these bytes, any other byte to
    `otherwise` (None: to itself)."""
    table = bytearray(range(256)) if otherwise is None else bytearray([otherwise]) * 256
    for character, byte in pairs.items():
        table[ord(character)] = byte
    return bytes(table)


# Per layout character, the byte to XOR with and the most the result may be: b ^ '0' is a
# digit's value (above 9 for any other byte); a separator XOR itself is 0.
_XOR: Final = _byte_table(
    {"9": 0x30, "5": 0x30, "3": 0x30, "2": 0x30, "1": 0x30, "T": 0, "S": 0, "Z": 0}, None
)
_LIMIT: Final = _byte_table(
    {"9": 9, "5": 5, "3": 3, "2": 2, "1": 1, "T": _ANY, "S": _ANY, "Z": _ANY}, 0
)


class _Layout:
    """One fixed-width form of the grammar, such as "9999-19-39T29:59:59Z".

    '9' is any digit and '1', '2', '3' or '5' a digit up to that (the tens of a month, day,
    hour or minute); 'T' is one of "Tt " and 'S' a sign; 'Z' is either case of Z. Every
    other character stands for itself.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self.width = len(text)
        self.xor = np.frombuffer(text.encode().translate(_XOR), np.uint8)
        self.limit = np.frombuffer(text.encode().translate(_LIMIT), np.uint8)
        self.has_time = self.width > len(_DATE)
        self.sign = text.find("S")  # -1: no numeric offset
        self.z = text.endswith("Z")
        self._tiled = (1, self.xor, self.limit)  # (rows, masks): replaced whole, never changed

    def _tiles(self, rows: int) -> tuple[ByteMatrix, ByteMatrix]:
        """The masks tiled for `rows` rows (at most _CHUNK_ROWS), kept for the next call.
        Layouts are shared by every thread that reads timestamps: the tiles are swapped in
        one assignment, so a thread never sees a row count with masks of another size."""
        tiled_rows, xor_tile, limit_tile = self._tiled
        if tiled_rows < min(rows, _CHUNK_ROWS):
            tiled_rows = min(max(rows, 2 * tiled_rows), _CHUNK_ROWS)
            xor_tile, limit_tile = np.tile(self.xor, tiled_rows), np.tile(self.limit, tiled_rows)
            self._tiled = (tiled_rows, xor_tile, limit_tile)
        return xor_tile, limit_tile

    def read(
        self, matrix: ByteMatrix, zone: ZoneOffsets | None
    ) -> tuple[BoolArray, BoolArray, IntArray]:
        """(which rows fit the layout, which are valid timestamps, local day numbers) of a
        matrix of rows as wide as the layout."""
        values, fits = self._held(matrix)
        pairs = _pairs(values)
        month, day = pairs[:, 5], pairs[:, 8]
        if self.has_time:
            fits &= pairs[:, 11] <= 23
        if self.sign >= 0:
            fits &= pairs[:, self.sign + 1] <= 23
        # Years before the table's first wrap round to above its last, as unsigned.
        year_index = _CENTURIES[pairs[:, 0]] + pairs[:, 2]
        month_index = year_index * 20 + month
        shifted = self.sign >= 0 or (self.z and zone is not None)
        # As written, a date in the table's first or last year is out of the range; moved by
        # an offset, it may come into it.
        days_in_month = np.take(
            _DAYS_IN_MONTH if shifted else _DAYS_IN_MONTH_IN_RANGE, month_index, mode="clip"
        )
        valid = fits & (year_index.view(np.uint32) < _TABLE_YEARS)
        valid &= day - 1 < days_in_month  # uint8: day 0 - 1 wraps to 255
        days = np.take(_FIRST_OF_MONTH, month_index, mode="clip") + (day - 1)
        if shifted:
            days = self._shifted(values, pairs, days, zone)
            valid &= (days >= FIRST_DAY) & (days <= LAST_DAY)
        return fits, valid, np.where(valid, days, 0)

    def _held(self, matrix: ByteMatrix) -> tuple[ByteMatrix, BoolArray]:
        """(each byte XOR the byte expected there: a digit's value, 0 for the separator
        expected; which rows fit). Rows that do not fit have all their values 0."""
        rows = len(matrix)
        values = np.empty_like(matrix)
        fits = np.ones(rows, np.bool_)
        xor_tile, limit_tile = self._tiles(rows)
        flat_values, flat_matrix = values.reshape(-1), matrix.reshape(-1)
        for first_row in range(0, rows, _CHUNK_ROWS):
            start = first_row * self.width
            stop = min(first_row + _CHUNK_ROWS, rows) * self.width
            chunk = flat_values[start:stop]
            np.bitwise_xor(flat_matrix[start:stop], xor_tile[: stop - start], out=chunk)
            wrong = np.flatnonzero(chunk > limit_tile[: stop - start])
            if wrong.size:
                fits[first_row + wrong // self.width] = False
        if self.has_time:
            fits &= _SEPARATORS[matrix[:, 10]]
        if self.sign >= 0:
            fits &= _SIGNS[matrix[:, self.sign]]
        if self.z:
            fits &= _ZS[matrix[:, -1]]
        if not fits.all():
            values[~fits] = 0  # so that every figure read from them stays in the tables' range
        return values, fits

    def _shifted(
        self, values: ByteMatrix, pairs: ByteMatrix, days: IntArray, zone: ZoneOffsets | None
    ) -> IntArray:
        """Day numbers in the report timezone of times written with a zone."""
        # To the minute: offsets are whole minutes and zones change on quarter hours, so
        # the seconds never move a time across midnight or into another offset's bucket.
        seconds = days * SECONDS_PER_DAY
        seconds += pairs[:, 11].astype(np.int64) * 3600
        seconds += pairs[:, 14].astype(np.int64) * 60
        if self.sign >= 0:
            hours = self.sign + 1
            minutes = hours + (3 if self.text[hours + 2] == ":" else 2)
            offset = pairs[:, hours].astype(np.int64) * 3600
            offset += pairs[:, minutes].astype(np.int64) * 60
            west = values[:, self.sign] == ord("-")  # XOR 0 left the sign byte as it is
            seconds += np.where(west, offset, -offset)
        if zone is not None:
            seconds = zone.local_seconds(seconds)
        shifted: IntArray = seconds // SECONDS_PER_DAY
        return shifted


def _byte_set(characters: str) -> BoolArray:
    table = np.zeros(256, np.bool_)
    table[[ord(character) for character in characters]] = True
    return table


_SEPARATORS: Final = _byte_set("Tt ")
_SIGNS: Final = _byte_set("+-")
_ZS: Final = _byte_set("Zz")


def _pairs(values: ByteMatrix) -> ByteMatrix:
    """values[:, k] * 10 + values[:, k + 1] at [:, k]: every two-digit number of every row
    in two passes over the whole matrix, far cheaper than the 11 needed, column by column."""
    flat = values.reshape(-1)
    pairs = np.empty_like(flat)
    np.multiply(flat[:-1], np.uint8(10), out=pairs[:-1])
    pairs[:-1] += flat[1:]
    pairs[-1:] = 0
    return pairs.reshape(values.shape)


def _layouts() -> dict[int, tuple[_Layout, ...]]:
    """The layouts by width, each width's in the order its rows try them: the forms exports
    use most first (a row tries the next layout only when it does not fit the one before:
    the bench file's "+01:00" rows, tried after two kinds of fraction, took 3 reads)."""
    fractions = [""] + ["." + "9" * digits for digits in range(1, 10)]
    times = [("T29:59", "")] + [("T29:59:59", fraction) for fraction in fractions]
    texts = [_DATE] + [
        f"{_DATE}{time}{fraction}{zone}" for time, fraction in times for zone in _ZONES
    ]

    def commonness(text: str) -> tuple[bool, int]:
        zone = next((zone for zone in _ZONES[1:] if text.endswith(zone)), "")
        fraction_digits = len(text) - len(zone) - 20 if "." in text else 0
        return fraction_digits not in (0, 3, 6, 9), _COMMON_ZONES.index(zone)

    by_width: dict[int, list[str]] = {}
    for text in sorted(texts, key=commonness):
        by_width.setdefault(len(text), []).append(text)
    return {width: tuple(map(_Layout, group)) for width, group in sorted(by_width.items())}


LAYOUTS: Final = _layouts()
_WIDEST: Final = max(LAYOUTS)

# Day numbers by table, indexed by year (from _TABLE_FIRST_YEAR) * 20 + month: the first of
# each month, and how many days it has. Months 0 and 13-19 (rows already refused: a month's
# tens are at most 1) have no days.
_TABLE_FIRST_YEAR: Final = FIRST_YEAR - 1  # written years just outside the range may land
_TABLE_YEARS: Final = LAST_YEAR + 2 - _TABLE_FIRST_YEAR  # inside it after their offset


def _month_tables() -> tuple[IntArray, IntArray]:
    years = np.arange(_TABLE_FIRST_YEAR, _TABLE_FIRST_YEAR + _TABLE_YEARS)
    leap = (years % 4 == 0) & ((years % 100 != 0) | (years % 400 == 0))
    days_in_month = np.zeros((_TABLE_YEARS, 20), np.int64)
    days_in_month[:, 1:13] = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
    days_in_month[:, 2] += leap
    ends = np.cumsum(days_in_month[:, 1:13])
    first = np.zeros_like(days_in_month)
    first[:, 1:13] = (ends - days_in_month[:, 1:13].reshape(-1)).reshape(-1, 12)
    first[:, 1:13] += FIRST_DAY - days_in_month[0, 1:13].sum()  # the table starts a year early
    return first.reshape(-1), days_in_month.reshape(-1)


_FIRST_OF_MONTH, _DAYS_IN_MONTH = _month_tables()
_DAYS_IN_MONTH_IN_RANGE: Final = _DAYS_IN_MONTH.copy()
_DAYS_IN_MONTH_IN_RANGE[:20] = _DAYS_IN_MONTH_IN_RANGE[-20:] = 0
_CENTURIES: Final = np.arange(100, dtype=np.int32) * 100 - _TABLE_FIRST_YEAR


def local_days(timestamps: pa.Array, zone: ZoneOffsets | None) -> tuple[BoolArray, IntArray]:
    """(valid, day number in the report timezone) for trimmed timestamp strings.

    `zone` None means UTC. Invalid entries get day 0. A timestamp without an offset is wall
    time in the report timezone, so its day is the date as written; only timestamps with an
    offset need their time of day.
    """
    count = len(timestamps)
    if count == 0:
        return np.zeros(0, np.bool_), np.zeros(0, np.int64)
    offsets, _ = kernels.string_buffers(timestamps)
    widths = np.minimum(np.diff(offsets), _WIDEST + 1).astype(np.uint8)
    rows_of_width = np.bincount(widths, minlength=_WIDEST + 2)
    order = None
    if rows_of_width.max() < count:
        # Rows of each width side by side: one stable sort of small integers (a radix sort)
        # and one take, instead of a pass over the column per width.
        order = np.argsort(widths, kind="stable")
        timestamps = kernels.take(timestamps, order)
    offsets, data = kernels.string_buffers(timestamps)
    valid = np.zeros(count, np.bool_)
    days = np.zeros(count, np.int64)
    first_rows = np.concatenate([[0], np.cumsum(rows_of_width)]).tolist()
    for width, layouts in LAYOUTS.items():
        first, end = first_rows[width], first_rows[width + 1]
        if first == end:
            continue
        rows: slice | IntArray = slice(first, end)
        start = int(offsets[first])
        matrix = data[start : start + (end - first) * width].reshape(end - first, width)
        for layout in layouts:
            fits, valid[rows], days[rows] = layout.read(matrix, zone)
            if fits.all():
                break
            # The rows that do not fit try the width's next layout.
            rows, matrix = np.arange(count)[rows][~fits], matrix[~fits]
    if order is None:
        return valid, days
    in_order = np.empty_like(valid), np.empty_like(days)
    in_order[0][order], in_order[1][order] = valid, days
    return in_order


_LOOSE_TIMESTAMP: Final = r"(\d{4})-(\d{2})-(\d{2})(?:[Tt ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:[Zz]|[+-]\d{2}:?\d{2})?)?"
NOT_A_TIMESTAMP: Final = "not a date and time such as 2024-01-31 or 2024-01-31T09:30:00Z"
NO_SUCH_DATE: Final = "no such date or time (a month, day, hour, minute or offset out of range)"
OUT_OF_RANGE: Final = f"date out of range {FIRST_YEAR}-{LAST_YEAR}"


@functools.lru_cache(maxsize=4096)  # bad values repeat: "yesterday", the same wrong format
def timestamp_problem(value: str) -> str:
    """Why a timestamp is invalid, in words. For the few invalid rows only: Python per value."""
    # Compiled on first use (re caches them): otherwise every run's start-up would pay for it.
    match = re.fullmatch(_LOOSE_TIMESTAMP, value, re.ASCII)
    if match is None:
        return NOT_A_TIMESTAMP
    year, month, day = (int(part) for part in match.groups())
    if not FIRST_YEAR <= year <= LAST_YEAR:
        return OUT_OF_RANGE
    if re.fullmatch(TIMESTAMP_PATTERN, value, re.ASCII) is None:
        return NO_SUCH_DATE
    try:
        date(year, month, day)
    except ValueError:
        return NO_SUCH_DATE
    return OUT_OF_RANGE  # valid as written; its offset moves it out of the range

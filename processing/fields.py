"""Column validation, vectorised: timestamps -> week, "528.20" -> 52820 cents, reasons.

Every function takes pyarrow string arrays (already trimmed) and returns numpy arrays of
the same length, so the per-row work stays in native code. Python only touches the rare
amount too large for int64 arithmetic.
"""

from __future__ import annotations

import functools
import re
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import TYPE_CHECKING, Final, TypeAlias

import numpy as np
import pyarrow as pa

from processing import kernels
from processing.schema import ASCII_WHITESPACE, WHITESPACE

if TYPE_CHECKING:  # numpy.typing costs 30 ms of start-up, for annotations only
    import numpy.typing as npt

    BoolArray: TypeAlias = npt.NDArray[np.bool_]
    IntArray: TypeAlias = npt.NDArray[np.int64]
    Int32Array: TypeAlias = npt.NDArray[np.int32]

_HOUR, _SIXTY = "(?:[01][0-9]|2[0-3])", "[0-5][0-9]"
TIMESTAMP_PATTERN: Final = (
    r"^[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])"
    rf"(?:[Tt ]{_HOUR}:{_SIXTY}(?::{_SIXTY}(?:\.[0-9]{{1,9}})?)?(?:[Zz]|[+-]{_HOUR}:?{_SIXTY})?)?$"
)
REVENUE_PATTERN: Final = r"^\+?[0-9]+(?:\.[0-9]+)?$"
# Semicolon-separated exports come from locales that write a decimal comma.
REVENUE_PATTERN_DECIMAL_COMMA: Final = r"^\+?[0-9]+(?:[.,][0-9]+)?$"

SECONDS_PER_DAY: Final = 86_400
# Local dates outside these years are invalid timestamps: weeks stay bounded (about 15,600)
# and no date arithmetic can overflow, whatever a file claims.
FIRST_YEAR: Final = 1900
LAST_YEAR: Final = 2199
# Buckets for looking up a zone's UTC offset: every real-world transition since 1970 falls
# on a quarter hour, so one lookup per bucket is exact.
_OFFSET_BUCKET_S: Final = 900
_DAYS_IN_MONTH: Final = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], np.int64)
# Fast integer path for amounts: at most 10 integer digits keeps the sums of a few dozen
# blocks far from int64 overflow (see weekly.py); more than 9 decimals would not fit the
# decimal type below. Other amounts take the exact Python path.
_MAX_FAST_INTEGER_DIGITS: Final = 10
_FAST_DECIMAL: Final = pa.decimal128(38, 9)
_CENTS_DECIMAL: Final = pa.decimal128(38, 2)
_NANOS_PER_CENT: Final = 10**7  # units of _FAST_DECIMAL in a cent


# Every character of ASCII_WHITESPACE is at most this byte.
_HIGHEST_ASCII_SPACE: Final = max(map(ord, ASCII_WHITESPACE))


def trim(values: pa.Array, ascii_only: bool) -> pa.Array:
    """str.strip() for a whole column.

    Most columns hold no value that starts or ends with whitespace; peeking at the first
    and last byte of each value is far cheaper than copying the column to trim it. The peek
    reads the byte at every offset and the one before it, empty values included: an empty
    value's offset is where the next value starts and the previous one ends, so it reads no
    byte that is not some value's first or last (at the buffer's ends, clipped to the same).
    A low byte that is not whitespace only costs a trim that changes nothing.
    """
    if not ascii_only:
        return kernels.utf8_trim(values, WHITESPACE)
    offsets, data = _string_buffers(values)
    if offsets[-1] == offsets[0]:
        return values
    firsts = data.take(offsets[:-1], mode="clip")
    lasts = data.take(offsets[1:] - 1, mode="clip")
    if np.minimum(firsts, lasts).min() > _HIGHEST_ASCII_SPACE:
        return values
    return kernels.ascii_trim(values, ASCII_WHITESPACE)


def is_empty(values: pa.Array) -> BoolArray:
    offsets, _ = _string_buffers(values)
    empty: BoolArray = offsets[1:] == offsets[:-1]
    return empty


def numpy_bool(values: pa.Array) -> BoolArray:
    return np.asarray(values.to_numpy(zero_copy_only=False), dtype=np.bool_)


def _string_buffers(values: pa.Array) -> tuple[Int32Array, npt.NDArray[np.uint8]]:
    """Offsets and bytes of a string array, as numpy views (no copy)."""
    _, offsets_buffer, data_buffer = values.buffers()
    offsets = np.frombuffer(offsets_buffer, dtype=np.int32)[
        values.offset : values.offset + len(values) + 1
    ]
    if data_buffer is None or data_buffer.size == 0:
        return offsets, np.zeros(1, np.uint8)
    return offsets, np.frombuffer(data_buffer, dtype=np.uint8)


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
    # zoneinfo costs 5 ms of start-up: only reports in another timezone need it.
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


_PLUS, _MINUS, _COLON = ord("+"), ord("-"), ord(":")


def _fixed_width(values: pa.Array, start: int, stop: int | None = None) -> npt.NDArray[np.uint8]:
    """Bytes [start:stop) of each value as an (n, width) matrix; values must be long enough."""
    sliced = kernels.binary_slice(values, start, stop)
    count = len(sliced)
    if count == 0:
        return np.zeros((0, 0), np.uint8)
    data = sliced.buffers()[2]
    width = (stop if stop is not None else 0) - start if stop is not None else -start
    return np.frombuffer(data, dtype=np.uint8, count=count * width).reshape(count, width)


def _two_digits(matrix: npt.NDArray[np.uint8], column: int) -> IntArray:
    return (matrix[:, column].astype(np.int64) - 48) * 10 + matrix[:, column + 1] - 48


def timestamp_grammar_ok(timestamps: pa.Array) -> BoolArray:
    """Which trimmed timestamp strings follow the grammar: TIMESTAMP_PATTERN checks it and the
    range of every part except the day of the month, which needs the month and the year."""
    return numpy_bool(kernels.matches_regex(timestamps, TIMESTAMP_PATTERN))


def local_days(
    timestamps: pa.Array, zone: ZoneOffsets | None, grammar_ok: BoolArray
) -> tuple[BoolArray, IntArray]:
    """(valid, day number in the report timezone) for trimmed timestamp strings, given
    timestamp_grammar_ok of them.

    `zone` None means UTC. Invalid entries get day 0. A timestamp without an offset is wall
    time in the report timezone, so its day is the date as written; only timestamps with an
    offset need their time of day.
    """
    valid = grammar_ok.copy()
    days = np.zeros(len(timestamps), np.int64)
    rows = np.flatnonzero(valid)
    if rows.size == 0:
        return valid, days
    matched = kernels.cast(timestamps, pa.binary())
    if rows.size < len(timestamps):
        matched = kernels.keep(matched, valid)

    # Exports hold few distinct dates: decode each distinct one once.
    encoded = kernels.dictionary_encode(kernels.binary_slice(matched, 0, 10))
    distinct = _fixed_width(encoded.dictionary, 0, 10)
    year = _two_digits(distinct, 0) * 100 + _two_digits(distinct, 2)
    month = _two_digits(distinct, 5)
    day = _two_digits(distinct, 8)
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    # Written years just outside the range may still land inside it after their offset;
    # anything further out is refused here, before any arithmetic can overflow.
    plausible = (year >= FIRST_YEAR - 1) & (year <= LAST_YEAR + 1)
    distinct_ok = plausible & (day <= _DAYS_IN_MONTH[month] + ((month == 2) & leap))
    codes = encoded.indices.to_numpy()
    date_ok = distinct_ok[codes]
    result = days_from_civil(year, month, day)[codes]

    has_time = kernels.binary_length(matched).to_numpy() > 10
    tail = _fixed_width(matched, -6)  # offsets live in the last 6 bytes
    colon_offset = has_time & ((tail[:, 0] == _PLUS) | (tail[:, 0] == _MINUS))
    compact_offset = has_time & ((tail[:, 1] == _PLUS) | (tail[:, 1] == _MINUS))
    numeric_offset = colon_offset | compact_offset
    shift = numeric_offset
    if zone is not None:
        shift = numeric_offset | (has_time & ((tail[:, 5] | 0x20) == ord("z")))
    picked = np.flatnonzero(shift & date_ok)
    if picked.size:
        # Every picked value has a time and an offset, so it is at least 17 bytes long.
        picked_values = kernels.keep(matched, shift & date_ok)
        clock = _fixed_width(picked_values, 11, 17)  # "HH:MM" + ':' when seconds follow
        seconds_of_day = _two_digits(clock, 0) * 3600 + _two_digits(clock, 3) * 60
        with_seconds = np.flatnonzero(clock[:, 5] == _COLON)
        if with_seconds.size:
            seconds = _fixed_width(kernels.keep(picked_values, clock[:, 5] == _COLON), 17, 19)
            seconds_of_day[with_seconds] += _two_digits(seconds, 0)
        offset_tail = tail[picked]
        colon = colon_offset[picked]
        offset_s = np.where(
            colon,
            _two_digits(offset_tail, 1) * 3600 + _two_digits(offset_tail, 4) * 60,
            _two_digits(offset_tail, 2) * 3600 + _two_digits(offset_tail, 4) * 60,
        )
        offset_s = np.where(numeric_offset[picked], offset_s, 0)
        sign_byte = np.where(colon, offset_tail[:, 0], offset_tail[:, 1])
        offset_s = np.where(sign_byte == _MINUS, -offset_s, offset_s)
        utc_seconds = result[picked] * SECONDS_PER_DAY + seconds_of_day - offset_s
        if zone is not None:
            utc_seconds = zone.local_seconds(utc_seconds)
        result[picked] = utc_seconds // SECONDS_PER_DAY
    date_ok &= (result >= FIRST_DAY) & (result <= LAST_DAY)
    valid[rows] = date_ok
    days[rows] = np.where(date_ok, result, 0)
    return valid, days


_LOOSE_TIMESTAMP: Final = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})(?:[Tt ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:[Zz]|[+-]\d{2}:?\d{2})?)?",
    re.ASCII,
)
_STRICT_TIMESTAMP: Final = re.compile(TIMESTAMP_PATTERN.strip("^$"), re.ASCII)
NOT_A_TIMESTAMP: Final = "not a date and time such as 2024-01-31 or 2024-01-31T09:30:00Z"
NO_SUCH_DATE: Final = "no such date or time (a month, day, hour, minute or offset out of range)"
OUT_OF_RANGE: Final = f"date out of range {FIRST_YEAR}-{LAST_YEAR}"


@functools.lru_cache(maxsize=4096)  # bad values repeat: "yesterday", the same wrong format
def timestamp_problem(value: str) -> str:
    """Why a timestamp is invalid, in words. For the few invalid rows only: Python per value."""
    match = _LOOSE_TIMESTAMP.fullmatch(value)
    if match is None:
        return NOT_A_TIMESTAMP
    year, month, day = (int(part) for part in match.groups())
    if not FIRST_YEAR <= year <= LAST_YEAR:
        return OUT_OF_RANGE
    if _STRICT_TIMESTAMP.fullmatch(value) is None:
        return NO_SUCH_DATE
    try:
        date(year, month, day)
    except ValueError:
        return NO_SUCH_DATE
    return OUT_OF_RANGE  # valid as written; its offset moves it out of the range


def revenue_problem(decimal_comma: bool) -> str:
    example = "1234,50" if decimal_comma else "1234.50"
    return f"not an amount such as {example} (digits, one decimal separator, no sign or symbol)"


def revenue_valid(amounts: pa.Array, *, decimal_comma: bool = False) -> BoolArray:
    pattern = REVENUE_PATTERN_DECIMAL_COMMA if decimal_comma else REVENUE_PATTERN
    return numpy_bool(kernels.matches_regex(amounts, pattern))


def _unscaled(decimals: pa.Array) -> IntArray:
    """The unscaled integers of decimal128 values below 2**63: a decimal128 is stored as its
    unscaled integer, little-endian in 16 bytes, and below 2**63 its low word is it."""
    words = np.frombuffer(decimals.buffers()[1], dtype=np.int64)
    unscaled: IntArray = words[2 * decimals.offset :: 2][: len(decimals)]
    return unscaled


def cents_of(amount: str) -> int:
    """Exact cents of one valid amount, rounding half to even beyond two decimals."""
    return int(Decimal(amount).quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN) * 100)


def to_cents(amounts: pa.Array) -> tuple[IntArray, dict[int, int]]:
    """Cents of trimmed amounts that all match REVENUE_PATTERN (empty strings give 0).

    Amounts too large for the int64 path come back separately, by row, as Python ints
    (their entry in the array is 0).
    """
    cents = np.zeros(len(amounts), np.int64)
    large: dict[int, int] = {}
    if len(amounts) == 0:
        return cents, large
    present = ~is_empty(amounts)
    dot = kernels.find_substring(amounts, ".").to_numpy(zero_copy_only=False)
    length = kernels.binary_length(amounts).to_numpy(zero_copy_only=False).astype(np.int64)
    integer_digits = np.where(dot >= 0, dot, length)
    fraction_digits = np.where(dot >= 0, length - dot - 1, 0)
    fast = present & (integer_digits <= _MAX_FAST_INTEGER_DIGITS) & (fraction_digits <= 9)
    fast_rows = np.flatnonzero(fast)
    if fast_rows.size:
        fast_values = amounts if fast_rows.size == len(amounts) else kernels.keep(amounts, fast)
        decimals = kernels.cast(fast_values, _FAST_DECIMAL)
        if int(integer_digits[fast_rows].max()) < _MAX_FAST_INTEGER_DIGITS:
            # Below 10**9, amount * 10**9 is under 2**63 and numpy rounds it to cents, half to
            # even, in a few passes: a tenth of the time of pyarrow's round and cast below.
            whole, rest = np.divmod(_unscaled(decimals), _NANOS_PER_CENT)
            half = _NANOS_PER_CENT // 2
            cents[fast_rows] = whole + ((rest > half) | ((rest == half) & (whole % 2 == 1)))
        else:
            rounded = kernels.round_half_even(decimals, 2)
            cents[fast_rows] = _unscaled(kernels.cast(rounded, _CENTS_DECIMAL))
    for row in np.flatnonzero(present & ~fast):
        # Python ints do not overflow; int64 would. Such amounts are rare.
        large[int(row)] = cents_of(amounts[int(row)].as_py())
    return cents, large

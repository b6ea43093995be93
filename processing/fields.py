"""Column validation, vectorised: trimming, empty values, "528.20" -> 52820 cents.

Every function takes pyarrow string arrays (already trimmed) and returns numpy arrays of
the same length, so the per-row work stays in native code. Python only touches the rare
amount too large for int64 arithmetic. Timestamps have their own module, timestamps.py.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from typing import TYPE_CHECKING, Final

import numpy as np
import pyarrow as pa

from processing import kernels
from processing.schema import ASCII_WHITESPACE, WHITESPACE

if TYPE_CHECKING:
    from processing.arrays import BoolArray, IntArray

REVENUE_PATTERN: Final = r"^\+?[0-9]+(?:\.[0-9]+)?$"
# Semicolon-separated exports come from locales that write a decimal comma.
REVENUE_PATTERN_DECIMAL_COMMA: Final = r"^\+?[0-9]+(?:[.,][0-9]+)?$"

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
    offsets, data = kernels.string_buffers(values)
    if offsets[-1] == offsets[0]:
        return values
    firsts = data.take(offsets[:-1], mode="clip")
    lasts = data.take(offsets[1:] - 1, mode="clip")
    if np.minimum(firsts, lasts).min() > _HIGHEST_ASCII_SPACE:
        return values
    return kernels.ascii_trim(values, ASCII_WHITESPACE)


def is_empty(values: pa.Array) -> BoolArray:
    offsets, _ = kernels.string_buffers(values)
    empty: BoolArray = offsets[1:] == offsets[:-1]
    return empty


def numpy_bool(values: pa.Array) -> BoolArray:
    return np.asarray(values.to_numpy(zero_copy_only=False), dtype=np.bool_)


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
            # even, in a few passes: far cheaper than pyarrow's round and cast below.
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

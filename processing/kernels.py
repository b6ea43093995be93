"""The pyarrow compute kernels the engine uses, called by name.

`import pyarrow.compute` builds a Python wrapper with a docstring for each of its ~300
kernels, at a start-up cost larger than everything else a small file costs the CLI beyond
importing pyarrow.csv. `call_function` reaches the same kernels without that (it is what the
wrappers call). Array methods such as `.filter()` and `.cast()` import pyarrow.compute on
first use, so they are here too. Every kernel releases the GIL while it runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

import numpy as np
import pyarrow as pa
from pyarrow._compute import (
    CastOptions,
    MatchSubstringOptions,
    ReplaceSubstringOptions,
    RoundOptions,
    SetLookupOptions,
    SliceOptions,
    TrimOptions,
    call_function,
)

if TYPE_CHECKING:
    from processing.arrays import BoolArray, ByteArray, Int32Array, IntArray

Rows = TypeVar("Rows", pa.Array, pa.Table)


def utf8_trim(values: pa.Array, characters: str) -> pa.Array:
    return call_function("utf8_trim", [values], TrimOptions(characters))


def ascii_trim(values: pa.Array, characters: str) -> pa.Array:
    return call_function("ascii_trim", [values], TrimOptions(characters))


def upper(values: pa.Array) -> pa.Array:
    return call_function("ascii_upper" if _ascii(values) else "utf8_upper", [values])


def lower(values: pa.Array) -> pa.Array:
    return call_function("ascii_lower" if _ascii(values) else "utf8_lower", [values])


def _ascii(values: pa.Array) -> bool:
    """Whether a (small) string array's bytes are all ASCII. The utf8_ case kernels fill a
    table of every code point's case on first use, a noticeable part of a small file's run;
    the ascii_ ones give the same result on ASCII text without it."""
    data = values.buffers()[2]
    return data is None or data.to_pybytes().isascii()


def equal(values: pa.Array, other: pa.Scalar) -> pa.Array:
    return call_function("equal", [values, other])


def if_else(condition: pa.Array, then: pa.Scalar, otherwise: pa.Array) -> pa.Array:
    return call_function("if_else", [condition, then, otherwise])


def replace_substring(values: pa.Array, pattern: str, replacement: str) -> pa.Array:
    return call_function(
        "replace_substring", [values], ReplaceSubstringOptions(pattern, replacement)
    )


def find_substring(values: pa.Array, pattern: str) -> pa.Array:
    return call_function("find_substring", [values], MatchSubstringOptions(pattern))


def matches_regex(values: pa.Array, pattern: str) -> pa.Array:
    return call_function("match_substring_regex", [values], MatchSubstringOptions(pattern))


def index_in(values: pa.Array, known: pa.Array) -> pa.Array:
    """Each value's position in `known`, null where it is not there."""
    return call_function("index_in", [values], SetLookupOptions(known))


def binary_slice(values: pa.Array, start: int, stop: int | None = None) -> pa.Array:
    return call_function("binary_slice", [values], SliceOptions(start, stop))


def binary_length(values: pa.Array) -> pa.Array:
    return call_function("binary_length", [values])


def dictionary_encode(values: pa.Array) -> pa.DictionaryArray:
    return call_function("dictionary_encode", [values])


def cast(values: pa.Array, to: pa.DataType) -> pa.Array:
    return call_function("cast", [values], CastOptions.safe(to))


def round_half_even(values: pa.Array, decimals: int) -> pa.Array:
    return call_function("round", [values], RoundOptions(decimals, "half_to_even"))


def take(values: pa.Array, positions: IntArray) -> pa.Array:
    """The values at these positions."""
    positions = np.ascontiguousarray(positions, np.int64)
    indices = pa.Array.from_buffers(pa.int64(), len(positions), [None, pa.py_buffer(positions)])
    return call_function("take", [values, indices])


def keep(rows: Rows, mask: pa.Array | BoolArray) -> Rows:
    """The rows where mask is true (pyarrow's filter)."""
    if isinstance(mask, np.ndarray):
        bits = pa.py_buffer(np.packbits(mask, bitorder="little"))
        mask = pa.Array.from_buffers(pa.bool_(), len(mask), [None, bits])
    return call_function("filter", [rows, mask])


def string_buffers(values: pa.Array) -> tuple[Int32Array, ByteArray]:
    """Offsets and bytes of a string or binary array, as numpy views (no copy)."""
    _, offsets_buffer, data_buffer = values.buffers()
    offsets = np.frombuffer(offsets_buffer, dtype=np.int32)[
        values.offset : values.offset + len(values) + 1
    ]
    if data_buffer is None or data_buffer.size == 0:
        return offsets, np.zeros(1, np.uint8)
    return offsets, np.frombuffer(data_buffer, dtype=np.uint8)

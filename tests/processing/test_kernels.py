"""Positions and masks reach pyarrow through their buffers: the same rows as numpy picks.
A column is trimmed only when some value needs it, and then exactly."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyarrow._compute import call_function

from processing import fields, kernels
from processing.schema import ASCII_WHITESPACE


@pytest.mark.parametrize("rows", [0, 1, 7, 8, 9, 64, 1000])
def test_keep_takes_the_rows_a_numpy_mask_picks(rows: int) -> None:
    """A mask of any length, not only whole bytes of bits, keeps exactly its rows."""
    values = np.array([f"v{index}" for index in range(rows)], dtype=object)
    mask = np.random.default_rng(rows).random(rows) < 0.5
    kept = kernels.keep(pa.array(values.tolist(), pa.string()), mask)
    assert kept.to_pylist() == values[mask].tolist()


def test_keep_takes_a_strided_mask_and_a_table() -> None:
    """A mask that is a view with a step, and a whole table, are filtered alike."""
    mask = np.array([True, False] * 10)[::2][:5] & np.array([True, False, True, True, False])
    table = pa.table({"row": list(range(5))})
    assert kernels.keep(table, mask).column("row").to_pylist() == [0, 2, 3]


def test_take_gathers_numpy_positions_of_any_integer_type() -> None:
    """int32 and int64 positions, in any order, repeated or none at all."""
    values = pa.array(["a", "b", "c", "d"])
    assert kernels.take(values, np.array([3, 0, 3], np.int32)).to_pylist() == ["d", "a", "d"]
    assert kernels.take(values, np.flatnonzero([False, True, True, False])).to_pylist() == [
        "b",
        "c",
    ]
    assert kernels.take(values, np.zeros(0, np.int64)).to_pylist() == []


@settings(max_examples=300, deadline=None)
@given(
    values=st.lists(st.text(alphabet=" \t\x1c\x1f\x01ab", max_size=4), max_size=12),
    start=st.integers(0, 12),
)
def test_trim_strips_exactly_the_values_that_need_it(values: list[str], start: int) -> None:
    """Whitespace at either end of any value, empty values anywhere, a sliced column."""
    column = pa.array(values, pa.string()).slice(start)
    assert fields.trim(column, ascii_only=True).to_pylist() == [
        value.strip(ASCII_WHITESPACE) for value in values[start:]
    ]


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(st.text(alphabet=st.sampled_from("aZ_ éßǅİ\u00ff\U0001f9b7")), max_size=12),
    start=st.integers(0, 12),
)
def test_upper_and_lower_are_the_utf8_kernels(values: list[str], start: int) -> None:
    """ASCII arrays take the ascii_ kernels, others the utf8_ ones: the same result either
    way, also for a slice whose buffer holds non-ASCII bytes outside it."""
    array = pa.array(values, pa.string()).slice(min(start, len(values)))
    assert kernels.upper(array).equals(call_function("utf8_upper", [array]))
    assert kernels.lower(array).equals(call_function("utf8_lower", [array]))
    if all(value.isascii() for value in values):
        kept = values[min(start, len(values)) :]
        assert kernels.upper(array).to_pylist() == [value.upper() for value in kept]

"""Positions and masks reach pyarrow through their buffers: the same rows as numpy picks."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from processing import kernels


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

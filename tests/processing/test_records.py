"""The record scanners' vectorised helpers agree with the obvious numpy."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from processing.records import QUOTE, positions_of


@settings(max_examples=300, deadline=None)
@given(
    data=st.binary(max_size=300) | st.lists(st.sampled_from(b'"a\n,'), max_size=300).map(bytes),
    byte=st.sampled_from(b'"\r\na'),
)
def test_positions_of_finds_every_occurrence(data: bytes, byte: int) -> None:
    """Any length (whole 8-byte words or not), any density, the byte anywhere."""
    array = np.frombuffer(data, np.uint8)
    assert positions_of(array, byte).tolist() == np.flatnonzero(array == byte).tolist()


@pytest.mark.parametrize("every", [1, 3, 16, 200, 5000])
def test_positions_of_sparse_and_dense_blocks(every: int) -> None:
    """A 1 MiB block with a quote every `every` bytes (both sides of the dense cut-over)."""
    array = np.full((1 << 20) + 5, ord("a"), np.uint8)
    array[::every] = QUOTE
    assert np.array_equal(positions_of(array, QUOTE), np.arange(0, array.size, every))

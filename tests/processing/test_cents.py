"""Amounts to cents: the vectorised paths agree with Decimal's half-even rounding."""

from __future__ import annotations

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from processing.fields import cents_of, to_cents

amounts = st.builds(
    lambda sign, whole, fraction: sign + whole + (f".{fraction}" if fraction else ""),
    st.sampled_from(["", "+"]),
    st.from_regex(r"[0-9]{1,12}", fullmatch=True),
    st.from_regex(r"([0-9]{1,10})?", fullmatch=True),
)


@settings(max_examples=500, deadline=None)
@given(values=st.lists(amounts, min_size=1, max_size=20))
def test_to_cents_matches_decimal(values: list[str]) -> None:
    """Up to 12 integer digits and 10 decimals, mixed in one column: every path is exact."""
    cents, large = to_cents(pa.array(values, pa.string()))
    got = [large.get(row, int(cents[row])) for row in range(len(values))]
    assert got == [cents_of(value) for value in values]


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["0.125", "0.135", "2.675", "1.005000001"], [12, 14, 268, 101]),
        (["999999999.005", "999999999.015"], [99999999900, 99999999902]),
        (["9999999999.005", "0.125"], [999999999900, 12]),  # 10 integer digits: pyarrow rounds
    ],
)
def test_half_even_at_the_edges_of_each_path(values: list[str], expected: list[int]) -> None:
    """Ties go to the even cent below 10**9 (numpy) and from 10**9 on (pyarrow)."""
    cents, large = to_cents(pa.array(values, pa.string()))
    assert not large
    assert cents.tolist() == expected

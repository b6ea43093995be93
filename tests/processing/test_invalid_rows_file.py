"""The invalid-rows file is bounded: at most 100,000 rows and 16 MiB, then a line saying
how many more there were."""

from __future__ import annotations

import io

from processing import InvalidRow
from processing.render import InvalidRowsCsv


def rows(count: int, detail: str = "bad amount") -> list[InvalidRow]:
    return [InvalidRow(n + 2, "invalid_revenue", "revenue_amount", detail) for n in range(count)]


def test_past_the_row_limit_the_rest_are_counted() -> None:
    """Rows past the limit are one closing line, whatever batches they came in."""
    out = io.StringIO()
    listed = InvalidRowsCsv(out, limit=5)
    listed.add(rows(3))
    listed.add(rows(4))
    listed.close()
    lines = out.getvalue().splitlines()
    assert len(lines) == 1 + 5 + 1
    assert lines[-1] == ',,,"and 2 more invalid rows, not listed here"'


def test_past_the_size_limit_the_rest_are_counted() -> None:
    """Long lines stop at the size limit, never half a line, and the rest are counted."""
    out = io.StringIO()
    listed = InvalidRowsCsv(out, limit=1_000, limit_chars=1_000)
    listed.add(rows(100, detail="x" * 90))
    listed.close()
    text = out.getvalue()
    body = text.splitlines()[1:-1]
    assert 0 < len(body) < 100
    assert all(line.endswith("x" * 90) for line in body)
    assert len("".join(line + "\n" for line in body)) <= 1_000
    assert text.splitlines()[-1].endswith(
        f'and {100 - len(body)} more invalid rows, not listed here"'
    )

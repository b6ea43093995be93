"""Where the byte stream splits never changes the report."""

from __future__ import annotations

import pytest

from tests import oracle
from tests.helpers import HEADER, report_of

TRICKY = (
    "\ufeff" + HEADER + "\r\n"
    "\r\n"
    'e1,c1,p1,TREATMENT_COMPLETED,2024-01-03T10:00:00+01:00,"Zahnreinigung, groß","12.505"\r\n'
    '"é2","clinic\r\n""Nord""",p2,APPOINTMENT_SCHEDULED,2024-01-09,,\r\n'
    "   \r\n"
    "e3,c1,p3,TREATMENT_COMPLETED,2024-02-30,x,1\r\n"
    'e4,c1,p4,ONLINE_BOOKING_CREATED,2024-01-10T08:00Z,,"0"\r\n'
    "e5,c1,,X,2024-01-10,,\r\n"
    'e6,"naïve 😀\n, note",p6,TREATMENT_COMPLETED,2024-01-11 09:30:15.5,ÉMAIL,7\r\n'
    "e7,c1,p7,TREATMENT_COMPLETED,2024-01-12,x,-3\r\n"
    "e8,c1,p8,X,2024-01-12\r\n"
    "e9,c1,p9,TREATMENT_COMPLETED,2024-01-29T23:59:59.999999999-05:00,x,0.005"
)


def chunked(data: bytes, size: int) -> list[bytes]:
    return [data[start : start + size] for start in range(0, len(data), size)]


@pytest.fixture(scope="module")
def whole() -> dict:
    return report_of(TRICKY.encode())


def test_the_tricky_file_is_understood(whole: dict) -> None:
    """The file used below is read as intended in one piece, as the reference reads it."""
    assert whole == oracle.analyze(TRICKY.encode())
    assert whole["rows"] == {"total": 9, "valid": 5, "invalid": 4}
    assert {r: v["first_rows"] for r, v in whole["errors"].items()} == {
        "malformed_row": [11],
        "missing_required_field": [8],
        "invalid_timestamp": [6],
        "invalid_revenue": [10],
    }
    assert whole["revenue"] == "19.50"
    assert whole["weeks"][0]["revenue_by_treatment"] == {"zahnreinigung, groß": "12.50"}


@pytest.mark.parametrize("chunk_size", [*range(1, 40), 64, 100, 333, 1000])
def test_every_chunk_size_gives_the_same_report(whole: dict, chunk_size: int) -> None:
    """Chunks split quoted newlines, CRLF pairs and multi-byte characters anywhere."""
    assert report_of(chunked(TRICKY.encode(), chunk_size)) == whole


@pytest.mark.parametrize("block_size", [1, 7, 16, 50, 97, 256])
def test_every_block_size_gives_the_same_report(whole: dict, block_size: int) -> None:
    """Blocks that end anywhere still yield the same rows and row numbers."""
    for chunk_size in (1, 5, 64):
        assert report_of(chunked(TRICKY.encode(), chunk_size), block_size=block_size) == whole

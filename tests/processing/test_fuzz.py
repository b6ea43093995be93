"""Fuzzing the engine: whatever the bytes, a report or an InputError, and the reference's answer.

`make fuzz` runs it longer (FUZZ_EXAMPLES, default 200 here).
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from processing import InputError, InvalidRow, reader
from tests import oracle
from tests.helpers import HEADER, report_of

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "200"))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))

ROW = "e{0},c{1},p{0},{2},2024-01-{3:02d}T10:00:00Z,{4},{5}"
SNIPPETS = [
    b'"', b'""', b",", b";", b"\t", b"|", b"\r", b"\n", b"\r\n", b"\x00", b"\xef\xbb\xbf",
    b"\xff\xfe", b"\xe9", b"\xc3", b"\xc3\xa9", b"\x81", b" ", b"x" * 300, b'"\n"', b',"',
    b'",', b"9999-12-31", b"0001-01-01T00:30:00+01:00", b"1,5", b"-1",
]  # fmt: skip


@st.composite
def csv_shaped(draw: st.DrawFn) -> bytes:
    lines = [HEADER]
    for index in range(draw(st.integers(0, 25))):
        lines.append(
            ROW.format(
                index,
                draw(st.integers(1, 3)),
                draw(st.sampled_from(["TREATMENT_COMPLETED", "APPOINTMENT_CANCELLED", "X"])),
                draw(st.integers(1, 28)),
                draw(st.sampled_from(["cleaning", "", "Implants"])),
                draw(st.sampled_from(["", "1.00", "12.345", "abc"])),
            )
        )
    data = bytearray("\n".join(lines).encode() + b"\n")
    for _ in range(draw(st.integers(0, 8))):
        at = draw(st.integers(0, len(data)))
        action = draw(st.sampled_from(["insert", "delete", "replace"]))
        snippet = draw(st.sampled_from(SNIPPETS))
        if action == "insert":
            data[at:at] = snippet
        elif action == "delete":
            del data[at : at + draw(st.integers(1, 5))]
        else:
            data[at : at + len(snippet)] = snippet
    return bytes(data)


def engine_or_error(
    data: bytes, chunk: int, block_size: int, listing: list[tuple[int, str]]
) -> dict | InputError:
    pieces = [data[i : i + chunk] for i in range(0, len(data), chunk)] or [b""]

    def on_invalid_rows(rows: list[InvalidRow]) -> None:
        listing.extend((invalid.row, invalid.reason) for invalid in rows)

    try:
        return report_of(pieces, block_size=block_size, on_invalid_rows=on_invalid_rows)
    except InputError as error:
        return error


def check(data: bytes, chunk: int, block_size: int) -> None:
    """The report, and every invalid row with its reason in row order, as the reference's."""
    listing: list[tuple[int, str]] = []
    result = engine_or_error(data, chunk, block_size, listing)  # anything but InputError fails
    expected_listing: list[tuple[int, str]] = []
    try:
        expected = oracle.analyze(data, listing=expected_listing)
    except oracle.RejectedError:
        assert isinstance(result, InputError), "the reference rejects this file"
        return
    assert not isinstance(result, InputError), f"the reference reads this file: {result}"
    assert result == expected
    for reason in result["errors"].values():
        assert len(reason["first_rows"]) == min(reason["count"], 20)
    assert listing == expected_listing


@SETTINGS
@given(
    data=csv_shaped(), chunk=st.integers(1, 64), block_size=st.sampled_from([1, 16, 256, 1 << 20])
)
def test_csv_shaped_mutations(data: bytes, chunk: int, block_size: int) -> None:
    """Stray quotes, delimiters, CRs, BOMs, NULs, bad UTF-8: the engine agrees with the reference."""
    check(data, chunk, block_size)


@SETTINGS
@given(data=st.binary(max_size=400), chunk=st.integers(1, 64))
def test_random_bytes(data: bytes, chunk: int) -> None:
    """Random bytes after a good header: a report or a clear refusal, as the reference says."""
    check((HEADER + "\n").encode() + data, chunk, 64)


@pytest.mark.parametrize("size", [1 << 20, (1 << 20) + 1])
def test_huge_fields_around_the_record_limit(size: int) -> None:
    """A field right at and just past 1 MiB: kept, or one malformed row."""
    line = f"e1,c1,p1,X,2024-01-01,{'x' * (size - 24)},"
    data = f"{HEADER}\n{line}\ne2,c1,p2,X,2024-01-01,,\n".encode()
    check(data, 65_536, 1 << 20)


@SETTINGS
@given(data=csv_shaped(), chunk=st.integers(1, 64), block_size=st.sampled_from([16, 256, 1 << 20]))
def test_kept_parses_between_broken_quotes(
    data: bytes, chunk: int, block_size: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With every stretch between broken quotes kept however short (in a real file only
    stretches of 64 KiB and more are), the engine still agrees with the reference."""
    monkeypatch.setattr(reader, "MIN_KEPT_BYTES", 1)
    check(data, chunk, block_size)


BROKEN_SHAPES = [
    "",  # a good row
    ',"two\nlines"',  # a field too many, over two lines: a broken quote
    ',"a\n"b",c',  # a broken quote whose second line starts a quoted field
    ',"x\ny\nz"',  # a broken quote over three lines
    ',"x\n\n"',  # a broken quote holding a blank line
    '"',  # an unclosed quote at the end of the last field
]


@st.composite
def broken_quotes(draw: st.DrawFn) -> bytes:
    """Regular rows with broken quotes, unclosed quotes and two-line notes among them."""
    lines = [HEADER]
    for index in range(draw(st.integers(1, 60))):
        treatment = draw(st.sampled_from(["cleaning", '"clean\ning"']))  # or a two-line value
        row = ROW.format(index, 1, "TREATMENT_COMPLETED", 1 + index % 28, treatment, "1.00")
        lines.append(row + draw(st.sampled_from(BROKEN_SHAPES)))
        if draw(st.integers(0, 9)) == 0:
            lines.append("")
    return ("\n".join(lines) + "\n").encode()


@SETTINGS
@given(data=broken_quotes(), chunk=st.integers(1, 64), block_size=st.sampled_from([64, 256, 4096]))
def test_kept_parses_around_broken_quotes(
    data: bytes, chunk: int, block_size: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Broken quotes in otherwise regular blocks, every stretch between them kept however
    short: the engine agrees with the reference."""
    monkeypatch.setattr(reader, "MIN_KEPT_BYTES", 1)
    check(data, chunk, block_size)

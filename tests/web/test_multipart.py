"""The form's file part, split from the body piece by piece (bot/web/multipart.py)."""

from __future__ import annotations

import itertools

import pytest

from bot.web.multipart import PartScanner

BOUNDARY = b"----boundary7MA4"
DELIMITER = b"\r\n--" + BOUNDARY


def scanned(body: bytes, cuts: tuple[int, ...]) -> tuple[bytes, bytes | None]:
    """(the part's bytes, all that followed them) with the body fed in pieces cut at `cuts`,
    until the part's end (what comes after it is read from the stream as it is)."""
    scanner = PartScanner(BOUNDARY)
    part = b""
    for start, stop in itertools.pairwise([0, *cuts, len(body)]):
        part += b"".join(scanner.feed(body[start:stop]))
        if scanner.after is not None:
            return part, scanner.after + body[stop:]
    return part, None


FILES = [
    b"",
    b"a",
    b"event_id,clinic_id\r\ne1,C1\r\n",  # CRLF lines: a CR at nearly every cut
    b"x\r\n--",  # a prefix of the delimiter inside the file
    b"\r\n--" + BOUNDARY[:-1] + b"X\r\n",  # all but the delimiter's last byte
    b"-" * 3 + b"\r" * 3,
]


@pytest.mark.parametrize("file", FILES)
def test_the_part_is_the_same_wherever_the_pieces_are_cut(file: bytes) -> None:
    """Every way of cutting the body in two or three pieces gives the file and what follows."""
    body = file + DELIMITER + b"--\r\n"
    for first in range(len(body) + 1):
        assert scanned(body, (first,)) == (file, b"--\r\n"), first
        for second in range(first, len(body) + 1):
            assert scanned(body, (first, second)) == (file, b"--\r\n"), (first, second)


def test_one_byte_at_a_time() -> None:
    """The smallest pieces there are still give the file and what follows it."""
    file = b"a,b\r\n\r\r\n--\r\n-" + BOUNDARY + b"\r\n"
    body = file + DELIMITER + b"\r\nContent-Disposition: form-data\r\n\r\nx" + DELIMITER + b"--"
    assert scanned(body, tuple(range(1, len(body)))) == (file, body[len(file) + len(DELIMITER) :])


def test_an_empty_part_right_after_its_headers() -> None:
    """The line break that ends the headers also starts the delimiter of an empty file, as
    aiohttp reads it."""
    assert scanned(b"--" + BOUNDARY + b"--\r\n", ()) == (b"", b"--\r\n")


def test_a_body_without_the_delimiter_holds_back_only_what_could_begin_it() -> None:
    """All but the bytes that may start the delimiter come out at once; the rest waits."""
    scanner = PartScanner(BOUNDARY)
    assert scanner.feed(b"abc\r\n-") == [b"abc"]
    assert scanner.feed(b"-x") == [b"\r\n--x"]
    assert scanner.feed(b"\r") == []
    assert not scanner.done


def test_a_large_piece_comes_out_as_it_was() -> None:
    """A piece that cannot end in the delimiter is handed on as the same object, not copied."""
    scanner = PartScanner(BOUNDARY)
    scanner.feed(b"x")  # past the headers' line break
    piece = b"event,row\n" * 100_000
    [out] = scanner.feed(piece)
    assert out is piece


def test_what_follows_the_part_must_close_the_form() -> None:
    """The form ends right after the file, or after later parts; anything else does not."""
    scanner = PartScanner(BOUNDARY)
    assert scanner.closes(b"--\r\n")
    assert scanner.closes(
        b"\r\nContent-Disposition: form-data; name=x\r\n\r\n1" + DELIMITER + b"--"
    )
    assert not scanner.closes(b"\r\nContent-Disposition: form-data; name=x\r\n\r\n1")
    assert not scanner.closes(b"")

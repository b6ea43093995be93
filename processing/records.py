"""Where records start and end, so that a stray quote costs one row, never the rest of the file.

The grammar (RFC 4180 as spreadsheets write it, plus recovery):

- A field that starts with `"` is quoted: it runs to the next `"` not doubled; whatever follows
  up to the delimiter or line end is kept as written. A `"` anywhere else is a plain character.
- A line end inside a quoted field belongs to the value: the record goes on to the next line.
- A record spanning several lines whose field count is not the header's is a *broken quote*; a
  record that has not ended within MAX_RECORD_BYTES, or by the end of the file, is an
  *unclosed quote* or simply too long. Either way its first line is one malformed row, and the
  next line starts a record, as if nothing had happened.
- A line holding only whitespace is blank: it occupies a row but is not a row of data (unless
  the delimiter is whitespace and the line has the header's field count).

Two scanners implement it over a buffer that starts at a record start, with line ends already
made LF (see dialect.py):

- `regular_records`, vectorised: when every quote sits where the grammar expects one (opening
  at a field start, closing before a delimiter or line end, or doubled), quote parity alone
  tells which line ends are inside quotes. That holds for virtually every block of a real
  export; pyarrow then parses the block and names any rows with a wrong field count.
- `RecordGrammar.walk`, in Python, for the blocks where that shortcut does not hold. Slow
  (Python per line) but linear: each line is looked at once, and a long unclosed record
  once more, bounded by MAX_RECORD_BYTES.
"""

from __future__ import annotations

import bisect
import functools
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final, TypeAlias

import numpy as np
from msgspec import Struct, field

if TYPE_CHECKING:
    from processing.arrays import BoolArray, ByteArray, IntArray

MAX_RECORD_BYTES: Final = 1 << 20
ReadBuffer: TypeAlias = bytes | bytearray  # the reader's buffer is a bytearray

# What is wrong with a malformed row, in words for the invalid-rows file (no values).
UNCLOSED_QUOTE: Final = "unclosed quote"
LONG_QUOTE: Final = "quote not closed within 1 MiB"
TOO_LONG: Final = "row longer than 1 MiB"


@functools.lru_cache(maxsize=256)  # one text per (expected, found): bad rows repeat
def wrong_count(expected: int, found: int) -> str:
    return f"expected {expected} fields, found {found}"


def broken_quote(expected: int, found: int) -> str:
    return (
        f"broken quote: a quoted value spans lines and the row has {found} fields, not {expected}"
    )


ASCII_WHITESPACE: Final = b" \t\n\r\x0b\x0c"
QUOTE, LF, CR = ord('"'), ord("\n"), ord("\r")
_EIGHT: Final = np.arange(8, dtype=np.int64)


def positions_of(data: ByteArray, byte: int) -> IntArray:
    """Where `byte` occurs in data, ascending: np.flatnonzero(data == byte), faster when the
    byte is rare (quotes, CRs).

    numpy's nonzero over a block's mask costs more than all the rest of the block's quote
    scan. Over the mask read as 8-byte words it has an eighth of the elements; only the words
    that hold the byte are then looked into. When more than one word in 16 holds it, looking
    into them costs more than it saves.
    """
    equal = data == byte
    whole = equal.size & ~7
    words = np.flatnonzero(equal[:whole].view(np.uint64) != 0)
    if words.size * 16 > whole // 8:
        return np.flatnonzero(equal)
    candidates = (words[:, None] * 8 + _EIGHT).ravel()
    found: IntArray = candidates[equal[candidates]]
    if whole < equal.size:
        tail = whole + np.flatnonzero(equal[whole:])
        if tail.size:
            found = np.concatenate((found, tail))
    return found


def regular_records(buf: ReadBuffer, limit: int, at_eof: bool, delimiter: int) -> int | None:
    """How much of buf[:limit] is whole records with regular quoting, or None when the
    exact walk is needed: irregular quotes, a lone CR outside quotes, an overlong or unclosed
    record, or no record end at all. `at_eof`: buf holds the rest of the file.

    A block costs one vectorised pass for the quotes and a few memchr scans, so that it stays
    small beside pyarrow's parse of the block; newline positions are only computed when the
    block has empty lines or when blocks are larger than a record may be.
    """
    if buf.startswith(b"\xef\xbb\xbf"):
        return None  # pyarrow would drop it as a byte order mark; here it is data
    size = min(limit, len(buf))
    data = np.frombuffer(buf, np.uint8, count=size)
    quotes = positions_of(data, QUOTE)
    cut = _whole_records_end(buf, size, quotes, at_eof)
    if cut is None:
        return None
    # Irregular quoting or a lone CR: the records before it are still regular.
    irregular = _first_irregularity(buf, data, cut, quotes, delimiter)
    if irregular is not None:
        cut = _last_record_end(buf, irregular, quotes)
        if cut == 0:
            return None
    if limit > MAX_RECORD_BYTES and _longest_record(buf, cut) > MAX_RECORD_BYTES:
        return None
    return cut


def _whole_records_end(buf: ReadBuffer, size: int, quotes: IntArray, at_eof: bool) -> int | None:
    """Just past the last whole record in buf[:size], or None: no record ends there, or the
    file ends inside a quote."""
    if at_eof and size == len(buf):
        return None if quotes.size & 1 else size
    return _last_record_end(buf, size, quotes) or None


def _first_irregularity(
    buf: ReadBuffer, data: ByteArray, cut: int, quotes: IntArray, delimiter: int
) -> int | None:
    """The position of the first quote out of place or lone CR outside quotes in buf[:cut],
    or None."""
    inner = quotes[: np.searchsorted(quotes, cut)]
    irregular = _first_irregular_quote(data, inner, delimiter) if inner.size else None
    if buf.find(b"\r", 0, cut) < 0:
        return irregular
    lone = _first_lone_cr_outside_quotes(data, cut, quotes)
    return min((at for at in (irregular, lone) if at is not None), default=None)


def _longest_record(buf: ReadBuffer, cut: int) -> int:
    """The length of the longest record in buf[:cut] (0 without records)."""
    _, lengths = record_bounds(buf, cut)
    return int(lengths.max()) if lengths.size else 0


def record_bounds(buf: ReadBuffer | memoryview, cut: int) -> tuple[IntArray, IntArray]:
    """(start, length without the LF) of each record of a regular block buf[:cut]. Costs a
    pass over the block's newlines: only for blocks that need it (blank lines, broken quotes)."""
    data = np.frombuffer(buf, np.uint8, count=cut)
    quotes = positions_of(data, QUOTE)
    newlines = np.flatnonzero(data == LF)
    ends = newlines[(np.searchsorted(quotes, newlines) & 1) == 0] if quotes.size else newlines
    if cut and data[cut - 1] != LF:
        ends = np.append(ends, cut)
    starts = np.empty_like(ends)
    if ends.size:
        starts[0] = 0
        starts[1:] = ends[:-1] + 1
    return starts, ends - starts


def empty_lines(buf: bytes | memoryview, starts: IntArray, lengths: IntArray) -> BoolArray:
    """Which of these records are empty lines ("" or a lone CR before the LF)."""
    empty: BoolArray = lengths == 0
    single = lengths == 1
    if single.any():
        data = np.frombuffer(buf, np.uint8)
        empty[single] = data[starts[single]] == CR
    return empty


def _last_record_end(buf: ReadBuffer, size: int, quotes: IntArray) -> int:
    """Just past the last LF outside quotes in buf[:size], or 0."""
    end = size
    while (newline := buf.rfind(b"\n", 0, end)) >= 0:
        before = int(np.searchsorted(quotes, newline))
        if before % 2 == 0:
            return newline + 1
        end = int(quotes[before - 1])  # inside a quoted value: look before it opened
    return 0


def _first_lone_cr_outside_quotes(data: ByteArray, cut: int, quotes: IntArray) -> int | None:
    carriage_returns = positions_of(data[:cut], CR)
    after = carriage_returns + 1
    lone = after >= len(data)
    lone[~lone] = data[after[~lone]] != LF
    candidates = carriage_returns[lone]
    if quotes.size and candidates.size:
        candidates = candidates[(np.searchsorted(quotes, candidates) & 1) == 0]
    return int(candidates[0]) if candidates.size else None


def _first_irregular_quote(data: ByteArray, quotes: IntArray, delimiter: int) -> int | None:
    """Quote k opens a field when k is even, closes it when odd. That reading is the
    grammar's iff every opening quote is at a field start (or right after a closing one: a
    doubled quote) and every closing one is followed by a delimiter, a line end or another
    quote. The position of the first quote where it is not, or None."""
    before = _lookup((delimiter, LF, QUOTE))
    after = _lookup((delimiter, LF, CR, QUOTE))
    ok = np.ones(quotes.size, np.bool_)
    opening = quotes[0::2]
    inside = opening > 0
    ok[0::2][inside] = before[data[opening[inside] - 1]]
    following = quotes[1::2] + 1
    inside = following < len(data)
    ok[1::2][inside] = after[data[following[inside]]]
    bad = np.flatnonzero(~ok)
    return int(quotes[bad[0]]) if bad.size else None


def _lookup(codes: Sequence[int]) -> BoolArray:
    table = np.zeros(256, np.bool_)
    table[list(codes)] = True
    return table


class ExactRecords(Struct):
    """What the exact walk found in buf[:cut]."""

    cut: int = 0
    records: int = 0  # rows, blank and malformed included
    good: list[int] = field(default_factory=list)  # record index of each good record
    malformed: list[int] = field(default_factory=list)  # record index of each malformed one
    problems: list[str] = field(default_factory=list)  # what is wrong with each, in words
    values: list[list[str]] = field(default_factory=list)  # per wanted column, per good record
    skip_rest_of_line: bool = False  # the last malformed line goes on past the buffer


class RecordGrammar:
    """The exact walk for one delimiter and header."""

    def __init__(self, delimiter: str, field_count: int, wanted: Sequence[int]) -> None:
        self.delimiter = delimiter.encode()
        self.field_count = field_count
        self.wanted = tuple(wanted)
        self._quoted = re.compile(rb'"[^"]*+(?:""[^"]*+)*+"')
        self._events = re.compile(rb'["' + re.escape(self.delimiter) + rb"]")
        self._plain = re.compile(rb"[^" + re.escape(self.delimiter) + rb"\n]*+")

    def fields(self, line: bytes) -> list[bytes]:
        """The fields of one complete record (the header, say), quotes resolved."""
        parsed = self._record(line, 0, len(line), at_eof=True)
        return parsed[0] if parsed is not None else line.split(self.delimiter)

    def _record(
        self, buf: ReadBuffer, start: int, hard_end: int, *, at_eof: bool
    ) -> tuple[list[bytes], int] | None:
        """Fields of the record at `start` and the index of its end (LF or end of buffer), or
        None when it does not end before `hard_end` (unclosed or too long)."""
        delimiter = self.delimiter[0]
        fields: list[bytes] = []
        at = start
        while True:
            if at < hard_end and buf[at] == QUOTE:
                match = self._quoted.match(buf, at, hard_end)
                if match is None:
                    return None
                rest = self._plain.match(buf, match.end(), hard_end)
                assert rest is not None  # the pattern matches the empty string
                quoted = buf[at + 1 : match.end() - 1].replace(b'""', b'"')
                fields.append(bytes(quoted + rest.group()))
            else:
                rest = self._plain.match(buf, at, hard_end)
                assert rest is not None
                fields.append(bytes(rest.group()))
            at = rest.end()
            if at >= hard_end:
                ended = at_eof and at == len(buf) and at - start <= MAX_RECORD_BYTES
                return (fields, at) if ended else None
            if buf[at] == delimiter:
                at += 1
                continue
            return fields, at  # an LF

    def _transfer(self, line: bytes, quoted: bool) -> tuple[bool, int]:
        """Lex one physical line, entering it at a field start or inside a quoted field:
        (whether it ends inside a quoted field, delimiters outside quotes in it). Only the
        quotes and delimiters are visited; what lies between them is an ordinary character."""
        state = _QUOTED if quoted else _FIELD_START
        delimiters = 0
        previous = -1
        for match in self._events.finditer(line):
            at = match.start()
            if at > previous + 1 and state in (_FIELD_START, _QUOTE_IN_QUOTED):
                state = _PLAIN  # ordinary characters in between
            previous = at
            if line[at] == QUOTE:
                state = _QUOTE_TRANSITIONS[state]
            elif state != _QUOTED:  # a delimiter outside quotes
                delimiters += 1
                state = _FIELD_START
        if len(line) > previous + 1 and state in (_FIELD_START, _QUOTE_IN_QUOTED):
            state = _PLAIN
        return state == _QUOTED, delimiters

    def walk(
        self, buf: ReadBuffer, limit: int, at_eof: bool, first_record: int = 0
    ) -> ExactRecords:
        """Records starting before `limit`. The caller guarantees that buf holds at least
        MAX_RECORD_BYTES past `limit`, or the rest of the file (`at_eof`).

        Linear whatever the quoting: a newline outside quotes always ends a record, so a
        record continues onto a line only inside a quoted field, and from there on its course
        does not depend on where it started. Each line is lexed once from a field start and
        at most once from inside quotes; a record is then a lookup (where the next line that
        closes the quote is, and how many delimiters lie between). Without that, a file whose
        every line holds a stray quote re-scanned up to 1 MiB per line. Lines are lexed only
        as far as the records before `limit` reach: the buffer beyond (up to 1 MiB held for
        a long record) costs nothing when no record goes there.
        """
        found = ExactRecords(values=[[] for _ in self.wanted])
        lines = _Lines(self, buf)
        size = len(buf)
        record = first_record
        line = 0
        while lines.exists(line) and lines.starts[line] < limit:
            start, end = lines.starts[line], lines.ends[line]
            opens, delimiters = lines.from_field_start(line)
            last, fields = line, delimiters + 1
            runs_past = end == size and not at_eof  # past what the caller holds: over 1 MiB
            if runs_past:
                problem = TOO_LONG
            elif opens:  # a quoted value goes on to the next line
                last, fields, problem = self._quoted_record(lines, line, fields, at_eof)
            else:
                problem = TOO_LONG if end - start > MAX_RECORD_BYTES else ""
            if problem:
                found.malformed.append(record)
                found.problems.append(problem)
                if runs_past:
                    found.skip_rest_of_line = True
                line += 1
            elif fields == self.field_count:
                found.good.append(record)
                self._keep_values(found, buf, start, lines.ends[last], at_eof)
                line = last + 1
            else:
                if buf[start:end].strip(ASCII_WHITESPACE):
                    found.malformed.append(record)
                    found.problems.append(wrong_count(self.field_count, fields))
                line += 1  # else blank: a row of the file, not of data
            record += 1
        found.cut = lines.starts[line] if lines.exists(line) else size
        found.records = record - first_record
        return found

    def _quoted_record(
        self, lines: _Lines, line: int, fields: int, at_eof: bool
    ) -> tuple[int, int, str]:
        """A record whose first line ends inside a quoted value, with the `fields` of that
        line: (its last line, its fields, what is wrong with it or "")."""
        size = len(lines.buf)
        closing = lines.next_close(line + 1)
        if closing is None:
            return line, fields, UNCLOSED_QUOTE if at_eof else LONG_QUOTE
        if lines.ends[closing] == size and not at_eof:
            return line, fields, LONG_QUOTE
        fields += lines.quoted_delimiters(line + 1, closing + 1)
        if lines.ends[closing] - lines.starts[line] > MAX_RECORD_BYTES:
            return closing, fields, LONG_QUOTE
        if fields != self.field_count:
            return closing, fields, broken_quote(self.field_count, fields)
        return closing, fields, ""

    def _keep_values(
        self, found: ExactRecords, buf: ReadBuffer, start: int, end: int, at_eof: bool
    ) -> None:
        """Add the wanted fields of the good record buf[start:end], quotes resolved."""
        if buf.find(b'"', start, end) < 0:
            values = bytes(buf[start:end]).split(self.delimiter)
        else:
            at_end = at_eof or end == len(buf)
            parsed = self._record(buf, start, min(end + 1, len(buf)), at_eof=at_end)
            assert parsed is not None
            assert len(parsed[0]) >= self.field_count
            values = parsed[0]
        for column, index in zip(found.values, self.wanted, strict=True):
            column.append(values[index].decode("utf-8", errors="replace"))


class _Lines:
    """The physical lines of a buffer, split and lexed on first use, each at most once per
    way of entering it."""

    def __init__(self, grammar: RecordGrammar, buf: ReadBuffer) -> None:
        self._grammar = grammar
        self.buf = buf
        self.starts: list[int] = []
        self.ends: list[int] = []  # index of the LF, or len(buf) for a last line without one
        self._next_start = 0
        # Lexed from inside quotes, in order from the first line asked about: a running sum
        # of delimiters and the lines that close the quote they were entered in.
        self._quoted_first = -1
        self._quoted_sums: list[int] = [0]
        self._closing: list[int] = []

    def exists(self, line: int) -> bool:
        buf = self.buf
        while len(self.starts) <= line and self._next_start < len(buf):
            end = buf.find(b"\n", self._next_start)
            end = len(buf) if end < 0 else end
            self.starts.append(self._next_start)
            self.ends.append(end)
            self._next_start = end + 1
        return line < len(self.starts)

    def _text(self, line: int) -> bytes:
        return bytes(self.buf[self.starts[line] : self.ends[line]])

    def from_field_start(self, line: int) -> tuple[bool, int]:
        """(whether the line ends inside a quoted field, delimiters outside quotes in it)."""
        text = self._text(line)
        if b'"' in text:
            return self._grammar._transfer(text, False)
        return False, text.count(self._grammar.delimiter)

    def _lex_quoted(self) -> bool:
        """Lex the next line from inside quotes; False past the last line."""
        line = self._quoted_first + len(self._quoted_sums) - 1
        if not self.exists(line):
            return False
        text = self._text(line)
        still_open, delimiters = self._grammar._transfer(text, True) if b'"' in text else (True, 0)
        self._quoted_sums.append(self._quoted_sums[-1] + delimiters)
        if not still_open:
            self._closing.append(line)
        return True

    def next_close(self, line: int) -> int | None:
        """The first line at or after `line` that closes a quote it was entered in."""
        if self._quoted_first < 0:
            self._quoted_first = line
        assert line >= self._quoted_first  # records are asked about in order
        while (at := bisect.bisect_left(self._closing, line)) == len(self._closing):
            if not self._lex_quoted():
                return None
        return self._closing[at]

    def quoted_delimiters(self, first: int, stop: int) -> int:
        """Delimiters in lines first..stop-1 lexed from inside quotes (next_close saw them)."""
        offset = self._quoted_first
        return self._quoted_sums[stop - offset] - self._quoted_sums[first - offset]


_FIELD_START, _PLAIN, _QUOTED, _QUOTE_IN_QUOTED = range(4)
# What a quote does in each state: opens a field, is a character, closes (for now), doubles.
_QUOTE_TRANSITIONS: Final = {
    _FIELD_START: _QUOTED,
    _PLAIN: _PLAIN,
    _QUOTED: _QUOTE_IN_QUOTED,
    _QUOTE_IN_QUOTED: _QUOTED,
}

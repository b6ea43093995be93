"""Byte stream -> dialect, header and parsed column blocks. The only module that knows the CSV
engine.

Goal: parse at native speed with flat memory, yet name every bad row by the row number a
spreadsheet shows (the first line is row 1, one row per record, blank lines occupy a row),
and never let one bad quote swallow the rest of the file.

Plan: the stream is transcoded to UTF-8 with LF line ends when it is anything else (see
dialect.py), then cut into record-aligned blocks of about `block_size` bytes. For a block
whose quoting is regular (records.regular_records, a few vectorised passes), pyarrow's
`read_csv` parses it with the GIL released, and the rows it names as having a wrong field
count are matched to record numbers, so every table row knows its spreadsheet row without a
Python walk. A block with irregular quoting, a lone CR, or an overlong or unclosed record goes
through the exact Python walk (records.RecordGrammar), which applies the recovery rules.

Not yet measured: whether more than one parse thread pays off on more than 2 cores.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, BinaryIO, Final

if TYPE_CHECKING:
    from processing.arrays import BoolArray, IntArray

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
from msgspec import Struct

from processing import dialect as dialects
from processing import kernels
from processing.dialect import Dialect, Encoding, LineEnd
from processing.errors import (
    EncodingError,
    HeaderTooLongError,
    NoRowsError,
    NotCsvError,
    missing_columns,
)
from processing.records import (
    ASCII_WHITESPACE,
    CR,
    MAX_RECORD_BYTES,
    RecordGrammar,
    empty_lines,
    record_bounds,
    regular_records,
    wrong_count,
)
from processing.schema import REQUIRED_COLUMNS, REVENUE_COLUMN, TREATMENT_COLUMN

DEFAULT_BLOCK_SIZE: Final = 1 << 20  # 1 MiB: larger blocks are not faster, only hungrier
READ_SIZE: Final = 1 << 20
MAX_HEADER_BYTES: Final = 1 << 20
# How far the exact walk goes before the regular path tries again (doubling while it fails).
EXACT_STEP_BYTES: Final = 4 * 1024
# The least the regular path parses at once when broken quotes come close together.
MIN_REGULAR_BYTES: Final = 16 * 1024
# What pyarrow parsed between two broken quotes is kept for reuse from this size on.
MIN_KEPT_BYTES: Final = 64 * 1024
# "The first block" that decides between UTF-8 and Windows-1252, whatever the block size.
ENCODING_SNIFF_BYTES: Final = 1 << 20

_MAGIC: Final = (
    (b"\x1f\x8b", "a gzip archive"),
    (b"PK\x03\x04", "a zip archive or an Excel .xlsx workbook"),
    (b"\xd0\xcf\x11\xe0", "an old Excel .xls workbook"),
    (b"%PDF", "a PDF document"),
    (b"BZh", "a bzip2 archive"),
    (b"\xfd7zXZ\x00", "an xz archive"),
    (b"\x28\xb5\x2f\xfd", "a zstd archive"),
    (b"PAR1", "a Parquet file"),
    (b"SQLite format 3", "an SQLite database"),
)
_NOT_BLANK: Final = re.compile(rb"[^" + re.escape(ASCII_WHITESPACE) + rb"]")
_LINE_BREAK: Final = re.compile(rb"[\r\n]")

COLUMNS_USED: Final = (*REQUIRED_COLUMNS, REVENUE_COLUMN, TREATMENT_COLUMN)


def iter_chunks(source: Iterable[bytes] | BinaryIO, read_size: int = READ_SIZE) -> Iterator[bytes]:
    """Bytes from a file-like object (read in pieces) or from an iterable of chunks."""
    read = getattr(source, "read", None)
    if read is not None:
        while chunk := read(read_size):
            yield bytes(chunk)
        return
    for chunk in source:
        if chunk:
            yield bytes(chunk)


class Header(Struct, frozen=True):
    names: tuple[str, ...]  # trimmed and lower-cased, in file order
    row: int  # spreadsheet row of the header: 1 unless blank lines precede it
    bytes_consumed: int  # BOM, leading blank lines and the header line itself

    @property
    def field_count(self) -> int:
        return len(self.names)

    def index_of(self, column: str) -> int | None:
        try:
            return self.names.index(column)
        except ValueError:
            return None


class Block(Struct, frozen=True):
    """One record-aligned slice of the body, parsed."""

    table: pa.Table  # columns named as in COLUMNS_USED; missing optional ones are absent
    rows: IntArray  # spreadsheet row of each table row
    malformed_rows: IntArray  # spreadsheet rows of the malformed records, in order
    malformed_problems: tuple[str, ...]  # what is wrong with each, in words
    ascii_only: bool  # lets callers pick the cheaper ASCII string kernels
    end_offset: int  # bytes of the source consumed once this block is done

    @property
    def malformed(self) -> int:
        return len(self.malformed_rows)


def merge(blocks: Sequence[Block]) -> Block:
    """Consecutive blocks as one (its columns in as many chunks as there were blocks)."""
    if len(blocks) == 1:
        return blocks[0]
    return Block(
        table=pa.concat_tables([block.table for block in blocks]),
        rows=np.concatenate([block.rows for block in blocks]),
        malformed_rows=np.concatenate([block.malformed_rows for block in blocks]),
        malformed_problems=tuple(
            problem for block in blocks for problem in block.malformed_problems
        ),
        ascii_only=all(block.ascii_only for block in blocks),
        end_offset=blocks[-1].end_offset,
    )


class _ParsedAhead(Struct, frozen=True):
    """pyarrow's parse of the records between a broken quote and the next (or the end of the
    parse), kept while the exact walk takes the broken record. When the walk's records end
    where pyarrow's next record starts, as they nearly always do, these records need no
    second parse."""

    start: int  # stream offset (of the transcoded stream) where these records begin
    size: int  # their bytes, at least MIN_KEPT_BYTES
    table: pa.Table  # as parsed: blank lines still rows of empty strings
    invalid: list[tuple[int, str]]  # dropped rows, numbered from 1 within these records
    counts: list[tuple[int, int]]
    then_broken: bool  # a broken quote follows them


def _sniff_binary(head: bytes | bytearray) -> None:
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            raise NotCsvError(kind)
    if b"\x00" in head[:4096]:
        raise NotCsvError("binary data")


def _is_ascii(raw: memoryview) -> bool:
    """bytes.isascii() for a view (a bytes object would be a copy)."""
    return len(raw) == 0 or int(np.frombuffer(raw, np.uint8).max()) < 0x80


def _utf8_error_at(raw: bytes) -> int | None:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start
    return None


class BlockReader:
    """Iterate parsed blocks of a CSV byte stream. Reads the dialect and header on construction."""

    def __init__(
        self, source: Iterable[bytes] | BinaryIO, block_size: int = DEFAULT_BLOCK_SIZE
    ) -> None:
        self._source_bytes = 0  # bytes taken from the source so far
        self._chunks: Iterator[bytes] = self._counted(iter_chunks(source))
        self._block_size = block_size
        # A bytearray: consuming from its front moves a start pointer instead of copying the
        # rest, and filling appends; nothing may hold a view of it across either.
        self._buffer = bytearray()
        self._eof = False
        self._consumed = 0  # bytes of the (transcoded) stream consumed
        self._transcoded = False  # byte offsets then come from the source count
        self._ascii_so_far = True
        self._skipping_line = False
        self._exact_step = EXACT_STEP_BYTES
        # Parsing stops at a broken quote and what follows it is parsed again: after one, the
        # regular path parses about twice the stretch that came before it, growing back to
        # the block size while no broken quote comes (otherwise, with a broken quote in every
        # row, each full-block parse kept a few KiB and the rest was parsed again and again).
        self._regular_limit = block_size
        self._broken_next = False  # the buffer starts with a broken quote pyarrow found
        self._ahead: list[_ParsedAhead] = []  # in stream order
        self._next_row = 1  # the row being read: the header's until it is known
        encoding = self._read_encoding()
        self.header, delimiter, line_end = self._read_header()
        self.dialect = Dialect(encoding=encoding, delimiter=delimiter, line_end=line_end)
        self._next_row = self.header.row + 1
        self._schema_options()

    def _counted(self, chunks: Iterator[bytes]) -> Iterator[bytes]:
        for chunk in chunks:
            self._source_bytes += len(chunk)
            yield chunk

    # -- buffer -----------------------------------------------------------------------------

    def _fill(self, at_least: int) -> None:
        """Grow the buffer to `at_least` bytes if the stream allows."""
        while not self._eof and len(self._buffer) < at_least:
            chunk = self._next_chunk()
            if chunk is None:
                self._eof = True
            else:
                self._buffer += chunk

    def _next_chunk(self) -> bytes | None:
        try:
            return next(self._chunks, None)
        except UnicodeDecodeError:  # only a transcoder raises it: UTF-16 that is not
            raise EncodingError(self._next_row, "UTF-16") from None

    def _consume(self, count: int) -> None:
        count = min(count, len(self._buffer))
        del self._buffer[:count]
        self._consumed += count

    def _take(self, count: int) -> bytes:
        """The next `count` bytes, consumed (a copy: only for the header and blank lines;
        blocks are consumed without one)."""
        taken = bytes(self._buffer[:count])
        self._consume(count)
        return taken

    def _offset(self) -> int:
        """Source bytes consumed: exact for UTF-8, as read so far for a transcoded stream."""
        return self._source_bytes if self._transcoded else self._consumed

    def _transcode(self, transcode: dialects.Transcoder) -> None:
        """From here on the parser sees UTF-8, whatever the file holds."""
        chunks = self._chunks
        try:
            self._buffer = bytearray(transcode(bytes(self._buffer), self._eof))
        except UnicodeDecodeError:
            raise EncodingError(self._next_row, "UTF-16") from None
        self._chunks = dialects.transcoded(chunks, transcode)
        self._transcoded = True

    # -- dialect and header -------------------------------------------------------------------

    def _read_encoding(self) -> Encoding:
        self._fill(ENCODING_SNIFF_BYTES)
        if not self._buffer:
            raise NoRowsError("no content at all (it is empty)")
        head = self._buffer
        if head.startswith(dialects.UTF8_BOM):
            self._consume(len(dialects.UTF8_BOM))
            _sniff_binary(self._buffer)
            self._ascii_so_far = False  # the BOM says UTF-8: a bad byte is an error, never a hint
            return "utf-8-sig"
        for bom, name in (
            (dialects.UTF16_LE_BOM, "utf-16-le"),
            (dialects.UTF16_BE_BOM, "utf-16-be"),
        ):
            if head.startswith(bom):
                self._consume(len(bom))
                self._transcode(dialects.Utf16ToUtf8(name))  # type: ignore[arg-type]
                self._fill(self._block_size)
                _sniff_binary(self._buffer)
                return name  # type: ignore[return-value]
        _sniff_binary(head)
        first = head[:ENCODING_SNIFF_BYTES]
        complete = self._eof and len(head) <= ENCODING_SNIFF_BYTES
        if first.isascii() or dialects.is_utf8_prefix(first, complete=complete):
            self._ascii_so_far = first.isascii()
            return "utf-8"
        self._transcode(dialects.cp1252_to_utf8)
        return "windows-1252"

    def _skip_blank_lines(self) -> tuple[int, int]:
        """Drop the blank lines before the header; (LF count, CR count) among them."""
        lf = cr = 0
        while True:
            found = _NOT_BLANK.search(self._buffer)
            if found is not None:
                line_start = (
                    max(
                        self._buffer.rfind(b"\n", 0, found.start()),
                        self._buffer.rfind(b"\r", 0, found.start()),
                    )
                    + 1
                )
                blank = self._take(line_start)
                return lf + blank.count(b"\n"), cr + blank.count(b"\r")
            blank = self._take(len(self._buffer))
            lf, cr = lf + blank.count(b"\n"), cr + blank.count(b"\r")
            self._fill(self._block_size)
            if not self._buffer:
                raise NoRowsError("only blank lines")

    def _read_header(self) -> tuple[Header, str, LineEnd]:
        lf, cr = self._skip_blank_lines()
        self._fill(MAX_HEADER_BYTES + 2)
        found = _LINE_BREAK.search(self._buffer, 0, MAX_HEADER_BYTES + 1)
        line_end: LineEnd
        if found is None:
            if len(self._buffer) > MAX_HEADER_BYTES:
                raise HeaderTooLongError(MAX_HEADER_BYTES)
            end, line_end, ending = len(self._buffer), "\n", 0
        elif (
            self._buffer[found.start()] == CR
            and self._buffer[found.start() + 1 : found.start() + 2] != b"\n"
        ):
            end, line_end, ending = found.start(), "\r", 1
        else:
            end = found.start()
            line_end, ending = ("\r\n", 2) if self._buffer[end] == CR else ("\n", 1)
        row = (cr if line_end == "\r" else lf) + 1
        line = self._take(end + ending)[:end]
        delimiter, names = _choose_delimiter(line, row)
        if line_end == "\r":
            self._buffer = self._buffer.translate(dialects.CR_LF_SWAP)
            self._chunks = dialects.swapped_cr_lf(self._chunks)
        return Header(names=names, row=row, bytes_consumed=self._offset()), delimiter, line_end

    def _schema_options(self) -> None:
        header = self.header
        # Generated names make duplicates and odd header text harmless; the first column
        # with a given name wins.
        generated = [f"c{index}" for index in range(header.field_count)]
        self._used: dict[str, str] = {}
        wanted: list[int] = []
        for column in COLUMNS_USED:
            index = header.index_of(column)
            if index is not None:
                self._used[generated[index]] = column
                wanted.append(index)
        self._grammar = RecordGrammar(self.dialect.delimiter, header.field_count, wanted)
        self._column_names = generated
        self._convert_options = pacsv.ConvertOptions(
            include_columns=list(self._used),
            # Binary, not string: pyarrow would check UTF-8 again, a sizeable part of the
            # parse, which _check_encoding has done for the whole block. _Parser.parse views
            # them as strings.
            column_types={name: pa.binary() for name in self._used},
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        )
        self._parser = _Parser(self.dialect.delimiter)
        self._invalid: list[tuple[int, str]] = []
        self._counts: list[tuple[int, int]] = []

    # -- body -------------------------------------------------------------------------------

    def __iter__(self) -> Iterator[Block]:
        """Blocks of at least half block_size bytes of the source, except the last: the
        pieces around a broken quote (the records before it, the exact walk's stretch) come
        as one. (A regular block ends at the last record end before block_size.)"""
        return (finish() for finish in self.pending())

    def pending(self) -> Iterator[Finish]:
        """The same blocks, each as the call that finishes it: the rows' numbers and the
        table's final form are worked out by whoever calls it. The engine's parser thread,
        the limit on a large file, hands these to the analysis (a tenth of its time)."""
        pieces: list[Finish] = []
        start = self._offset()
        while True:
            if self._skipping_line:
                self._skip_rest_of_line()
            self._fill(self._block_size)
            if not self._buffer:
                break
            pieces.append(self._next_block())
            if self._offset() - start >= self._block_size // 2:
                yield _joined(pieces)
                pieces, start = [], self._offset()
        if pieces:
            yield _joined(pieces)

    def _skip_rest_of_line(self) -> None:
        """A malformed line too long to hold: drop it, without keeping it in memory."""
        while True:
            newline = self._buffer.find(b"\n")
            if newline >= 0:
                self._consume(newline + 1)
                self._skipping_line = False
                return
            self._consume(len(self._buffer))
            self._fill(self._block_size)
            if not self._buffer:
                self._skipping_line = False
                return

    def _next_block(self) -> Finish:
        if not self._broken_next:
            kept = self._kept_here()
            cut = (
                kept.size
                if kept is not None
                else regular_records(
                    self._buffer, self._regular_limit, self._eof, ord(self.dialect.delimiter)
                )
            )
            finish = self._parse_regular(cut, kept) if cut is not None else None
            if not self._broken_next:
                self._regular_limit = min(self._regular_limit * 2, self._block_size)
            if finish is not None:
                self._exact_step = EXACT_STEP_BYTES
                return finish
        if self._broken_next:
            # Its first line is one malformed row; the exact walk says so, and why, and walks
            # on to where pyarrow's next record starts, if pyarrow's parse of what follows
            # was kept.
            self._broken_next = False
            stretch = self._ahead[0].start - self._consumed if self._ahead else 1
            self._fill(stretch + MAX_RECORD_BYTES + 1)
            block = self._parse_exact(stretch)
            if self._skipping_line:
                self._ahead.clear()
            self._kept_here()  # drops what was kept if the walk ended elsewhere
            return _ready(block)
        # The exact walk takes over for a short stretch, then the regular path tries again;
        # each failure in a row doubles the stretch, so a file of stray quotes costs the
        # walk's linear time, never a regular attempt per line.
        step = min(self._exact_step, self._block_size)
        self._exact_step = min(self._exact_step * 2, self._block_size)
        self._fill(step + MAX_RECORD_BYTES + 1)
        return _ready(self._parse_exact(step))

    def _read_csv(self, raw: bytes | memoryview) -> pa.Table:
        """Parse a regular block; fills self._invalid and self._counts with the rows pyarrow
        dropped, numbered from 1 within the block."""
        table = self._parser.parse(raw, self._column_names, self._convert_options)
        self._invalid[:], self._counts[:] = self._parser.invalid, self._parser.counts
        return table

    def _check_encoding(self, raw: bytes | memoryview, ascii_only: bool) -> bool:
        """Whether raw is fine as it is. Switches to Windows-1252 (and says False) when a file
        that was ASCII so far turns out not to be UTF-8; rejects it when it was UTF-8."""
        if ascii_only:
            return True
        raw = bytes(raw)
        error_at = _utf8_error_at(raw)
        if error_at is None:
            self._ascii_so_far = False
            return True
        if self._ascii_so_far and raw[:error_at].isascii() and not self._transcoded:
            self._ahead.clear()
            self._transcode(dialects.cp1252_to_utf8)
            self.dialect = Dialect(
                encoding="windows-1252",
                delimiter=self.dialect.delimiter,
                line_end=self.dialect.line_end,
            )
            return False
        line_start = raw.rfind(b"\n", 0, error_at) + 1
        walk = self._grammar.walk(raw[:line_start], line_start, True)
        raise EncodingError(self._next_row + walk.records)

    def _parse_regular(self, cut: int, kept: _ParsedAhead | None) -> Finish | None:
        """The records in buffer[:cut], parsed now or, when `kept`, as parsed before."""
        # A view, not a copy of the block: pyarrow parses it where it lies.
        raw = memoryview(self._buffer)[:cut]
        ascii_only = _is_ascii(raw)
        if not self._check_encoding(raw, ascii_only):
            return None  # transcoded: the exact walk takes the block
        if kept is not None:
            self._ahead.pop(0)
            table = kept.table
            self._invalid[:], self._counts[:] = kept.invalid, kept.counts
        else:
            table = self._read_csv(raw)
        # pyarrow numbers every record from 1, empty lines included (they come back as rows
        # of empty strings), so a dropped row's number is its record index plus one.
        records = table.num_rows + len(self._invalid)
        dropped = np.array([number - 1 for number, _ in self._invalid], np.int64)
        if dropped.size and (dropped.min() < 0 or dropped.max() >= records):
            return None  # numbering we cannot place: take the exact walk
        broken = [number - 1 for number, text in self._invalid if "\n" in text]
        if broken:
            # A broken quote: the records before it are fine, as parsed (a record's parse
            # does not depend on what follows it); the exact walk recovers from it.
            records = broken[0]
            self._broken_next = True
            starts = None
            if kept is None and cut > MIN_KEPT_BYTES:  # a fresh parse with room to keep some
                starts, _ = record_bounds(raw, cut)
                self._keep_ahead(table, dropped, starts, cut, broken)
            if records == 0:
                self._regular_limit = MIN_REGULAR_BYTES
                return None
            if starts is None:
                starts, _ = record_bounds(raw, cut)
            cut = int(starts[records])
            self._regular_limit = max(MIN_REGULAR_BYTES, min(2 * cut, self._block_size))
            raw = raw[:cut]
            before = dropped < records
            self._invalid = [row for row, keep in zip(self._invalid, before, strict=True) if keep]
            self._counts = [count for count, keep in zip(self._counts, before, strict=True) if keep]
            dropped = dropped[before]
            table = table.slice(0, records - len(dropped))
        first_row = self._next_row
        self._next_row += records
        all_empty = _all_empty_rows(table)
        # Only these blocks keep their bytes, as a copy: the view must go before the buffer's
        # front is consumed.
        kept_raw = bytes(raw) if all_empty is not None else None
        del raw
        self._consume(cut)
        if kept is not None:
            self._broken_next = kept.then_broken
        return functools.partial(
            _numbered,
            _Parsed(
                table=table,
                records=records,
                dropped=dropped,
                counts=tuple(self._counts),
                blank=tuple(not text.strip(_WHITESPACE) for _, text in self._invalid),
                all_empty=all_empty,
                raw=kept_raw,
                cut=cut,
                first_row=first_row,
                ascii_only=ascii_only,
                end_offset=self._offset(),
                names=self._used,
            ),
        )

    def _keep_ahead(
        self, table: pa.Table, dropped: IntArray, starts: IntArray, cut: int, broken: list[int]
    ) -> None:
        """Keep what pyarrow parsed between the broken records and after the last one, as far
        as they lie at least MIN_KEPT_BYTES apart: closer together, each would cost a block
        of its own, and the adaptive regular path does better."""
        for index, first in enumerate(broken):
            stop = broken[index + 1] if index + 1 < len(broken) else len(starts)
            begin = int(starts[first + 1]) if first + 1 < len(starts) else cut
            end = int(starts[stop]) if stop < len(starts) else cut
            if end - begin < MIN_KEPT_BYTES:
                return
            low = int(np.searchsorted(dropped, first, "right"))  # dropped after `first`
            high = int(np.searchsorted(dropped, stop))
            self._ahead.append(
                _ParsedAhead(
                    start=self._consumed + begin,
                    size=end - begin,
                    table=table.slice(first + 1 - low, stop - first - 1 - (high - low)),
                    invalid=[
                        (number - first - 1, text) for number, text in self._invalid[low:high]
                    ],
                    counts=self._counts[low:high],
                    then_broken=index + 1 < len(broken),
                )
            )

    def _kept_here(self) -> _ParsedAhead | None:
        """What was kept for the records starting here, if anything; whatever was kept for
        elsewhere is dropped (the exact walk ended somewhere else)."""
        if self._ahead and self._ahead[0].start == self._consumed:
            return self._ahead[0]
        self._ahead.clear()
        return None

    def _parse_exact(self, limit: int) -> Block:
        walk = self._grammar.walk(self._buffer, limit, self._eof)
        raw = bytes(self._buffer[: walk.cut])
        if not self._check_encoding(raw, raw.isascii()):
            return self._parse_exact(limit)
        first_row = self._next_row
        self._next_row += walk.records
        self._consume(walk.cut)
        self._skipping_line = walk.skip_rest_of_line
        names = list(self._used.values())
        table = pa.table(
            {
                name: pa.array(values, pa.string())
                for name, values in zip(names, walk.values, strict=True)
            }
        )
        return Block(
            table=table,
            rows=first_row + np.array(walk.good, np.int64),
            malformed_rows=first_row + np.array(walk.malformed, np.int64),
            malformed_problems=tuple(walk.problems),
            ascii_only=raw.isascii(),
            end_offset=self._offset(),
        )


_NO_ROWS: Final = np.zeros(0, np.int64)


Finish = Callable[[], Block]


class _Parsed(Struct, frozen=True):
    """A regular block as the parser's thread leaves it."""

    table: pa.Table  # binary columns, named c0, c1, ...; blank lines still rows
    records: int
    dropped: IntArray  # record indexes of the rows pyarrow dropped
    counts: tuple[tuple[int, int], ...]  # (expected, found) fields of each
    blank: tuple[bool, ...]  # whether each was a blank line
    all_empty: BoolArray | None  # rows with every column empty, if any
    raw: bytes | None  # kept only for those
    cut: int
    first_row: int
    ascii_only: bool
    end_offset: int
    names: dict[str, str]  # generated column name -> the contract's


def _numbered(parsed: _Parsed) -> Block:
    good = np.delete(np.arange(parsed.records, dtype=np.int64), parsed.dropped)
    table = parsed.table
    if parsed.all_empty is not None and parsed.raw is not None:
        table, good = _without_empty_lines(table, good, parsed.all_empty, parsed.raw, parsed.cut)
    blank = np.array(parsed.blank, np.bool_)
    dropped, first_row = parsed.dropped, parsed.first_row
    return Block(
        table=pa.table(
            [
                pa.chunked_array([chunk.view(pa.string()) for chunk in column.chunks], pa.string())
                for column in table.columns
            ],
            names=[parsed.names[name] for name in table.column_names],
        ),
        rows=first_row + good,
        malformed_rows=first_row + dropped[~blank] if dropped.size else _NO_ROWS,
        malformed_problems=tuple(
            wrong_count(expected, found)
            for (expected, found), is_blank in zip(parsed.counts, parsed.blank, strict=True)
            if not is_blank
        ),
        ascii_only=parsed.ascii_only,
        end_offset=parsed.end_offset,
    )


def _ready(block: Block) -> Finish:
    return lambda: block


def _joined(pieces: Sequence[Finish]) -> Finish:
    if len(pieces) == 1:
        return pieces[0]
    return functools.partial(_finish_merged, tuple(pieces))


def _finish_merged(pieces: Sequence[Finish]) -> Block:
    return merge([finish() for finish in pieces])


def _all_empty_rows(table: pa.Table) -> BoolArray | None:
    """Which rows have every column empty, or None when none has: empty lines come back as
    such rows, as does ",,,,". Column by column, stopping at the first with no empty value
    where the others had one (most blocks stop at the first column)."""
    if table.num_rows == 0:
        return None
    all_empty = np.ones(table.num_rows, np.bool_)
    for name in table.column_names:
        offsets, _ = kernels.string_buffers(table.column(name).combine_chunks())
        all_empty &= offsets[1:] == offsets[:-1]
        if not all_empty.any():
            return None
    return all_empty


def _without_empty_lines(
    table: pa.Table, good: IntArray, all_empty: BoolArray, raw: bytes | memoryview, cut: int
) -> tuple[pa.Table, IntArray]:
    """Of the rows with every column empty, only the first line of ",,,,"-like ones is data;
    empty lines are told apart by their bytes."""
    starts, lengths = record_bounds(raw, cut)
    candidates = np.flatnonzero(all_empty)
    records = good[candidates]
    blank = empty_lines(raw, starts[records], lengths[records])
    if not blank.any():
        return table, good
    keep = np.ones(table.num_rows, np.bool_)
    keep[candidates[blank]] = False
    return kernels.keep(table, keep), good[keep]


class _Parser:
    """pyarrow's parser for one block at a time, with the rows it drops."""

    def __init__(self, delimiter: str) -> None:
        self.invalid: list[tuple[int, str]] = []
        self.counts: list[tuple[int, int]] = []
        self._dropped: defaultdict[pacsv.InvalidRow, str] = defaultdict(_SKIP)
        self._options = pacsv.ParseOptions(
            delimiter=delimiter,
            newlines_in_values=True,
            ignore_empty_lines=False,
            invalid_row_handler=self._dropped.__getitem__,
        )

    def parse(
        self, raw: bytes | memoryview, column_names: list[str], convert: pacsv.ConvertOptions
    ) -> pa.Table:
        self._dropped.clear()
        table = pacsv.read_csv(
            # A native buffer, not a Python file object: reading it needs no GIL.
            pa.BufferReader(pa.py_buffer(raw)),
            # One pyarrow block per raw block: its own chunker then never has to find
            # record ends (we did), and dropped rows are numbered within this block.
            read_options=pacsv.ReadOptions(
                column_names=column_names, block_size=len(raw) + 1, use_threads=False
            ),
            parse_options=self._options,
            convert_options=convert,
        )
        self.invalid = [(row.number, row.text) for row in self._dropped]
        self.counts = [(row.expected_columns, row.actual_columns) for row in self._dropped]
        return table


# pyarrow calls the handler for every row it drops, holding the GIL; a defaultdict's lookup
# with a C factory keeps each row and answers "skip" without running Python code.
_SKIP: Final = itertools.repeat("skip").__next__


_WHITESPACE: Final = ASCII_WHITESPACE.decode()


def _choose_delimiter(line: bytes, row: int) -> tuple[str, tuple[str, ...]]:
    """The first delimiter whose split of the header holds every required column."""
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        raise EncodingError(row) from None
    splits: list[tuple[str, ...]] = []
    for delimiter in dialects.DELIMITERS:
        grammar = RecordGrammar(delimiter, 0, ())
        raw_names = tuple(name.decode("utf-8").strip() for name in grammar.fields(line))
        names = tuple(name.lower() for name in raw_names)
        if all(column in names for column in REQUIRED_COLUMNS):
            return delimiter, names
        splits.append(raw_names)
    # Told in the split that explains most (a semicolon header read by its semicolons);
    # the comma's when none explains anything.
    raise max((missing_columns(names) for names in splits), key=lambda error: error.matched)

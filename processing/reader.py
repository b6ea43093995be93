"""Byte stream -> header + parsed column blocks. The only module that knows the CSV engine.

Goal: parse at native speed with flat memory, yet name every bad row by the row number a
spreadsheet shows (header = row 1, one row per record, blank lines occupy a row).

Plan: we cut the stream ourselves into record-aligned blocks of about `block_size` bytes
(a newline outside quotes ends a record; quote parity is all it takes, since RFC 4180's
doubled quotes keep the parity). Each block goes to pyarrow's `read_csv`, which releases
the GIL, so the event loop of the process that calls us keeps running. Because every block
is parsed on its own, the rows pyarrow drops (field-count mismatches and whitespace-only
lines, via `invalid_row_handler`) are counted per block, and empty lines come back as rows
of empty values; so records per block are counted without looking at each one. Only a
block that holds a bad row whose number we still need, or a row that may be an empty
line, is re-walked in Python to map its records to rows.

Not yet measured: whether more than one parse thread pays off on more than 2 cores.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

import pyarrow as pa
import pyarrow.csv as pacsv

from processing.errors import (
    CsvSyntaxError,
    EncodingError,
    MissingColumnsError,
    NoRowsError,
    NotCsvError,
)
from processing.schema import REQUIRED_COLUMNS, REVENUE_COLUMN, TREATMENT_COLUMN

BOM = b"\xef\xbb\xbf"
DEFAULT_BLOCK_SIZE = 1 << 20  # 1 MiB: larger blocks are not faster, only hungrier
READ_SIZE = 1 << 20

_MAGIC = (
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

COLUMNS_USED = (*REQUIRED_COLUMNS, REVENUE_COLUMN, TREATMENT_COLUMN)


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


def last_record_end(buffer: bytes, limit: int | None = None) -> int:
    """Index just past the last newline outside quotes within buffer[:limit], or 0 if none.

    `buffer` must start at a record boundary.
    """
    end = len(buffer) if limit is None else min(limit, len(buffer))
    quotes_before = buffer.count(b'"', 0, end)
    while (newline := buffer.rfind(b"\n", 0, end)) >= 0:
        quotes_before -= buffer.count(b'"', newline, end)
        if quotes_before % 2 == 0:
            return newline + 1
        end = newline
    return 0


@dataclass(frozen=True, slots=True)
class Header:
    names: tuple[str, ...]  # trimmed and lower-cased, in file order
    row: int  # spreadsheet row of the header: 1 unless blank lines precede it
    bytes_consumed: int  # BOM, leading blank lines and the header record itself

    @property
    def field_count(self) -> int:
        return len(self.names)

    def index_of(self, column: str) -> int | None:
        try:
            return self.names.index(column)
        except ValueError:
            return None


@dataclass(frozen=True, slots=True)
class Block:
    """One record-aligned slice of the body, parsed."""

    raw: bytes
    table: pa.Table  # columns named as in COLUMNS_USED; missing optional ones are absent
    first_row: int  # spreadsheet row of the block's first record (blank or not)
    malformed: int  # records pyarrow dropped for a wrong field count
    ascii_only: bool  # lets callers pick the cheaper ASCII string kernels
    end_offset: int  # bytes of the stream consumed once this block is done
    field_count: int

    def row_map(self) -> RowMap:
        return map_rows(self.raw, self.field_count, self.first_row)


@dataclass(frozen=True, slots=True)
class RowMap:
    """Spreadsheet rows of a block's records, by what pyarrow did with them."""

    parsed: list[int]  # rows pyarrow returned, in table order (empty lines included)
    empty: set[int]  # those of them that are empty lines
    malformed: list[int]  # rows pyarrow dropped for a wrong field count
    records: int


def map_rows(raw: bytes, field_count: int, first_row: int) -> RowMap:
    """Walk a block's records in Python, the way pyarrow splits them.

    Slow (tens of ms per MiB): only for blocks holding a row whose number is still needed,
    or rows that may be empty lines.
    """
    parsed: list[int] = []
    empty: set[int] = set()
    malformed: list[int] = []
    text = raw.decode("utf-8", errors="replace")
    row = first_row
    pending: list[str] = []
    quotes = 0
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for line in lines:
        pending.append(line)
        quotes += line.count('"')
        if quotes % 2:
            continue
        record = "\n".join(pending)
        pending.clear()
        quotes = 0
        if record in ("", "\r"):
            parsed.append(row)  # pyarrow keeps empty lines as rows of empty values
            empty.add(row)
        elif record.strip():
            if '"' in record:
                fields = len(next(csv.reader(io.StringIO(record, newline="")), [""]))
            else:
                fields = record.count(",") + 1
            (parsed if fields == field_count else malformed).append(row)
        row += 1  # whitespace-only lines are dropped by pyarrow, yet occupy a row
    if pending:  # an unclosed quote runs to the end of the block, as in pyarrow
        record = "\n".join(pending)
        fields = len(next(csv.reader(io.StringIO(record, newline="")), [""]))
        (parsed if fields == field_count else malformed).append(row)
        row += 1
    return RowMap(parsed=parsed, empty=empty, malformed=malformed, records=row - first_row)


def _sniff_binary(head: bytes) -> None:
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            raise NotCsvError(kind)
    if b"\x00" in head[:4096]:
        raise NotCsvError("binary data")


def _check_utf8(raw: bytes, first_row: int, field_count: int) -> None:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        prefix = raw[: exc.start]
        line_start = prefix.rfind(b"\n") + 1
        rows_before = map_rows(prefix[:line_start], field_count, first_row).records
        raise EncodingError(first_row + rows_before) from None


def _parse_header(record: bytes, row: int) -> tuple[str, ...]:
    try:
        text = record.decode("utf-8")
    except UnicodeDecodeError:
        raise EncodingError(row) from None
    fields = next(csv.reader(io.StringIO(text, newline="")), [])
    return tuple(name.strip().lower() for name in fields)


class BlockReader:
    """Iterate parsed blocks of a CSV byte stream. Reads the header on construction."""

    def __init__(
        self, source: Iterable[bytes] | BinaryIO, block_size: int = DEFAULT_BLOCK_SIZE
    ) -> None:
        self._chunks = iter_chunks(source)
        self._block_size = block_size
        self._buffer = b""
        self._eof = False
        self._consumed = 0
        self.header = self._read_header()
        self._next_row = self.header.row + 1
        self._schema_options()

    # -- header ---------------------------------------------------------------------------

    def _fill(self, at_least: int) -> bool:
        """Grow the buffer to `at_least` bytes if the stream allows. False at end of stream."""
        if self._eof:
            return False
        pieces = [self._buffer]
        size = len(self._buffer)
        while size < at_least:
            chunk = next(self._chunks, None)
            if chunk is None:
                self._eof = True
                break
            pieces.append(chunk)
            size += len(chunk)
        self._buffer = b"".join(pieces)
        return not self._eof or size > 0

    def _read_header(self) -> Header:
        self._fill(64 * 1024)
        if not self._buffer:
            raise NoRowsError("no content at all (it is empty)")
        if self._buffer.startswith(BOM):
            self._buffer = self._buffer[len(BOM) :]
            self._consumed += len(BOM)
        _sniff_binary(self._buffer)
        row = 1
        while True:
            end = first_record_end(self._buffer)
            while end == 0 and not self._eof:
                self._fill(max(2 * len(self._buffer), self._block_size))
                end = first_record_end(self._buffer)
            if end == 0:
                end = len(self._buffer)
            record, self._buffer = self._buffer[:end], self._buffer[end:]
            self._consumed += len(record)
            if record.strip():
                break
            if not self._buffer:
                self._fill(self._block_size)
                if not self._buffer:
                    raise NoRowsError("only blank lines")
            row += 1
        names = _parse_header(record, row)
        missing = [column for column in REQUIRED_COLUMNS if column not in names]
        if missing:
            raise MissingColumnsError(missing)
        return Header(names=names, row=row, bytes_consumed=self._consumed)

    def _schema_options(self) -> None:
        header = self.header
        # Generated names make duplicates and odd header text harmless; the first column
        # with a given name wins.
        generated = [f"c{index}" for index in range(header.field_count)]
        self._used: dict[str, str] = {}
        for column in COLUMNS_USED:
            index = header.index_of(column)
            if index is not None:
                self._used[generated[index]] = column
        self._column_names = generated
        self._convert_options = pacsv.ConvertOptions(
            include_columns=list(self._used),
            column_types={name: pa.string() for name in self._used},
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        )

    # -- body -----------------------------------------------------------------------------

    def _next_raw_block(self) -> bytes | None:
        while True:
            if len(self._buffer) >= self._block_size:
                end = last_record_end(self._buffer, self._block_size) or last_record_end(
                    self._buffer
                )
                if end == 0 and not self._eof:
                    self._fill(len(self._buffer) * 2)  # one record longer than a block
                    continue
                if end == 0:
                    end = len(self._buffer)
                raw, self._buffer = self._buffer[:end], self._buffer[end:]
                return raw
            if self._eof:
                raw, self._buffer = self._buffer, b""
                return raw or None
            self._fill(self._block_size)

    def __iter__(self) -> Iterator[Block]:
        while (raw := self._next_raw_block()) is not None:
            yield self._parse(raw)

    def _parse(self, raw: bytes) -> Block:
        first_row = self._next_row
        field_count = self.header.field_count
        ascii_only = raw.isascii()
        if not ascii_only:
            _check_utf8(raw, first_row, field_count)
        dropped = [0, 0]  # malformed, whitespace-only

        def on_invalid_row(row: pacsv.InvalidRow) -> str:
            dropped[0 if row.text.strip() else 1] += 1
            return "skip"

        try:
            table = pacsv.read_csv(
                io.BytesIO(raw),
                # One pyarrow block per raw block: its own chunker then never has to find
                # record ends (we did), and dropped rows are attributed to this block.
                read_options=pacsv.ReadOptions(
                    column_names=self._column_names, block_size=len(raw) + 1, use_threads=False
                ),
                parse_options=pacsv.ParseOptions(
                    newlines_in_values=True,
                    ignore_empty_lines=False,
                    invalid_row_handler=on_invalid_row,
                ),
                convert_options=self._convert_options,
            )
        except pa.ArrowInvalid:
            rows = map_rows(raw, field_count, first_row)
            last = (rows.parsed or rows.malformed or [first_row])[-1]
            raise CsvSyntaxError(last, "a quoted field is never closed") from None
        table = table.rename_columns([self._used[name] for name in table.column_names])
        malformed, whitespace = dropped
        self._consumed += len(raw)
        self._next_row += table.num_rows + malformed + whitespace
        return Block(
            raw=raw,
            table=table,
            first_row=first_row,
            malformed=malformed,
            ascii_only=ascii_only,
            end_offset=self._consumed,
            field_count=field_count,
        )


def first_record_end(buffer: bytes) -> int:
    """Index just past the first newline outside quotes, or 0 if there is none."""
    start = 0
    quotes = 0
    while (newline := buffer.find(b"\n", start)) >= 0:
        quotes += buffer.count(b'"', start, newline)
        if quotes % 2 == 0:
            return newline + 1
        start = newline + 1
    return 0

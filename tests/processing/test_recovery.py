"""Broken quoting, overlong records and absurd dates: nothing is swallowed, nothing crashes."""

from __future__ import annotations

import io
import itertools
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest

from processing import HeaderTooLongError, TooManyValuesError, analyze, reader
from processing.records import RecordGrammar
from tests import oracle
from tests.helpers import HEADER, csv_of, report_of

ROW = "e{0},c1,p{0},TREATMENT_COMPLETED,2024-01-03T10:00:00Z,cleaning,10.00"


def rows(count: int, start: int = 0) -> list[str]:
    return [ROW.format(i) for i in range(start, start + count)]


def errors(report: dict) -> dict[str, tuple[int, list[int]]]:
    return {reason: (v["count"], v["first_rows"]) for reason, v in report["errors"].items()}


def test_an_unclosed_quote_costs_one_row_not_the_rest_of_the_file() -> None:
    """A stray quote opening row 3's last field never closes: row 3 is lost, 2,001 rows count."""
    lines = rows(2002)
    lines[1] = lines[1].replace(",10.00", ',"10.00')  # spreadsheet row 3
    report = report_of(csv_of(*lines))
    assert report["rows"] == {"total": 2002, "valid": 2001, "invalid": 1}
    assert errors(report)["malformed_row"] == (1, [3])
    assert report["revenue"] == "20010.00"
    assert report == oracle.analyze(csv_of(*lines).encode())


@pytest.mark.parametrize("block_size", [1, 64, 4096, 1 << 20])
def test_recovery_does_not_depend_on_block_or_chunk_size(block_size: int) -> None:
    """The same rows whatever the block and chunk sizes."""
    lines = rows(300)
    lines[10] = lines[10].replace("cleaning", '"cleaning')
    lines[200] = lines[200].replace("p200", 'p"200')  # a quote inside a field: a character
    data = csv_of(*lines).encode()
    whole = report_of(data)
    assert errors(whole)["malformed_row"] == (1, [12])
    assert whole["rows"]["valid"] == 299
    pieces = [data[i : i + 97] for i in range(0, len(data), 97)]
    assert report_of(pieces, block_size=block_size) == whole


def test_a_broken_quote_costs_its_first_line() -> None:
    """A multi-line record with the wrong field count: its first line is one malformed row and
    the next line is read as a record of its own."""
    lines = [
        ROW.format(1),
        'e2,c1,p2,TREATMENT_COMPLETED,2024-01-03,"cleaning,10.00',  # opens, closes below
        'e3,c1,p3,TREATMENT_COMPLETED,2024-01-03,cleaning,10.00"',
        ROW.format(4),
    ]
    report = report_of(csv_of(*lines))
    # Rows 3 and 4 would be one record of 13 fields: row 3 is lost, row 4 is read on its own
    # (its quote is a plain character), and it is valid except for its amount.
    assert report["rows"]["total"] == 4
    assert errors(report)["malformed_row"] == (1, [3])
    assert errors(report)["invalid_revenue"] == (1, [4])
    assert report == oracle.analyze(csv_of(*lines).encode())


def test_a_multi_line_value_with_the_right_field_count_is_one_row() -> None:
    """Quoted newlines stay one row: the next row's number counts records, not lines."""
    lines = [ROW.format(1), 'e2,c1,p2,X,2024-01-03,"two\nlines",', "e3,c1,,X,2024-01-03,,"]
    report = report_of(csv_of(*lines))
    assert report["rows"] == {"total": 3, "valid": 2, "invalid": 1}
    assert errors(report)["missing_required_field"] == (1, [4])


def test_an_unclosed_quote_at_the_end_of_the_file_resumes_at_the_next_line() -> None:
    """The quote never closes before the end: its line is lost, the lines after it are read."""
    lines = [ROW.format(1), 'e2,c1,p2,X,"2024-01-03,,', *rows(3, start=3)]
    report = report_of(csv_of(*lines))
    assert report["rows"] == {"total": 5, "valid": 4, "invalid": 1}
    assert errors(report)["malformed_row"] == (1, [3])
    assert report["revenue"] == "40.00"


def test_a_huge_quoted_note_and_a_bad_row_in_the_same_block() -> None:
    """A 220 KB quoted note is data; a short row next to it is named, no field-size crash."""
    note = '"' + "note, " * 37_000 + '\n""quoted"" end"'
    lines = [
        ROW.format(1) + ",",
        f"e2,c1,p2,X,2024-01-03,,,{note}",
        "e3,c1,p3,X",
        ROW.format(4) + ",",
    ]
    report = report_of(csv_of(*lines, header=HEADER + ",notes"))
    assert errors(report)["malformed_row"] == (1, [4])
    assert report["rows"] == {"total": 4, "valid": 3, "invalid": 1}


def test_a_swallowed_record_longer_than_the_csv_field_limit_is_named() -> None:
    """An unclosed quote before 200,000 characters of rows: one malformed row, no crash."""
    lines = rows(3000)
    lines[0] = lines[0].replace("cleaning", '"cleaning')
    lines[2500] = "e,c,p,X"  # a bad row the engine must name
    report = report_of(csv_of(*lines))
    assert errors(report)["malformed_row"] == (2, [2, 2502])
    assert report["rows"]["valid"] == 2998


def test_a_record_over_one_mib_is_malformed_and_memory_stays_flat() -> None:
    """A 40 MB line without a line end in sight is skipped as one malformed row, streamed."""

    def stream() -> Iterator[bytes]:
        yield (HEADER + "\n" + ROW.format(1) + "\n").encode()
        yield b"e2,c1,p2,X,2024-01-03,"
        yield from itertools.repeat(b"x" * 65_536, 640)  # 40 MiB, one line
        yield b",\n" + (ROW.format(3) + "\n").encode()

    report = report_of(stream())
    assert report["rows"] == {"total": 3, "valid": 2, "invalid": 1}
    assert errors(report)["malformed_row"] == (1, [3])


def test_a_quoted_record_over_one_mib_costs_its_first_line() -> None:
    """A quote that closes only after 1.5 MiB: its first line is lost, reading goes on after it."""
    filler = "\n".join(["x" * 1000] * 1500)
    lines = [ROW.format(1), f'e2,c1,p2,X,2024-01-03,,"{filler}"', ROW.format(3)]
    report = report_of(csv_of(*lines))
    # Row 3 is the first line of the long record; each of the other 1,499 filler lines is a
    # malformed row of its own (the closing one's quote is a plain character), then the last
    # row is read.
    assert errors(report)["malformed_row"][0] == 1500
    assert errors(report)["malformed_row"][1][:2] == [3, 4]
    assert report["rows"]["valid"] == 2
    assert report == oracle.analyze(csv_of(*lines).encode())


def test_every_reason_keeps_as_many_rows_as_it_counts_up_to_twenty() -> None:
    """Count and row numbers agree, with stray quotes everywhere."""
    lines = []
    for i in range(60):
        lines.append(ROW.format(i).replace("cleaning", '"clean' if i % 3 == 0 else "cleaning"))
        lines.append("e,c,p,X")
    report = report_of(csv_of(*lines))
    for count, first_rows in errors(report).values():
        assert len(first_rows) == min(count, 20)


def test_a_header_line_over_one_mib_is_refused() -> None:
    """A first line of 2 MiB cannot be a header: refused, saying so."""
    data = b"x" * (2 << 20) + b"\n" + csv_of(ROW.format(1)).encode()
    with pytest.raises(HeaderTooLongError, match="longer than 1 MiB"):
        analyze(io.BytesIO(data))


def test_blank_lines_before_the_header_are_read_in_linear_time() -> None:
    """5 MB of blank lines before the header: read, and the header is row 5,000,001."""
    data = b"\n" * 5_000_000 + csv_of(ROW.format(1), "e,c,p,X").encode()
    report = report_of(data)
    assert errors(report)["malformed_row"] == (1, [5_000_003])


@pytest.mark.parametrize(
    "timestamp",
    [
        "0001-01-01",
        "9999-12-26",
        "9999-12-27",
        "9999-12-31T23:59:59-23:59",
        "0001-01-01T00:30:00+01:00",
        "1899-12-31",
        "1900-01-01T00:30:00+01:00",
        "2200-01-01",
        "2199-12-31T23:00:00-02:00",
    ],
)
def test_dates_outside_1900_to_2199_are_invalid(timestamp: str) -> None:
    """Absurd dates are invalid timestamps: no overflow, and weeks stay bounded."""
    data = csv_of(ROW.format(1), f"e2,c1,p2,X,{timestamp},,")
    report = report_of(data)
    assert errors(report)["invalid_timestamp"] == (1, [3])
    assert len(report["weeks"]) == 1
    assert report == oracle.analyze(data.encode())


def test_the_first_and_last_days_of_the_range_are_valid() -> None:
    """1900-01-01 and 2199-12-31 are in; the weeks between them are bounded (~15,650)."""
    data = csv_of("e1,c1,p1,X,1900-01-01,,", "e2,c1,p2,X,2199-12-31T23:59:59,,")
    report = report_of(data)
    assert report["rows"]["valid"] == 2
    assert len(report["weeks"]) == 15_654


@pytest.mark.parametrize(("column", "template"), [
    ("event_type", "e{0},c1,p{0},TYPE_{0},2024-01-03,,"),
    ("treatment_type", "e{0},c1,p{0},TREATMENT_COMPLETED,2024-01-03,kind{0},1"),
])  # fmt: skip
def test_more_than_ten_thousand_labels_are_refused(column: str, template: str) -> None:
    """10,001 distinct types cannot be types: refused, naming the column."""
    data = csv_of(*(template.format(i) for i in range(10_001)))
    with pytest.raises(TooManyValuesError, match=column):
        analyze(io.BytesIO(data.encode()))
    assert (
        report_of(csv_of(*(template.format(i) for i in range(10_000))))["rows"]["valid"] == 10_000
    )


def test_more_than_two_hundred_thousand_week_type_pairs_are_refused() -> None:
    """Every type in every week: each bound holds alone, together they would not; refused."""
    types, weeks = 300, 700  # 210,000 pairs
    mondays = [date(1950, 1, 2) + timedelta(weeks=week) for week in range(weeks)]
    rows = (f"e,c,p,T{k},{monday},," for monday in mondays for k in range(types))
    with pytest.raises(TooManyValuesError, match="pairs of a week and a value of event_type"):
        analyze(iter([csv_of(*rows).encode()]))


def test_a_stray_quote_on_every_line_costs_linear_time() -> None:
    """Each line opens a quote the next one closes: every record is broken. The walk must not
    re-read up to 1 MiB for each line (quadratic: a large file would take hours); the test
    timeout catches a return of that."""
    line = 'e{0},c,p"{0},TREATMENT_COMPLETED,2024-01-03,"x,1.00'
    data = csv_of(*(line.format(i) for i in range(20_000)))
    report = report_of(data)
    assert report["rows"] == {"total": 20_000, "valid": 0, "invalid": 20_000}
    assert errors(report)["malformed_row"][1][:3] == [2, 3, 4]
    small = csv_of(*(line.format(i) for i in range(300)))
    assert report_of(small) == oracle.analyze(small.encode())


def test_the_exact_walk_reads_only_as_far_as_its_records_reach(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A broken quote hands 4 KiB to the exact walk while over 1 MiB is held for a long
    record: the lines beyond its records are not lexed (lexing all of them slowed a file with
    many bad rows), and the records it reads are the right ones."""
    quoted = 'e{0},c1,p{0},TREATMENT_COMPLETED,2024-01-03T10:00:00Z,cleaning,"1{0}.00"'
    broken = 'e,c1,p,TREATMENT_COMPLETED,2024-01-03T10:00:00Z,cleaning,x,"10\n00"'
    body = "\n".join([broken, *(quoted.format(i) for i in range(20_000))]) + "\n"
    grammar = RecordGrammar(",", 7, range(7))
    lexed = 0
    transfer = grammar._transfer

    def counting_transfer(line: bytes, quoted: bool) -> tuple[bool, int]:
        nonlocal lexed
        lexed += 1
        return transfer(line, quoted)

    monkeypatch.setattr(grammar, "_transfer", counting_transfer)
    walk = grammar.walk(body.encode(), 4096, at_eof=False)
    assert len(body) > 1 << 20
    assert walk.problems[0].startswith("broken quote")  # its first line, record 0
    assert walk.problems[1] == "expected 7 fields, found 1"  # its second line, a record of its own
    assert walk.good[:2] == [2, 3]
    assert walk.cut <= 4096 + len(quoted) + 16
    assert lexed <= 2 * (walk.records + 2)


@pytest.fixture
def parsed_bytes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many bytes pyarrow's parser has been given so far (one number, in a list)."""
    parsed = [0]
    parse = reader._Parser.parse

    def counting_parse(self: reader._Parser, raw: bytes, *args: Any) -> object:
        parsed[0] += len(raw)
        return parse(self, raw, *args)

    monkeypatch.setattr(reader._Parser, "parse", counting_parse)
    return parsed


def test_broken_quotes_close_together_are_not_parsed_again_and_again(
    parsed_bytes: list[int],
) -> None:
    """Every row has one field too many and some carry a two-line note, so a broken quote
    comes every few dozen rows: each stops a parse, and what follows is parsed again. The
    parser sees the file's bytes a few times (16 KiB at least per broken quote), not 1 MiB
    per broken quote (the whole file many times over); every row is counted."""
    lines = [
        f"e{i},c1,p{i},TREATMENT_COMPLETED,2024-01-03,cleaning,1.00,Main St, Springfield,"
        + ('"two\nlines"' if i % 40 == 0 else "note")
        for i in range(20_000)
    ]
    data = (HEADER + ",staff,channel\n" + "\n".join(lines) + "\n").encode()
    report = report_of(data)
    assert report["rows"]["valid"] == 0
    assert report["rows"]["total"] == 20_000 + 500  # each two-line note's second line is a row
    assert errors(report)["malformed_row"][1][:3] == [2, 3, 4]
    assert parsed_bytes[0] < 10 * len(data)


def test_what_follows_a_lone_broken_quote_is_parsed_once(parsed_bytes: list[int]) -> None:
    """A broken quote every 4,000 rows (a two-line note and a field too many): pyarrow's
    parse of the rows after each is kept while the exact walk takes the broken record, so
    the parser sees the file about once (it used to parse the rest of each block again),
    and the report is the reference's."""
    lines = rows(40_000)
    for i in range(1_000, 40_000, 4_000):
        lines[i] = lines[i] + ',"two\nlines",extra'
    data = csv_of(*lines)
    report = report_of(data)
    assert report["rows"]["total"] == 40_000 + 10  # each broken quote's second line is a row
    assert errors(report)["malformed_row"][0] == 20
    assert errors(report)["malformed_row"][1][:2] == [1_002, 1_003]
    assert parsed_bytes[0] < 1.1 * len(data.encode())
    assert report == oracle.analyze(data.encode())

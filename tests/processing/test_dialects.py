"""Real spreadsheet exports: encodings, delimiters and line ends, and how the report names them."""

from __future__ import annotations

import io

import pytest

from processing import EncodingError, MissingColumnsError, analyze, to_text
from tests import oracle
from tests.helpers import HEADER, csv_of, report_of

ROWS = (
    "e1,c1,p1,TREATMENT_COMPLETED,2024-01-03T10:00:00Z,Café crème,12.50",
    'e2,c1,p2,TREATMENT_COMPLETED,2024-01-04,"Root canal, upper",100.25',
    "e3,c1,,APPOINTMENT_SCHEDULED,2024-01-04,,",
)
UTF8 = csv_of(*ROWS)


def dialect(report: dict) -> tuple[str, str, str]:
    found = report["dialect"]
    return found["encoding"], found["delimiter"], found["line_end"]


def same_figures(report: dict, expected: dict) -> bool:
    return {k: v for k, v in report.items() if k != "dialect"} == {
        k: v for k, v in expected.items() if k != "dialect"
    }


@pytest.fixture(scope="module")
def plain() -> dict:
    return report_of(UTF8)


def test_plain_utf8_comma_lf(plain: dict) -> None:
    """The common case: UTF-8, comma, LF."""
    assert dialect(plain) == ("utf-8", ",", "\n")
    assert plain["revenue"] == "112.75"
    assert plain["weeks"][0]["revenue_by_treatment"] == {
        "café crème": "12.50",
        "root canal, upper": "100.25",
    }


@pytest.mark.parametrize(
    ("data", "encoding"),
    [
        (b"\xef\xbb\xbf" + UTF8.encode(), "utf-8-sig"),
        (b"\xff\xfe" + UTF8.encode("utf-16-le"), "utf-16-le"),
        (b"\xfe\xff" + UTF8.encode("utf-16-be"), "utf-16-be"),
        (UTF8.encode("cp1252"), "windows-1252"),
    ],
    ids=["utf-8-bom", "utf-16-le", "utf-16-be", "windows-1252"],
)
def test_encodings(data: bytes, encoding: str, plain: dict) -> None:
    """Excel's UTF-8, Unicode text and Windows CSV all give the same figures."""
    report = report_of(data)
    assert dialect(report)[0] == encoding
    assert same_figures(report, plain)
    assert report == oracle.analyze(data)
    pieces = [data[i : i + 7] for i in range(0, len(data), 7)]
    assert report_of(pieces, block_size=64) == report


def test_windows_1252_undefined_bytes_map_to_c1_controls() -> None:
    """0x81 is undefined in Windows-1252: read as U+0081, as browsers do, not rejected."""
    data = csv_of("e1,c1,p1,TREATMENT_COMPLETED,2024-01-03,caf\xe9\x81,1").encode("latin-1")
    report = report_of(data)
    assert dialect(report)[0] == "windows-1252"
    assert list(report["weeks"][0]["revenue_by_treatment"]) == ["caf\xe9\x81"]


def test_ascii_then_a_windows_1252_byte_after_the_first_block() -> None:
    """Plain ASCII for 1 MiB, then é in Windows-1252: nothing read so far changes meaning."""
    filler = [f"e{i},c1,p1,APPOINTMENT_SCHEDULED,2024-01-01,," for i in range(30_000)]
    data = csv_of(*filler, "e,c,p,TREATMENT_COMPLETED,2024-01-02,caf\xe9,5").encode("cp1252")
    assert len(data) > 1 << 20
    report = report_of(data)
    assert dialect(report)[0] == "windows-1252"
    assert report["rows"]["valid"] == 30_001
    assert report["weeks"][0]["revenue_by_treatment"] == {"café": "5.00"}


def test_utf8_then_not_utf8_is_rejected_with_the_row() -> None:
    """UTF-8 text first, then a byte that is not: what was read could mean something else."""
    filler = [f"e{i},c1,p1,APPOINTMENT_SCHEDULED,2024-01-01,é," for i in range(30_000)]
    data = csv_of(*filler).encode() + b"e,c,p,X,2024-01-02,caf\xe9,5\n"
    with pytest.raises(EncodingError, match="row 30002"):
        analyze(io.BytesIO(data))


@pytest.mark.parametrize("delimiter", [";", "\t", "|"])
def test_other_delimiters(delimiter: str) -> None:
    """Semicolon, tab and pipe files are read by their header."""
    table = [
        HEADER.split(","),
        ["e1", "c1", "p1", "TREATMENT_COMPLETED", "2024-01-03", "cleaning, deep", "12.50"],
        ["e2", "c1", "p2", "X", "2024-01-03", "", ""],
    ]
    quote = '"cleaning, deep"' if delimiter == "," else "cleaning, deep"
    text = "\n".join(
        delimiter.join(quote if f == "cleaning, deep" else f for f in row) for row in table
    )
    report = report_of(text + "\n")
    assert dialect(report) == ("utf-8", delimiter, "\n")
    assert report["revenue"] == "12.50"
    assert report["weeks"][0]["revenue_by_treatment"] == {"cleaning, deep": "12.50"}
    assert report == oracle.analyze((text + "\n").encode())


def test_semicolon_files_take_a_decimal_comma() -> None:
    """'12,50' is 12.50 in a semicolon file; thousands separators are still invalid."""
    text = "\n".join(
        [
            HEADER.replace(",", ";"),
            "e1;c1;p1;TREATMENT_COMPLETED;2024-01-03;x;12,50",
            "e2;c1;p2;TREATMENT_COMPLETED;2024-01-03;x;1.5",
            "e3;c1;p3;TREATMENT_COMPLETED;2024-01-03;x;1.234,00",
            "e4;c1;p4;TREATMENT_COMPLETED;2024-01-03;x;0,125",
        ]
    )
    report = report_of(text)
    assert report["revenue"] == "14.12"  # 12.50 + 1.50 + 0.12 (half to even)
    assert report["errors"]["invalid_revenue"] == {"count": 1, "first_rows": [4]}
    assert report == oracle.analyze(text.encode())


def test_comma_wins_a_tie_and_missing_columns_are_computed_with_comma() -> None:
    """A header that splits both ways is comma-separated; one that splits neither way names
    what a comma split lacks."""
    both = HEADER + ";" + HEADER.replace(",", ";")
    assert dialect(report_of(csv_of("e,c,p,X,2024-01-01,,,", header=both)))[1] == ","
    with pytest.raises(MissingColumnsError, match="event_timestamp"):
        analyze(io.BytesIO(b"event_id;clinic_id;patient_id;event_type\n1;2;3;4\n"))


@pytest.mark.parametrize(("ending", "name"), [("\r\n", "\r\n"), ("\r", "\r")])
def test_line_ends(ending: str, name: str) -> None:
    """CRLF and bare CR (classic Mac Excel) files; row numbers as a spreadsheet shows them."""
    lines = [HEADER, *ROWS, "", "e4,c1,p4,X,yesterday,,"]
    data = ending.join(lines) + ending
    report = report_of(data)
    assert dialect(report) == ("utf-8", ",", name)
    assert report["errors"]["missing_required_field"]["first_rows"] == [4]
    assert report["errors"]["invalid_timestamp"]["first_rows"] == [6]
    assert report == oracle.analyze(data.encode())
    pieces = [data.encode()[i : i + 5] for i in range(0, len(data), 5)]
    assert report_of(pieces, block_size=16) == report


def test_an_lf_in_a_cr_file_is_data() -> None:
    """In a CR file an LF is a character (trimmed like any whitespace), not a new row."""
    data = f"{HEADER}\re1,c1,p1,X,2024-01-03,\n,\re2,c1,p2,X,2024-01-03,,\r"
    report = report_of(data)
    assert report["rows"] == {"total": 2, "valid": 2, "invalid": 0}
    assert report == oracle.analyze(data.encode())


def test_text_output_names_an_unusual_dialect() -> None:
    """Text output says in words how the file was read, when it is not plain UTF-8 comma."""
    semicolons = UTF8.replace(",", ";").replace('"Root canal; upper"', "Root canal")
    report = analyze(io.BytesIO(semicolons.encode("cp1252")))
    assert "File read as Windows-1252, semicolon-separated" in to_text(report, "x.csv", "USD")
    assert "File read as" not in to_text(analyze(io.BytesIO(UTF8.encode())), "x.csv", "USD")

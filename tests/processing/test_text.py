"""Text from files and people, shown on one line without control or bidi characters."""

from __future__ import annotations

import pytest

from processing import analyze, to_text
from processing.text import displayable
from tests.helpers import csv_of


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("root_canal", "root_canal"),
        ("\x1b[31mred\x1b[0m", "[31mred [0m"),
        ("\x1b]0;owned\x07title", "]0;owned title"),
        ("invoice\u202efdp.csv", "invoice fdp.csv"),
        ("a\u2066b\u2069c", "a b c"),
        ("two\nlines\r\tand tabs", "two lines and tabs"),
        ("  padded  ", "padded"),
        ("\x85\u2028\u200f", ""),
    ],
)
def test_displayable_strips_controls_and_bidi(raw: str, shown: str) -> None:
    """Each run of invisible characters becomes one space; the line is trimmed."""
    assert displayable(raw) == shown


def test_displayable_clips_with_an_ellipsis() -> None:
    assert displayable("x" * 50, limit=10) == "x" * 9 + "…"


def test_text_output_never_writes_escape_sequences() -> None:
    """--format text: an ESC or OSC sequence in a treatment type or file name stays inert."""
    data = csv_of("e1,c1,p1,TREATMENT_COMPLETED,2024-01-03,\x1b]0;pwned\x07x\u202e,1")
    report = analyze(iter([data.encode()]))
    text = to_text(report, "evil\x1b[2J\u202e.csv", "USD")
    for invisible in ("\x1b", "\x07", "\u202e"):
        assert invisible not in text
    assert "]0;pwned x" in text


def test_one_vocabulary() -> None:
    """Reason words, treatment names and date ranges, as every surface shows them."""
    from datetime import date

    from processing.words import date_range, reason_words, treatment_name

    assert [reason_words(r) for r in ("malformed_row", "missing_required_field")] == [
        "wrong number of fields",
        "missing value",
    ]
    assert (reason_words("invalid_timestamp"), reason_words("invalid_revenue")) == (
        "bad date",
        "bad amount",
    )
    assert treatment_name("root_canal") == "Root canal"
    assert treatment_name("\x1b[31mx\u202e") == "[31mx"
    assert date_range(date(2024, 1, 1), date(2024, 1, 7)) == "1\u20137 Jan 2024"
    assert date_range(date(2024, 1, 29), date(2024, 2, 4)) == "29 Jan \u2013 4 Feb 2024"
    assert date_range(date(2024, 12, 30), date(2025, 1, 5)) == "30 Dec 2024 \u2013 5 Jan 2025"


def test_the_whitespace_written_out_is_what_isspace_says() -> None:
    """schema.WHITESPACE lists every code point str.strip() removes, and nothing else."""
    from processing.schema import ASCII_WHITESPACE, WHITESPACE

    assert "".join(chr(code) for code in range(0x110000) if chr(code).isspace()) == WHITESPACE
    assert "".join(char for char in WHITESPACE if char.isascii()) == ASCII_WHITESPACE


@pytest.mark.parametrize(
    ("size_bytes", "words"),
    [
        (0, "0 bytes"),
        (1, "1 byte"),
        (1023, "1,023 bytes"),
        (1024, "1 KB"),
        (1536, "1.5 KB"),
        (10_188, "9.9 KB"),  # 9.949 KB
        (10_189, "10 KB"),  # 9.950 KB: the half rounds up, to a whole number
        (1_048_063, "1,023 KB"),
        (1_048_064, "1 MB"),  # 1,023.5 KB would round to 1,024 KB: a MB instead
        (2_359_296, "2.3 MB"),  # 2.25 MB exactly: halves round up
        (12_900_000, "12 MB"),
        (1 << 30, "1,024 MB"),  # the default limit, as MAX_FILE_SIZE_MB sets it
        (5 << 40, "5,242,880 MB"),
    ],
)
def test_a_size_reads_the_same_everywhere(size_bytes: int, words: str) -> None:
    """One rule for sizes (Slack, the console, errors and the page): binary units, MB from
    1 MB on, one decimal under 10."""
    from processing.words import file_size

    assert file_size(size_bytes) == words


def test_a_change_comes_with_the_direction_its_arrow_shows() -> None:
    """Up, down, or none (flat to a tenth, or nothing to compare): what a surface colours by."""
    from processing.words import change_words, direction

    changes = ["12.5", "-28.8", "0.0", "-0.0", None]
    assert [change_words(pct) for pct in changes] == ["▲ 12.5%", "▼ 28.8%", "0.0%", "0.0%", ""]
    assert [direction(pct) for pct in changes] == ["up", "down", None, None, None]

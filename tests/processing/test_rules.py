"""Every line of the CSV contract, one small inline CSV each."""

from __future__ import annotations

import gzip
import io
import itertools

import pytest

from processing import (
    AnalysisCancelledError,
    EncodingError,
    HeaderMissingError,
    MissingColumnsError,
    NoRowsError,
    NotCsvError,
    Progress,
    analyze,
)
from processing.errors import looks_like_a_name
from tests.helpers import HEADER, csv_of, report_of

OK = "e1,c1,p1,APPOINTMENT_SCHEDULED,2024-01-03T10:00:00Z,,"


def errors(report: dict) -> dict[str, tuple[int, list[int]]]:
    return {reason: (v["count"], v["first_rows"]) for reason, v in report["errors"].items()}


def test_bom_crlf_and_quoting() -> None:
    """A BOM is ignored; CRLF works; quoted fields hold commas, doubled quotes and newlines."""
    text = (
        "\ufeff" + HEADER + "\r\n"
        'e1,c1,p1,TREATMENT_COMPLETED,2024-01-03T10:00:00Z,"implants, upper","12.50"\r\n'
        '"e""2","c\n1",p1,TREATMENT_COMPLETED,2024-01-04,implants,1\r\n'
    )
    report = report_of(text)
    assert report["rows"] == {"total": 2, "valid": 2, "invalid": 0}
    assert report["weeks"][0]["revenue_by_treatment"] == {
        "implants": "1.00",
        "implants, upper": "12.50",
    }


def test_header_is_trimmed_case_insensitive_any_order_extra_columns_ignored() -> None:
    """Header names are trimmed and matched case-insensitively; order is free; extras ignored."""
    header = " Notes , EVENT_TIMESTAMP,Revenue_Amount,event_type , patient_id,clinic_id,Event_ID,Treatment_Type"
    row = '"hello, world",2024-01-03,5.00,TREATMENT_COMPLETED,p,c,e,Cleaning'
    report = report_of(csv_of(row, header=header))
    assert report["revenue"] == "5.00"
    assert report["weeks"][0]["revenue_by_treatment"] == {"cleaning": "5.00"}


def test_missing_columns_are_all_named() -> None:
    """A header without required columns rejects the file and names every one missing."""
    with pytest.raises(MissingColumnsError) as caught:
        analyze(io.BytesIO(b"event_id,clinic_id,event_type\ne,c,X\n"))
    assert caught.value.columns == ("patient_id", "event_timestamp")
    assert "lacks patient_id and event_timestamp;" in str(caught.value)


@pytest.mark.parametrize(
    "content", [b"", b"\n\n  \n", HEADER.encode() + b"\n", HEADER.encode() + b"\n\n   \n\r\n"]
)
def test_no_rows_is_an_error(content: bytes) -> None:
    """An empty file, blank lines only, or a header without rows is rejected."""
    with pytest.raises(NoRowsError, match="nothing to report"):
        analyze(io.BytesIO(content))


def test_blank_lines_are_skipped_but_occupy_a_row() -> None:
    """Blank lines do not count as rows, yet the spreadsheet row numbers include them."""
    text = (
        "\n".join(
            [
                "",  # row 1: blank before the header
                HEADER,  # row 2
                OK,  # row 3
                "",  # row 4
                "   \t",  # row 5
                '"multi',  # row 6, a quoted newline does not start a row
                'line",c,,X,2024-01-01,,',
                "\r",  # row 7: an empty CRLF line
                "e,c,p,X,not-a-date,,",  # row 8
            ]
        )
        + "\n"
    )
    report = report_of(text)
    assert report["rows"] == {"total": 3, "valid": 1, "invalid": 2}
    assert errors(report)["missing_required_field"] == (1, [6])
    assert errors(report)["invalid_timestamp"] == (1, [8])


def test_all_empty_fields_is_a_row_not_a_blank_line() -> None:
    """A record of empty fields (",,,") is a row missing its required values."""
    report = report_of(csv_of(OK, ",,,,,,", OK))
    assert errors(report)["missing_required_field"] == (1, [3])
    assert report["rows"]["total"] == 3


def test_a_utf8_file_with_a_bad_byte_later_names_the_row() -> None:
    """UTF-8 text (é) in the first block, then a byte that is not UTF-8: rejected with its row."""
    filler = [f"e{i},c1,p1,X,2024-01-01,é,1" for i in range(40_000)]  # past the first 1 MiB
    data = csv_of(*filler).encode() + b"e,c,p,X,2024-01-01,caf\xe9,\n"
    assert len(data) > 1 << 20
    with pytest.raises(EncodingError, match="row 40002 is not valid UTF-8") as caught:
        analyze(io.BytesIO(data))
    assert "CSV UTF-8" in str(caught.value)


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (gzip.compress(csv_of(OK).encode()), "gzip"),
        (b"PK\x03\x04\x14\x00\x06\x00" + b"\x00" * 64, "Excel"),
        (b"\x00\x01\x02binary\x00", "binary"),
    ],
)
def test_binary_files_are_rejected(data: bytes, kind: str) -> None:
    """gzip, xlsx and other binary data are not mistaken for CSV."""
    with pytest.raises(NotCsvError, match=kind):
        analyze(io.BytesIO(data))


def test_reasons_apply_in_order_and_once() -> None:
    """A row counts once, under the first reason that applies."""
    report = report_of(
        csv_of(
            "e,c,p,X,bad-date,,abc,extra",  # malformed beats everything
            "e,c,,X,bad-date,,abc",  # missing beats timestamp and revenue
            "e,c,p,X,bad-date,,abc",  # timestamp beats revenue
            "e,c,p,X,2024-01-01,,abc",
        )
    )
    assert errors(report) == {
        "malformed_row": (1, [2]),
        "missing_required_field": (1, [3]),
        "invalid_timestamp": (1, [4]),
        "invalid_revenue": (1, [5]),
    }
    assert report["rows"] == {"total": 4, "valid": 0, "invalid": 4}
    assert report["weeks"] == []


def test_whitespace_only_required_value_is_missing() -> None:
    """Values are trimmed before the emptiness check."""
    report = report_of(csv_of("e, \t ,p,X,2024-01-01,,", " e , c , p , x , 2024-01-01 ,,"))
    assert errors(report)["missing_required_field"] == (1, [2])
    assert report["weeks"][0]["events_by_type"] == {"X": 1}


VALID_TIMESTAMPS = [
    ("2024-01-03", "2024-01-01"),
    ("2024-01-03T10:00", "2024-01-01"),
    ("2024-01-03t10:00:59", "2024-01-01"),
    ("2024-01-03 23:59:59.123456789", "2024-01-01"),
    ("2024-01-07T23:30:00Z", "2024-01-01"),
    ("2024-01-07T23:30:00z", "2024-01-01"),
    ("2024-01-08T01:00:00+02:00", "2024-01-01"),  # Sunday 23:00 UTC
    ("2024-01-07T23:00:00-0200", "2024-01-08"),  # Monday 01:00 UTC
    ("2024-01-07T22:30-01:30", "2024-01-08"),
    ("2024-02-29", "2024-02-26"),
    ("2000-02-29T00:00:00.5Z", "2000-02-28"),
    (" 2024-01-03 ", "2024-01-01"),
]


@pytest.mark.parametrize(("timestamp", "monday"), VALID_TIMESTAMPS)
def test_valid_timestamps(timestamp: str, monday: str) -> None:
    """Every form of the grammar is accepted and lands in its Monday-to-Sunday week."""
    report = report_of(csv_of(f"e,c,p,X,{timestamp},,"))
    assert report["rows"]["valid"] == 1
    assert report["weeks"][0]["week_start"] == monday


INVALID_TIMESTAMPS = [
    "20240101T100000Z",
    "2024-01-01T10:00+02",
    "2024-01-01T10:00:00,5",
    "2024-W01-1",
    "2024-13-01",
    "2024-02-30",
    "2023-02-29",
    "1900-02-29",
    "2024-01-01T24:00",
    "2024-01-01T25:00",
    "2024-01-01T10:60",
    "2024-01-01T10:00:60",
    "2024-01-01T10:00 Z",
    "2024-01-01T10:00:00 +02:00",
    "2024-01-01T10",
    "2024-1-01",
    "24-01-01",
    "2024-01-01T10:00.5",
    "2024-01-01T10:00:00.",
    "2024-01-01T10:00:00.1234567890",
    "2024-01-01Z",
    "0000-01-01",
    "2024-01-01T10:00:00+24:00",
    "2024-01-01T10:00:00+02:60",
    "2024-01-01  10:00",
    "2024/01/01",
    "yesterday",
    "2024-01-01T1O:00",
    "２０２４-01-01",
]


@pytest.mark.parametrize("timestamp", INVALID_TIMESTAMPS)
def test_invalid_timestamps(timestamp: str) -> None:
    """Anything off the grammar, or out of range, is invalid_timestamp."""
    report = report_of(csv_of(OK, f'e,c,p,X,"{timestamp}",,'))
    assert errors(report)["invalid_timestamp"] == (1, [3])


@pytest.mark.parametrize(
    ("amount", "cents"),
    [
        ("528.20", 52820),
        ("+5", 500),
        ("007.50", 750),
        ("0", 0),
        ("0.125", 12),
        ("0.135", 14),
        ("1.005", 100),
        ("2.675", 268),
        ("0.0050000001", 1),
        ("12345678901234.565", 1234567890123456),
        ("99999999999999999999.99", 9999999999999999999999),
    ],
)
def test_revenue_is_exact_cents_half_even(amount: str, cents: int) -> None:
    """Amounts are summed as integer cents, more than two decimals round half to even."""
    report = report_of(csv_of(f"e,c,p,TREATMENT_COMPLETED,2024-01-01,x,{amount}"))
    whole, part = divmod(cents, 100)
    assert report["revenue"] == f"{whole}.{part:02d}"


@pytest.mark.parametrize(
    "amount",
    ["-5", "-0", ".5", "5.", "abc", "NaN", "inf", "1e3", "1,234.00", "$100", "1.2.3", "+", "٣"],
)
def test_invalid_revenue(amount: str) -> None:
    """Amounts off +?[0-9]+(.[0-9]+)? are invalid_revenue."""
    report = report_of(csv_of(OK, f'e,c,p,TREATMENT_COMPLETED,2024-01-01,x,"{amount}"'))
    assert errors(report)["invalid_revenue"] == (1, [3])


def test_revenue_counts_only_on_treatment_completed() -> None:
    """Revenue elsewhere is validated, not added, and counted as a warning."""
    report = report_of(
        csv_of(
            "e,c,p,TREATMENT_COMPLETED,2024-01-01,x,10",
            "e,c,p,INVOICE_SENT,2024-01-01,x,0",
            "e,c,p,INVOICE_SENT,2024-01-01,x,99.99",
            "e,c,p,INVOICE_SENT,2024-01-01,x,-1",
        )
    )
    assert report["revenue"] == "10.00"
    assert report["warnings"] == {"revenue_on_other_event": 2}
    assert errors(report)["invalid_revenue"] == (1, [5])


def test_event_and_treatment_types_are_normalised() -> None:
    """event_type is trimmed and upper-cased; treatment_type lower-cased, empty is unknown."""
    report = report_of(
        csv_of(
            "e,c,p, treatment_completed ,2024-01-01, Implants ,1",
            "e,c,p,Treatment_Completed,2024-01-01,,2",
            "e,c,p,TREATMENT_COMPLETED,2024-01-01,  ,",
        )
    )
    week = report["weeks"][0]
    assert week["events_by_type"] == {"TREATMENT_COMPLETED": 3}
    assert week["revenue_by_treatment"] == {"implants": "1.00", "unknown": "2.00"}
    assert week["treatments_completed"] == 3


def test_optional_columns_may_be_absent() -> None:
    """Without revenue_amount and treatment_type, treatments are unknown with no revenue."""
    header = "event_id,clinic_id,patient_id,event_type,event_timestamp"
    report = report_of(csv_of("e,c,p,TREATMENT_COMPLETED,2024-01-01", header=header))
    assert report["weeks"][0]["revenue_by_treatment"] == {"unknown": "0.00"}


def test_week_metrics_and_gaps() -> None:
    """Appointments, bookings and per-type counts per week; empty weeks between are listed."""
    report = report_of(
        csv_of(
            "e,c,p,APPOINTMENT_SCHEDULED,2024-01-01,,",
            "e,c,p,ONLINE_BOOKING_CREATED,2024-01-02,,",
            "e,c,p,TREATMENT_BOOKED,2024-01-03,,",
            "e,c,p,APPOINTMENT_BOOKED,2024-01-04,,",
            "e,c,p,TREATMENT_COMPLETED,2024-01-22,whitening,0",
        )
    )
    weeks = report["weeks"]
    assert [week["week_start"] for week in weeks] == [
        "2024-01-01",
        "2024-01-08",
        "2024-01-15",
        "2024-01-22",
    ]
    assert (weeks[0]["appointments"], weeks[0]["bookings"]) == (2, 3)
    assert weeks[1] == {
        "week_start": "2024-01-08",
        "week_end": "2024-01-14",
        "revenue": "0.00",
        "change_pct": None,
        "average_4w_revenue": None,
        "revenue_by_treatment": {},
        "treatments_completed": 0,
        "appointments": 0,
        "bookings": 0,
        "events_by_type": {},
        "days_covered": 7,
        "status": "empty",
        "appointment_outcomes": {
            "scheduled": 0,
            "completed": 0,
            "cancelled": 0,
            "no_show": 0,
            "rescheduled": 0,
        },
        "cancellation_rate": None,
        "no_show_rate": None,
        "new_patients": 0,
    }
    assert weeks[3]["revenue_by_treatment"] == {"whitening": "0.00"}


def test_report_timezone_moves_week_boundaries() -> None:
    """Weeks start Monday 00:00 in the report timezone; offsets are honoured."""
    rows = csv_of("e,c,p,X,2024-01-07T23:30:00Z,,", "e,c,p,X,2024-01-08T00:30:00,,")
    berlin = report_of(rows, timezone="Europe/Berlin")
    assert [(w["week_start"], sum(w["events_by_type"].values())) for w in berlin["weeks"]] == [
        ("2024-01-08", 2)
    ]
    new_york = report_of(rows, timezone="America/New_York")
    assert [w["week_start"] for w in new_york["weeks"]] == ["2024-01-01", "2024-01-08"]


def test_only_first_twenty_rows_are_kept() -> None:
    """Each reason keeps its count and the first 20 row numbers."""
    report = report_of(csv_of(*["e,c,p,X,never,,"] * 25))
    assert errors(report)["invalid_timestamp"] == (25, list(range(2, 22)))


def test_progress_snapshots_and_cancel() -> None:
    """The callback sees growing snapshots; a cancel stops the analysis."""
    data = csv_of(*[OK] * 2000).encode()
    seen: list[Progress] = []
    # Blocks parsed while the analysis works come together, up to 4 at a time.
    analyze(io.BytesIO(data), on_progress=seen.append, block_size=1024)
    assert len(seen) > 10
    assert seen[-1].rows_total == 2000
    assert seen[-1].bytes_read == len(data)
    assert all(a.rows_total <= b.rows_total for a, b in itertools.pairwise(seen))
    with pytest.raises(AnalysisCancelledError):
        analyze(io.BytesIO(data), cancelled=lambda: True, block_size=4096)


def test_an_unclosed_quote_on_the_last_row_is_malformed_with_its_row_number() -> None:
    """The quote runs to the end of the file; the row is counted and cited, like any other."""
    for ending in ("\n", ""):
        data = (
            csv_of(
                "E1,C1,P1,APPOINTMENT_SCHEDULED,2024-01-01T10:00:00Z,,",
                'E2,C1,"P2,APPOINTMENT_SCHEDULED,2024-01-01T10:00:00Z,,',
            ).rstrip("\n")
            + ending
        )
        report = report_of(data)
        assert report["rows"] == {"total": 2, "valid": 1, "invalid": 1}
        assert report["errors"]["malformed_row"] == {"count": 1, "first_rows": [3]}


def test_missing_columns_name_the_near_matches_and_what_was_found() -> None:
    """A renamed or re-cased column is pointed at; unrelated names are not; values never."""
    data = b"event_id,clinic_id,PATIENT ID,Event-Type,when,notes\n1,2,SECRET-PATIENT,4,5,6\n"
    with pytest.raises(MissingColumnsError) as caught:
        analyze(io.BytesIO(data))
    assert str(caught.value) == (
        'the header lacks patient_id (found "PATIENT ID"? rename it), event_type (found '
        '"Event-Type"? rename it) and event_timestamp; columns found: event_id, clinic_id, '
        "PATIENT ID, Event-Type, when, notes"
    )
    assert caught.value.near == {
        "patient_id": "PATIENT ID",
        "event_type": "Event-Type",
        "event_timestamp": None,
    }
    assert "SECRET" not in str(caught.value)


HEADERLESS_ROW = (
    "d23f0824-1b2c-4d5e-8f90-5a1c2e3b4d6f,CL-035,P-1579240,TREATMENT_COMPLETED,"
    '2024-01-03T10:00:00Z,150.00,root_canal,"Mrs Jones, allergic to latex"'
)


def test_a_file_without_its_header_row_is_told_so_and_shows_none_of_the_row() -> None:
    """A headerless export is named as such; not one of its first row's cells is in the
    message or kept on the error."""
    data = (HEADERLESS_ROW + "\n" + HEADERLESS_ROW.replace("CL-035", "CL-036") + "\n").encode()
    with pytest.raises(HeaderMissingError) as caught:
        analyze(io.BytesIO(data))
    assert str(caught.value) == (
        "the first line does not look like a header: none of event_id, clinic_id, patient_id, "
        "event_type, event_timestamp, and no near match. Is the header row missing?"
    )
    assert caught.value.found == ()
    assert caught.value.columns == (
        "event_id",
        "clinic_id",
        "patient_id",
        "event_type",
        "event_timestamp",
    )
    for cell in HEADERLESS_ROW.split(","):
        assert cell.strip('"') not in repr(vars(caught.value)) + str(caught.value)


@pytest.mark.parametrize("delimiter", [";", "\t", "|"])
def test_a_headerless_file_in_another_dialect_is_told_so_too(delimiter: str) -> None:
    """Whatever the delimiter, a data row is not taken for a header of odd names."""
    row = HEADERLESS_ROW.replace(',"Mrs Jones, allergic to latex"', "").replace(",", delimiter)
    with pytest.raises(HeaderMissingError):
        analyze(io.BytesIO((row + "\n").encode()))


def test_only_names_shaped_like_column_names_are_shown() -> None:
    """A header that is one: its names are shown, cells that look like values are counted."""
    data = b"event_id,clinic_id,P-1579240,2024-01-03,Patient said it hurt a lot today,amount\n"
    with pytest.raises(MissingColumnsError) as caught:
        analyze(io.BytesIO(data))
    message = str(caught.value)
    assert message == (
        "the header lacks patient_id, event_type and event_timestamp; columns found: "
        "event_id, clinic_id, amount (3 more not shown: they look like values, not column "
        "names)"
    )
    assert caught.value.found == ("event_id", "clinic_id", "amount")
    assert caught.value.hidden == 3


def test_a_semicolon_header_is_read_by_its_semicolons_when_told_what_lacks() -> None:
    """The names are split by the delimiter that explains most of them."""
    with pytest.raises(MissingColumnsError) as caught:
        analyze(io.BytesIO(b"event_id;clinic_id;patient;when\n1;2;3;4\n"))
    assert str(caught.value) == (
        'the header lacks patient_id (found "patient"? rename it), event_type and '
        "event_timestamp; columns found: event_id, clinic_id, patient, when"
    )


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("event_id", True),
        ("Event Time Stamp (UTC)", True),
        ("Behandlungsdatum", True),
        ("col #2", True),
        ("address2", True),
        ("P-1579240", False),  # a run of digits: ids, dates, amounts
        ("d23f0824-1b2c", False),
        ("150.00", False),
        ("12", False),  # no letter
        ("Mrs Jones, allergic", False),  # punctuation of prose
        ("follow up in two weeks", False),  # more than four words
        ("jane@example.org", False),
        ("x" * 65, False),
        ("", False),
    ],
)
def test_what_looks_like_a_column_name(name: str, shown: bool) -> None:
    """The rule that decides which header cells may be shown."""
    assert looks_like_a_name(name) is shown


def test_a_data_row_whose_cells_resemble_column_names_is_still_no_header() -> None:
    """ "Clinic A" and "Patient Jones" look like clinic_id and patient_id, but beside an id,
    a timestamp and an amount the line is a data row: nothing of it is shown."""
    row = (
        "d23f0824-1b2c-4d5e-8f90-5a1c2e3b4d6f,Clinic A,P-1579240,TREATMENT_COMPLETED,"
        "2024-01-03T10:00:00Z,150.00,root_canal,Patient Jones\n"
    )
    with pytest.raises(HeaderMissingError) as caught:
        analyze(io.BytesIO(row.encode()))
    assert str(caught.value) == (
        "the first line does not look like a header: none of event_id, clinic_id, patient_id, "
        "event_type, event_timestamp, and it holds values (ids, dates, amounts). Is the header "
        "row missing?"
    )
    for cell in ("Clinic A", "Patient Jones", "root_canal", "P-1579240"):
        assert cell not in str(caught.value) + repr(vars(caught.value))


def test_a_first_line_with_nothing_of_ours_shows_nothing_of_itself() -> None:
    """Names only, but none required and none close (another export's header, or another
    export's data row: "Mary Jones,Cardiology,Dr Smith"): nothing of the line is shown."""
    for first_line in (
        b"date,amount\n2024-01-02,10.00\n",
        b"Mary Jones,Cardiology,Dr Smith\n",
        "Zoë Müller;Room 12;Dr Smith\n".encode(),
    ):
        with pytest.raises(HeaderMissingError) as caught:
            analyze(io.BytesIO(first_line))
        assert str(caught.value).endswith("and no near match. Is the header row missing?")
        for cell in first_line.decode().replace("\n", ",").split(","):
            assert not cell or cell not in str(caught.value)


def test_a_renamed_header_of_ours_shows_its_names() -> None:
    """Every cell a name, some close to the required columns: a header, renamed; the names
    are offered."""
    with pytest.raises(MissingColumnsError) as caught:
        analyze(io.BytesIO(b"EventID,ClinicID,Patient,Type,When\n"))
    assert not isinstance(caught.value, HeaderMissingError)
    assert str(caught.value).endswith("columns found: EventID, ClinicID, Patient, Type, When")


def test_cells_that_resemble_column_names_never_make_a_data_row_a_header() -> None:
    """Names only, some close to required columns ("Clinic A", "Patient Jones", even
    "Event Type"), but fewer than two of ours renamed: nothing of the line is shown."""
    line = b"Clinic A,Patient Jones,Event Type,Dr Smith\n"
    with pytest.raises(HeaderMissingError) as caught:
        analyze(io.BytesIO(line))
    assert str(caught.value).endswith("and no column named so. Is the header row missing?")
    for cell in ("Clinic A", "Patient Jones", "Dr Smith"):
        assert cell not in str(caught.value) + repr(vars(caught.value))

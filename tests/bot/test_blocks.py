"""Slack messages of a job: what people read, inside every Block Kit limit."""

from __future__ import annotations

import json
from datetime import date, timedelta
from functools import partial
from pathlib import Path

import pytest
from slack_sdk.models.blocks import Block

from bot.slack.blocks import (
    MAX_BLOCKS_JSON_CHARS,
    MAX_SUMMARY_MESSAGES,
    WEEKS_SHOWN,
    Message,
    done_message,
    failed_message,
    failed_outcome_message,
    outcome_message,
    outside_text,
    progress_message,
    start_message,
    summary_messages,
    waiting_message,
)
from processing import ClinicStats, Progress, WeeklyReport, WeekStats, analyze, to_text
from processing.insights import (
    clinic_movers,
    complete_week,
    period_totals,
    with_changes,
)
from processing.insights import headline as headline_of
from processing.percent import percent_change
from processing.words import display_words, week_range
from tests import generate
from tests.helpers import HEADER, ROOT, csv_of

SAMPLE = ROOT / "samples" / "events-sample.csv"


def assert_within_slack_limits(message: Message) -> None:
    """Slack's documented limits, written out here rather than taken from bot.slack.blocks."""
    text, blocks = message["text"], message["blocks"]
    if "fallback" in message:
        assert_within_slack_limits(message["fallback"])
        assert all(block["type"] != "table" for block in message["fallback"]["blocks"])
    assert 0 < len(text) <= 4000
    assert 0 < len(blocks) <= 50
    assert len(json.dumps(blocks, ensure_ascii=False)) <= MAX_BLOCKS_JSON_CHARS
    block_ids = [block["block_id"] for block in blocks if "block_id" in block]
    assert len(block_ids) == len(set(block_ids))
    assert sum(block["type"] == "table" for block in blocks) <= 1
    for block in blocks:
        kind = block["type"]
        if kind == "header":
            assert block["text"]["type"] == "plain_text"
            assert 0 < len(block["text"]["text"]) <= 150
        elif kind == "section":
            assert "text" in block or "fields" in block
            if "text" in block:
                assert 0 < len(block["text"]["text"]) <= 3000
            fields = block.get("fields", [])
            assert len(fields) <= 10
            assert all(0 < len(field["text"]) <= 2000 for field in fields)
        elif kind == "context":
            assert 0 < len(block["elements"]) <= 10
            assert all(0 < len(element["text"]) <= 3000 for element in block["elements"])
        elif kind == "table":
            assert 0 < len(block["rows"]) <= 100
            for row in block["rows"]:
                assert 0 < len(row) <= 20
                assert all(cell["type"] == "raw_text" and cell["text"] for cell in row)
            assert len(block["column_settings"]) <= 20
        else:
            assert kind == "divider"
        parsed = Block.parse(block)
        assert parsed is not None
        parsed.validate_json()  # slack_sdk's own checks, e.g. block_id length


def analyzed(csv_text: str, *, timezone: str = "UTC") -> WeeklyReport:
    return analyze(iter([csv_text.encode()]), timezone=timezone)


def weekly_csv(weeks: int, *, start: date = date(2024, 1, 1)) -> str:
    """Each week: three treatments (implants > filling > cleaning), an appointment, a booking."""
    rows = []
    for index in range(weeks):
        day = start + timedelta(weeks=index)
        rows += [
            f"t{index}a,c1,p{index},TREATMENT_COMPLETED,{day}T09:00:00Z,cleaning,{100 + index}.00",
            f"t{index}b,c1,p{index},TREATMENT_COMPLETED,{day}T10:00:00Z,implants,2400.50",
            f"t{index}c,c1,p{index},TREATMENT_COMPLETED,{day}T11:00:00Z,filling,180.25",
            f"a{index},c1,p{index},APPOINTMENT_SCHEDULED,{day}T12:00:00Z,,",
            f"b{index},c1,p{index},ONLINE_BOOKING_CREATED,{day}T13:00:00Z,,",
        ]
    return csv_of(*rows)


def all_blocks(messages: list[Message]) -> list[dict]:
    return [block for message in messages for block in message["blocks"]]


def texts(message: Message) -> list[str]:
    """Every piece of mrkdwn or plain text in the message, in order."""
    found = []
    for block in message["blocks"]:
        if "text" in block:
            found.append(block["text"]["text"])
        found += [field["text"] for field in block.get("fields", [])]
        found += [element["text"] for element in block.get("elements", [])]
    return found


def table_rows(message: Message) -> list[list[str]]:
    [table] = [block for block in message["blocks"] if block["type"] == "table"]
    return [[cell["text"] for cell in row] for row in table["rows"]]


@pytest.fixture(scope="module")
def sample_report() -> WeeklyReport:
    with SAMPLE.open("rb") as stream:
        return analyze(stream)


@pytest.fixture(scope="module")
def year_report(tmp_path_factory: pytest.TempPathFactory) -> WeeklyReport:
    """A realistic 53-week export from tests/generate.py, invalid rows included."""
    path: Path = tmp_path_factory.mktemp("bench") / "events.csv"
    generate.write_events(path, rows=5_000)
    with path.open("rb") as stream:
        return analyze(stream)


def test_the_summary_is_the_headline_then_the_weeks(sample_report: WeeklyReport) -> None:
    """Two messages: the headline, led by the total, then the weeks in a table."""
    headline, weeks = summary_messages(sample_report, file_name="events.csv", currency="USD")
    for message in (headline, weeks):
        assert_within_slack_limits(message)
    assert headline["blocks"][0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": "Weekly report: events.csv"},
    }
    assert texts(headline)[1].startswith("*Total revenue: $305,272.95*")
    assert table_rows(weeks)[0] == [
        "Week", "Revenue", "Change", "Treatments", "Appointments", "Cancelled", "Status",
    ]  # fmt: skip


def test_the_headline_says_how_the_latest_complete_week_went(sample_report: WeeklyReport) -> None:
    """The latest complete week against the one before and the 4-week average; best and
    worst week; one data-quality line; that week's appointments; clinics up and down;
    the period's treatment types in one fixed order."""
    [headline, _] = summary_messages(sample_report, file_name="events.csv", currency="USD")
    text = texts(headline)
    assert (
        text[1]
        == "*Total revenue: $305,272.95*\n53 weeks, 1 Jan 2024 – 5 Jan 2025 · 3,000 rows read"
    )
    assert text[2] == (
        "*Latest complete week, 23–29 Dec 2024: $6,765.23*\n"
        "▼ 28.8% vs 16–22 Dec 2024 ($9,498.64) · 4-week average $8,175.68\n"
        "Best week 18–24 Mar 2024 ($14,755.59) · worst week 20–26 May 2024 ($1,324.62)"
    )
    assert text[3] == (
        "*Appointments, 23–29 Dec 2024:* 15 completed · 3 cancelled (16.7%) · 0 no-shows (0.0%)"
    )
    assert text[4] == "⚠ 10 rows (0.3%) left out · last week partial, 1 of 7 days"
    assert text[5] == "*Clinics*, 23–29 Dec 2024 vs 16–22 Dec 2024"
    assert text[6] == "*Up most*\nCL-025 ▲ 799.6%\nCL-017 ▲ 9.3%\nCL-019 ▲ 3.0%"
    assert text[7].startswith("*Down most*\nCL-006 ▼ 100.0%\n")
    assert text[8].splitlines()[:3] == [
        "*Revenue by treatment type*, whole period",
        "Implants  $95,945.05 · 31.4%",
        "Orthodontics  $71,947.87 · 23.6%",
    ]
    assert text[9] == (
        "*Invalid rows* (left out of every figure; invalid-rows.csv below lists each)\n"
        "• wrong number of fields: 3 (rows 1827, 2483, 2726)\n"
        "• bad date: 3 (rows 294, 988, 1733)\n"
        "• bad amount: 4 (rows 515, 637, 1688, 2854)"
    )
    assert headline["text"] == (
        "Weekly report for events.csv: $305,272.95 revenue; latest complete week $6,765.23 (▼ 28.8%)"
    )


# Headlines with no change to show, and the one sentence that says why on every surface.
NO_CHANGE = {
    "no complete week": (
        csv_of(
            "e1,c1,p1,TREATMENT_COMPLETED,2024-01-02T10:00:00Z,x,10.00",
            "e2,c1,p1,TREATMENT_COMPLETED,2024-01-09T10:00:00Z,x,10.00",
        ),
        "no week has data on all seven days",
    ),
    "no earlier complete week": (
        csv_of(
            "e1,c1,p1,TREATMENT_COMPLETED,2024-01-01T10:00:00Z,x,10.00",
            "e2,c1,p1,TREATMENT_COMPLETED,2024-01-07T10:00:00Z,x,20.00",
        ),
        "no earlier complete week to compare",
    ),
    "no revenue the week before": (
        csv_of(
            "e1,c1,p1,APPOINTMENT_SCHEDULED,2024-01-01T10:00:00Z,,",
            "e2,c1,p1,TREATMENT_COMPLETED,2024-01-14T10:00:00Z,x,20.00",
        ),
        "no revenue in 1–7 Jan 2024 to compare",
    ),
}


@pytest.mark.parametrize("case", NO_CHANGE)
def test_a_headline_without_a_change_says_why_in_one_sentence_everywhere(case: str) -> None:
    """Slack, the text report and the page's words say alike why there is no change, and
    colour nothing."""
    data, why = NO_CHANGE[case]
    report = analyzed(data)
    [headline, _] = summary_messages(report, file_name="f.csv", currency="USD")
    slack = "\n".join(texts(headline))
    text = to_text(report, "f.csv", "USD")
    display = display_words(report, source_name="f.csv", currency="USD")

    assert why in slack
    assert why in text
    assert display["comparison"] == {"words": why, "direction": None}


def test_the_latest_week_and_its_change_read_alike_in_slack_and_text(
    sample_report: WeeklyReport,
) -> None:
    """The sample's change, best and worst weeks and appointments: Slack adds the amounts,
    the words are the text report's and the page's."""
    [headline, _] = summary_messages(sample_report, file_name="f.csv", currency="USD")
    slack = "\n".join(texts(headline))
    text = to_text(sample_report, "f.csv", "USD")
    display = display_words(sample_report, source_name="f.csv", currency="USD")

    assert display["comparison"] == {"words": "▼ 28.8% vs 16–22 Dec 2024", "direction": "down"}
    assert "▼ 28.8% vs 16–22 Dec 2024 ($9,498.64)" in slack
    assert "▼ 28.8% vs 16–22 Dec 2024, 4-week average" in text
    assert display["best_worst"] == "Best week 18–24 Mar 2024 · worst week 20–26 May 2024"
    assert display["best_worst"] in text
    assert display["appointments"] in text
    assert "*" + display["appointments"].replace(":", ":*", 1) in slack
    assert display["weeks_period"] in slack


def test_three_clinics_up_and_three_down_on_every_surface(sample_report: WeeklyReport) -> None:
    """The report keeps five each way; Slack, the text report and the page name three."""
    assert len(sample_report.movers.down) == 5
    [headline, _] = summary_messages(sample_report, file_name="f.csv", currency="USD")
    [fields] = [block["fields"] for block in headline["blocks"] if "fields" in block]
    text = to_text(sample_report, "f.csv", "USD")
    display = display_words(sample_report, source_name="f.csv", currency="USD")
    down = ["CL-006 ▼ 100.0%", "CL-007 ▼ 100.0%", "CL-008 ▼ 100.0%"]

    assert fields[1]["text"].splitlines() == ["*Down most*", *down]
    assert f"  Down most: {', '.join(down)}" in text.splitlines()
    assert display["movers"][1] == f"Down most: {', '.join(down)}"
    assert "CL-011" not in text


def test_the_weeks_come_newest_first_and_the_csv_has_the_rest() -> None:
    """60 weeks: the newest 26 in the table, newest first, and a note that the CSV has all."""
    report = analyzed(weekly_csv(60))
    [_, weeks] = summary_messages(report, file_name="f.csv", currency="USD")
    rows = table_rows(weeks)[1:]
    assert len(rows) == WEEKS_SHOWN == 26
    newest = report.weeks[::-1][:26]
    assert [row[0] for row in rows] == [week_range(week.week_start) for week in newest]
    # The newest week has data on its Monday only: cut short, so no change is claimed.
    assert rows[0] == ["17–23 Feb 2025", "$2,739.75", "–", "3", "1", "–", "partial, 1 of 7 days"]
    assert rows[1] == ["10–16 Feb 2025", "$2,738.75", "0.0%", "3", "1", "–", "complete"]
    assert "Newest 26 of 60 weeks; weekly-report.csv below has all of them" in texts(weeks)[-1]


def test_a_week_cut_short_or_without_data_says_so_and_has_no_change() -> None:
    """Status words instead of a change that would read as a collapse."""
    report = analyzed(
        csv_of(
            "e1,c1,p1,TREATMENT_COMPLETED,2024-01-03T10:00:00Z,x,10.00",
            "e2,c1,p1,TREATMENT_COMPLETED,2024-01-22T10:00:00Z,x,10.00",
        )
    )
    [_, weeks] = summary_messages(report, file_name="f.csv", currency="USD")
    assert table_rows(weeks)[1:] == [
        ["22–28 Jan 2024", "$10.00", "–", "1", "0", "–", "partial, 1 of 7 days"],
        ["15–21 Jan 2024", "$0.00", "–", "0", "0", "–", "no data"],
        ["8–14 Jan 2024", "$0.00", "–", "0", "0", "–", "no data"],
        ["1–7 Jan 2024", "$10.00", "–", "1", "0", "–", "partial, 5 of 7 days"],
    ]
    [headline, _] = summary_messages(report, file_name="f.csv", currency="USD")
    assert (
        "⚠ no data 8–21 Jan 2024 · first week partial, 5 of 7 days · last week partial, 1 of 7 days"
        in texts(headline)
    )
    assert "*No complete week yet:*" in texts(headline)[2]


def test_the_weeks_fall_back_to_text_with_the_same_weeks(sample_report: WeeklyReport) -> None:
    """Where Slack refuses the table, section text carries the same weeks in the same order."""
    [_, weeks] = summary_messages(sample_report, file_name="f.csv", currency="USD")
    fallback = weeks["fallback"]
    lines = [line for text in texts(fallback) for line in text.splitlines()]
    week_lines = [line for line in lines if line.startswith("*") and "  $" in line]
    assert [line.split("*")[1] for line in week_lines] == [row[0] for row in table_rows(weeks)[1:]]
    assert week_lines[0] == (
        "*30 Dec 2024 – 5 Jan 2025*  $453.27 · 3 treatments · 3 appointments · "
        "100.0% cancelled · _partial, 1 of 7 days_"
    )
    assert week_lines[1].startswith("*23–29 Dec 2024*  $6,765.23  ▼ 28.8% · 15 treatments")
    assert fallback["text"] == weeks["text"]


def test_treatment_types_are_one_period_list_largest_first() -> None:
    """Ranked by the period's revenue, not by name, first appearance or any one week."""
    report = analyzed(
        csv_of(
            "e1,c1,p1,TREATMENT_COMPLETED,2024-01-01T10:00:00Z,aaa,1.00",
            "e2,c1,p2,TREATMENT_COMPLETED,2024-01-01T10:00:00Z,zzz,300.00",
            "e3,c1,p3,TREATMENT_COMPLETED,2024-01-08T10:00:00Z,mmm,320.00",
            "e4,c1,p4,TREATMENT_COMPLETED,2024-01-09T10:00:00Z,aaa,1.00",
        )
    )
    [headline, _] = summary_messages(report, file_name="f.csv", currency="USD")
    [types] = [text for text in texts(headline) if text.startswith("*Revenue by treatment")]
    assert types.splitlines()[1:] == [
        "Mmm  $320.00 · 51.4%",
        "Zzz  $300.00 · 48.2%",
        "Aaa  $2.00 · 0.3%",
    ]


@pytest.mark.parametrize(
    ("currency", "amount"),
    [("USD", "$2,680.75"), ("EUR", "€2,680.75"), ("GBP", "£2,680.75"), ("CHF", "CHF 2,680.75")],
)
def test_amounts_are_in_the_report_currency(currency: str, amount: str) -> None:
    """Every amount carries the currency's symbol, or its code when it has none."""
    report = analyzed(weekly_csv(1))
    [headline, weeks] = summary_messages(report, file_name="f.csv", currency=currency)
    assert f"*Total revenue: {amount}*" in texts(headline)[1]
    assert table_rows(weeks)[1][1] == amount
    assert (
        amount in outcome_message(report, file_name="f.csv", job_id="j", currency=currency)["text"]
    )


def test_many_invalid_rows_show_the_first_few_and_an_ellipsis() -> None:
    """Past five row numbers the list ends in "…"; large row numbers have no separators."""
    rows = [f"e{i},c1,p1,APPOINTMENT_SCHEDULED,2024-01-01T10:00:00Z,," for i in range(1500)]
    rows += [f"x{i},c1,p1,APPOINTMENT_SCHEDULED,never,," for i in range(8)]
    [headline, _] = summary_messages(analyzed(csv_of(*rows)), file_name="f.csv", currency="USD")
    assert "• bad date: 8 (rows 1502, 1503, 1504, 1505, 1506, …)" in "\n".join(texts(headline))


def test_a_clean_report_says_so_in_one_line() -> None:
    """No invalid rows and no gaps: a check mark, and no invalid-rows section."""
    report = analyzed(weekly_csv(3) + "e,c1,p,X,2024-01-21T10:00:00Z,,\n")
    [headline, _] = summary_messages(report, file_name="f.csv", currency="USD")
    assert "✓ every row valid, every week complete" in texts(headline)
    assert not any("Invalid rows" in text for text in texts(headline))


def test_a_report_with_no_valid_row_still_renders() -> None:
    """All rows invalid: no weeks, but the totals and the reasons, within limits."""
    report = analyzed(csv_of("e1,c1,p1,APPOINTMENT_SCHEDULED,never,,"))
    messages = summary_messages(report, file_name="f.csv", currency="USD")
    for message in messages:
        assert_within_slack_limits(message)
    assert "No week: no row was valid." in json.dumps(messages[1])
    assert_within_slack_limits(
        outcome_message(report, file_name="f.csv", job_id="j", currency="USD")
    )


def test_five_hundred_treatment_types_fit() -> None:
    """The eight largest types are named; the others are counted and summed."""
    rows = [
        f"e{i},c1,p{i},TREATMENT_COMPLETED,2024-01-03T10:00:00Z,type-{i:03d},{i + 1}.00"
        for i in range(500)
    ]
    messages = summary_messages(analyzed(csv_of(*rows)), file_name="f.csv", currency="USD")
    for message in messages:
        assert_within_slack_limits(message)
    [types] = [text for text in texts(messages[0]) if text.startswith("*Revenue by treatment")]
    lines = types.splitlines()
    rest_dollars = sum(range(1, 493))
    assert lines[1].startswith("Type-499  $500.00 · ")
    assert lines[-1] == f"… and 492 more types (${rest_dollars:,}.00)"


def test_long_file_names_are_shortened_in_the_header() -> None:
    """A 400-character name is cut in the middle so the header stays under 150 characters."""
    name = "clinic-" + "x" * 400 + "-2024-12.csv"
    messages = summary_messages(analyzed(weekly_csv(1)), file_name=name, currency="USD")
    header = messages[0]["blocks"][0]["text"]["text"]
    assert len(header) <= 150
    assert header.startswith("Weekly report: clinic-xxx")
    assert "…" in header
    assert header.endswith("-2024-12.csv")
    for message in messages:
        assert_within_slack_limits(message)


def test_names_from_the_file_cannot_notify_or_inject() -> None:
    """`<!channel>` in a file or treatment name is escaped, never sent as a mention."""
    report = analyzed(
        csv_of(
            "e1,<!subteam^S1> c,p1,TREATMENT_COMPLETED,2024-01-01T10:00:00Z,<!channel> & co,10.00",
            "e1,<!subteam^S1> c,p1,TREATMENT_COMPLETED,2024-01-08T10:00:00Z,<!channel> & co,20.00",
            "e1,c2,p1,X,2024-01-14T10:00:00Z,,",
        )
    )
    name = "<!here>.csv"
    messages = [
        *summary_messages(report, file_name=name, currency="USD"),
        outcome_message(report, file_name=name, job_id="j", currency="USD"),
        failed_outcome_message("<!everyone> broke", file_name=name, job_id="j"),
        failed_message("<!everyone> broke", job_id="<j>"),
        start_message(
            job_id="j", file_name=name, size_bytes=1, requested_by="<!channel>", queue_position=None
        ),
    ]
    mrkdwn = json.dumps(
        [
            [message["text"], *(b for b in message["blocks"] if b["type"] != "header")]
            for message in messages
        ],
        ensure_ascii=False,
    )
    assert "<!" not in mrkdwn
    assert "&lt;!channel&gt; &amp; co  $30.00" in mrkdwn
    assert "&lt;!subteam^S1&gt; c ▲ 100.0%" in mrkdwn
    # A header is plain text, which Slack never reads as a mention.
    assert messages[0]["blocks"][0]["text"] == {
        "type": "plain_text",
        "text": "Weekly report: <!here>.csv",
    }


def test_control_and_bidi_characters_never_reach_slack() -> None:
    """An ESC sequence or a right-to-left override in a name or type is stripped everywhere."""
    report = analyzed(
        csv_of("e1,c1,p1,TREATMENT_COMPLETED,2024-01-01T10:00:00Z,\x1b[31mroot\u202ecanal,10.00")
    )
    name = "invoice\u202efdp\u2066.csv"
    messages = [
        *summary_messages(report, file_name=name, currency="USD"),
        outcome_message(report, file_name=name, job_id="j", currency="USD"),
        failed_outcome_message("bad\x1b]0;x\x07", file_name=name, job_id="j"),
        start_message(
            job_id="j", file_name=name, size_bytes=1, requested_by=None, queue_position=None
        ),
    ]
    text = json.dumps(messages, ensure_ascii=False)
    for invisible in ("\x1b", "\x07", "\u202e", "\u2066"):
        assert invisible not in text
    assert "invoice fdp .csv" in text


def test_slash_command_texts_escape_names() -> None:
    """A file name in a command reply is plain text in mrkdwn: escaped, one line."""
    assert outside_text("<!channel> & a\nb.csv") == "&lt;!channel&gt; &amp; a b.csv"


def test_no_patient_id_note_or_raw_value_reaches_any_message() -> None:
    """Only counts, amounts, dates, rows and type names: no value of a row leaks."""
    header = HEADER + ",notes"
    rows = [
        f"EVENT-SECRET-{i},CLINIC-SECRET,PATIENT-SECRET-{i:04d},TREATMENT_COMPLETED,"
        f"2024-01-{1 + i % 28:02d}T10:00:00Z,cleaning,12.50,NOTE-SECRET call back"
        for i in range(40)
    ]
    rows += [
        "EVENT-SECRET-a,CLINIC-SECRET,PATIENT-SECRET-bad1,APPOINTMENT_SCHEDULED,SECRET-TS,,,n",
        "EVENT-SECRET-b,CLINIC-SECRET,PATIENT-SECRET-bad2,TREATMENT_COMPLETED,"
        "2024-01-02T10:00:00Z,cleaning,SECRET-REVENUE,n",
        "EVENT-SECRET-c,CLINIC-SECRET,PATIENT-SECRET-bad3",
        "EVENT-SECRET-d,,,APPOINTMENT_SCHEDULED,2024-01-02T10:00:00Z,,,NOTE-SECRET",
    ]
    snapshots: list[Progress] = []
    data = csv_of(*rows, header=header).encode()
    report = analyze(iter([data]), on_progress=snapshots.append)
    assert report.rows_invalid == 4
    messages = [
        start_message(
            job_id="7f3a",
            file_name="e.csv",
            size_bytes=len(data),
            requested_by="U1",
            queue_position=1,
        ),
        progress_message(snapshots[-1], total_bytes=len(data), elapsed_s=2.0, currency="USD"),
        done_message(report, elapsed_s=2.0, currency="USD"),
        outcome_message(report, file_name="e.csv", job_id="7f3a", currency="USD"),
        *summary_messages(report, file_name="e.csv", currency="USD"),
    ]
    dumped = json.dumps(messages, ensure_ascii=False)
    assert "SECRET" not in dumped.replace("CLINIC-SECRET", "")  # clinic ids are business data
    assert "Cleaning  $500.00" in dumped  # the report did render


@pytest.mark.parametrize(
    ("queue_position", "text"),
    [
        (None, "Starting: reading the first rows…"),
        (2, "Waiting for a free slot (position 2 in the queue)…"),
    ],
)
def test_waiting_message_says_whether_the_job_is_queued(
    queue_position: int | None, text: str
) -> None:
    """Before the first rows, the thread says the job is starting or where it is queued."""
    message = waiting_message(queue_position=queue_position)
    assert_within_slack_limits(message)
    assert message["text"] == text


def test_progress_with_a_known_size_shows_percent_and_time_left() -> None:
    """A quarter read in 10 s: 25%, about 30 s left, and the bytes read of the total."""
    progress = Progress(
        rows_total=1000,
        rows_valid=990,
        revenue_cents=123456,
        bytes_read=25 * 1024**2,
        invalid_by_reason={"malformed_row": 4, "invalid_timestamp": 6, "invalid_revenue": 0},
    )
    message = progress_message(progress, total_bytes=100 * 1024**2, elapsed_s=10.0, currency="EUR")
    assert_within_slack_limits(message)
    assert message["blocks"][0]["text"]["text"] == (
        "*Processing…* █████░░░░░░░░░░░░░░░ 25% · about 30 s left\n"
        "*1,000* rows read: 990 valid, 10 invalid · 100 rows per second\n"
        "Revenue so far: *€1,234.56*\n"
        "Invalid rows so far — wrong number of fields: 4 · bad date: 6"
    )
    assert message["blocks"][1]["elements"][0]["text"] == "25 MB of 100 MB read · 10 s elapsed"
    assert message["text"] == "Processing 25%: 1,000 rows, €1,234.56 revenue so far"


def test_progress_without_a_size_shows_what_was_read() -> None:
    """Unknown size: no percent and no time left, but bytes read and rows per second."""
    progress = Progress(
        rows_total=5, rows_valid=5, revenue_cents=0, bytes_read=2048, invalid_by_reason={}
    )
    message = progress_message(progress, total_bytes=None, elapsed_s=65.0, currency="USD")
    assert_within_slack_limits(message)
    text = message["blocks"][0]["text"]["text"]
    assert text.startswith("*Processing…* 2 KB read\n")
    assert "%" not in text
    assert "left" not in text
    assert "Invalid rows" not in text
    assert message["blocks"][1]["elements"][0]["text"] == "2 KB read · 1 min 5 s elapsed"


def test_progress_time_left_waits_for_enough_data() -> None:
    """Right after the start the time left is not guessed."""
    progress = Progress(
        rows_total=0, rows_valid=0, revenue_cents=0, bytes_read=10, invalid_by_reason={}
    )
    message = progress_message(progress, total_bytes=10**9, elapsed_s=0.2, currency="USD")
    assert "0% · estimating the time left…" in message["blocks"][0]["text"]["text"]


@pytest.mark.parametrize(
    ("fraction", "eta"),
    [
        (0.5, "about 1 min 40 s left"),
        (0.1, "about 15 min left"),
        (0.995, "less than a second left"),
    ],
)
def test_time_left_grows_with_what_remains(fraction: float, eta: str) -> None:
    """ETA = elapsed * remaining / done, in minutes and seconds."""
    progress = Progress(
        rows_total=1,
        rows_valid=1,
        revenue_cents=0,
        bytes_read=int(fraction * 1000),
        invalid_by_reason={},
    )
    message = progress_message(progress, total_bytes=1000, elapsed_s=100.0, currency="USD")
    assert eta in message["blocks"][0]["text"]["text"]


def test_done_message_gives_totals_and_duration(year_report: WeeklyReport) -> None:
    """The final progress update: 100%, rows, revenue, invalid rows and how long it took."""
    message = done_message(year_report, elapsed_s=75.0, currency="CHF")
    assert_within_slack_limits(message)
    lines = message["blocks"][0]["text"]["text"].splitlines()
    assert lines[0] == "*Done* ████████████████████ 100% · finished in 1 min 15 s"
    assert lines[1].startswith(f"*{year_report.rows_total:,}* rows read: ")
    assert lines[2].startswith("Revenue: *CHF ")
    assert lines[3].startswith("Invalid rows — wrong number of fields: ")
    assert message["text"].startswith(f"Done (100%): {year_report.rows_total:,} rows, CHF ")
    assert message["text"].endswith(" revenue, in 1 min 15 s")


def test_start_message_names_file_size_person_and_job() -> None:
    """ "Processing <file> (12 MB) shared by <@U123>", with the job id; the size in the
    words every surface uses (processing/words.py file_size)."""
    message = start_message(
        job_id="7f3a",
        file_name="events.csv",
        size_bytes=12_900_000,
        requested_by="U123",
        queue_position=None,
    )
    assert_within_slack_limits(message)
    assert message["text"] == "Processing events.csv (12 MB) shared by <@U123> — job 7f3a"
    assert message["blocks"][0]["text"]["text"].endswith(
        "Processing *events.csv* (12 MB) shared by <@U123>"
    )
    assert message["blocks"][1]["elements"][0]["text"] == "Job 7f3a"


def test_start_message_in_the_queue_gives_the_position() -> None:
    """A queued job says it waits for a free slot, and where it is in the queue."""
    message = start_message(
        job_id="7f3a", file_name="events.csv", size_bytes=None, requested_by=None, queue_position=3
    )
    assert_within_slack_limits(message)
    assert message["text"] == (
        "Queued events.csv, waiting for a free slot (position 3 in the queue) — job 7f3a"
    )


def test_outcome_message_is_one_line_pointing_to_the_thread(year_report: WeeklyReport) -> None:
    """The start message rewritten: rows, revenue, weeks, "see thread"."""
    message = outcome_message(year_report, file_name="events.csv", job_id="7f3a", currency="USD")
    assert_within_slack_limits(message)
    [block] = message["blocks"]
    text = block["text"]["text"]
    assert "\n" not in text
    assert text.startswith(
        f":white_check_mark: *events.csv*: {year_report.rows_total:,} rows "
        f"({year_report.rows_invalid:,} invalid), $"
    )
    assert text.endswith("revenue over 53 weeks (1 Jan 2024 – 5 Jan 2025) — see thread (job 7f3a)")


def test_failure_messages_give_the_reason_and_job() -> None:
    """Both rewrites on failure show the user-safe reason and the job id."""
    reason = "the file has no event_timestamp column"
    progress = failed_message(reason, job_id="7f3a")
    outcome = failed_outcome_message(reason, file_name="events.csv", job_id="7f3a")
    for message in (progress, outcome):
        assert_within_slack_limits(message)
        assert reason in message["text"]
    assert outcome["text"] == (
        "events.csv could not be processed: the file has no event_timestamp column"
        " — see thread (job 7f3a)"
    )
    assert "Job 7f3a" in progress["blocks"][1]["elements"][0]["text"]


def test_huge_reasons_and_names_are_clipped() -> None:
    """Outside text of any length cannot push a message over a limit."""
    reason = "word " * 5000
    name = "n" * 10_000 + ".csv"
    for message in (
        failed_message(reason, job_id="j" * 500),
        failed_outcome_message(reason, file_name=name, job_id="j" * 500),
        start_message(
            job_id="j" * 500,
            file_name=name,
            size_bytes=10**12,
            requested_by="U1",
            queue_position=10**6,
        ),
    ):
        assert_within_slack_limits(message)


def long_report(weeks: int, clinics: int = 1) -> WeeklyReport:
    """Weeks with nine long treatment names each, and clinics with long ids, built directly
    (15,000 weeks through the engine would only test the engine again)."""
    kinds = [f"{'treatment-name-of-forty-characters-'}{k:04d}" for k in range(9)]
    start = date(1920, 1, 6)
    weeks_ = with_changes(
        [
            complete_week(
                WeekStats(
                    week_start=start + timedelta(weeks=index),
                    revenue_cents=9 * (123_456_789 + index),
                    revenue_by_treatment_cents={kind: 123_456_789 + index for kind in kinds},
                    treatments_completed=9,
                    events_by_type={"APPOINTMENT_SCHEDULED": 1_000_000, "APPOINTMENT_CANCELLED": 7},
                ),
                start,
                start + timedelta(weeks=weeks),
            )
            for index in range(weeks)
        ]
    )
    top = headline_of(weeks_)
    stats = tuple(
        ClinicStats(
            clinic_id=f"clinic-{'x' * 60}-{n:05d}",
            revenue_cents=10**12 + n,
            treatments_completed=1,
            appointments=1,
            bookings=0,
            cancelled=0,
            no_show=0,
            weeks_active=2,
            latest_week_revenue_cents=n,
            previous_week_revenue_cents=clinics // 2 or 1,
            change_pct=percent_change(n, clinics // 2 or 1),
        )
        for n in range(clinics)
    )
    return WeeklyReport(
        timezone="UTC",
        rows_total=weeks,
        rows_valid=weeks,
        errors={},
        revenue_on_other_event=0,
        weeks=weeks_,
        bytes_read=0,
        headline=top,
        clinics=stats,
        totals=period_totals(weeks_),
        movers=clinic_movers(stats),
    )


@pytest.mark.parametrize("weeks", [1, 26, 60, 600, 15_000])
def test_the_summary_is_bounded_whatever_the_weeks(weeks: int) -> None:
    """Up to 15,000 weeks with nine long treatment names: never more than 3 messages, each
    (and its fallback) inside Slack's limits, the table at most 26 weeks."""
    messages = summary_messages(long_report(weeks), file_name="f.csv", currency="CHF")
    assert 1 <= len(messages) <= MAX_SUMMARY_MESSAGES
    for message in messages:
        assert_within_slack_limits(message)
    assert len(table_rows(messages[1])) == 1 + min(weeks, WEEKS_SHOWN)


@pytest.mark.parametrize("clinics", [1, 3, 10, 10_000])
def test_the_summary_is_bounded_whatever_the_clinics(clinics: int) -> None:
    """1 to 10,000 clinics with long ids: three up and three down at most, within limits."""
    report = long_report(60, clinics)
    messages = summary_messages(report, file_name="f.csv", currency="USD")
    assert len(messages) <= MAX_SUMMARY_MESSAGES
    for message in messages:
        assert_within_slack_limits(message)
    [movers] = [
        b
        for b in messages[0]["blocks"]
        if b.get("text", {}).get("text", "").startswith("*Clinics*")
    ]
    up, down = (field["text"].splitlines()[1:] for field in movers["fields"])
    assert len(up) <= 3
    assert len(down) <= 3
    assert up == ["none"] or all("▲" in line for line in up)


def test_the_start_message_says_who_shared_or_who_asked() -> None:
    """A share names the person who shared; /process-events the person who asked."""
    common = partial(
        start_message,
        job_id="7f3a9c01",
        file_name="events.csv",
        size_bytes=1000,
        queue_position=None,
    )
    shared = common(requested_by="U0ALICE")
    asked = common(requested_by="U0ALICE", via_command=True)
    assert "shared by <@U0ALICE>" in shared["text"]
    assert "requested by <@U0ALICE>" in asked["text"]


def test_an_unusual_dialect_is_named_in_the_summary() -> None:
    """A semicolon file in Windows-1252 says so; a plain UTF-8 comma file says nothing."""
    text = csv_of(
        "e1;c1;p1;TREATMENT_COMPLETED;2024-01-01;caf\xe9;1,50", header=HEADER.replace(",", ";")
    )
    report = analyze(iter([text.encode("cp1252")]))
    summary = json.dumps(summary_messages(report, file_name="f.csv", currency="EUR"))
    assert "File read as Windows-1252, semicolon-separated" in summary
    plain = json.dumps(
        summary_messages(analyzed(csv_of("e1,c1,p1,X,2024-01-01,,")), file_name="f", currency="EUR")
    )
    assert "read as" not in plain
    assert "separated" not in plain

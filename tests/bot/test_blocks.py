"""Slack messages of a job: what people read, inside every Block Kit limit."""

from __future__ import annotations

import json
import math
from datetime import date, timedelta
from pathlib import Path

import generate
import pytest
from slack_sdk.models.blocks import Block

from bot.blocks import (
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
from processing import Progress, WeeklyReport, WeekStats, analyze
from tests.conftest import HEADER, csv_of


def assert_within_slack_limits(message: Message) -> None:
    """Slack's documented limits, written out here rather than taken from bot.blocks."""
    text, blocks = message["text"], message["blocks"]
    assert 0 < len(text) <= 4000
    assert 0 < len(blocks) <= 50
    assert len(json.dumps(blocks, ensure_ascii=False)) <= MAX_BLOCKS_JSON_CHARS
    block_ids = [block["block_id"] for block in blocks if "block_id" in block]
    assert len(block_ids) == len(set(block_ids))
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


def week_text(messages: list[Message], monday: date) -> str:
    [block] = [b for b in all_blocks(messages) if b.get("block_id") == f"week-{monday}"]
    return str(block["text"]["text"])


@pytest.fixture(scope="module")
def year_report(tmp_path_factory: pytest.TempPathFactory) -> WeeklyReport:
    """A realistic 53-week export from bench/generate.py, invalid rows included."""
    path: Path = tmp_path_factory.mktemp("bench") / "events.csv"
    generate.write_events(path, rows=5_000)
    with path.open("rb") as stream:
        return analyze(stream)


@pytest.fixture(scope="module", params=[60, 300], ids=lambda weeks: f"{weeks}-weeks")
def long_report(request: pytest.FixtureRequest) -> WeeklyReport:
    return analyzed(weekly_csv(request.param))


def test_every_message_of_a_long_report_is_within_slack_limits(long_report: WeeklyReport) -> None:
    """60 and 300 weeks are split over messages that each respect every limit."""
    messages = summary_messages(long_report, file_name="events.csv", currency="USD")
    assert len(messages) > 1
    for message in messages:
        assert_within_slack_limits(message)


def test_every_week_appears_once_and_in_order(long_report: WeeklyReport) -> None:
    """The newest two years of weeks, none cut, repeated or reordered across the messages;
    a longer report says the CSV has the rest."""
    messages = summary_messages(long_report, file_name="events.csv", currency="USD")
    shown = [
        b["block_id"] for b in all_blocks(messages) if b.get("block_id", "").startswith("week-")
    ]
    newest = long_report.weeks[-WEEKS_SHOWN:]
    assert shown == [f"week-{week.week_start}" for week in newest]
    note = f"Showing the newest {WEEKS_SHOWN} of {len(long_report.weeks)} weeks"
    assert (note in json.dumps(messages[0])) == (len(long_report.weeks) > WEEKS_SHOWN)


def test_following_messages_say_they_continue(long_report: WeeklyReport) -> None:
    """Every message after the first opens with "continued (n/total)"."""
    messages = summary_messages(long_report, file_name="events.csv", currency="USD")
    total = len(messages)
    assert messages[0]["blocks"][0]["type"] == "header"
    assert messages[0]["text"].endswith(f"(1/{total})")
    for number, message in enumerate(messages[1:], start=2):
        first = message["blocks"][0]
        assert first["type"] == "context"
        assert f"continued ({number}/{total})" in first["elements"][0]["text"]
        assert f"continued ({number}/{total})" in message["text"]


def test_a_year_of_real_looking_data_takes_two_messages(year_report: WeeklyReport) -> None:
    """53 weeks of a realistic export stay compact: two messages, each within limits."""
    assert len(year_report.weeks) == 53
    messages = summary_messages(year_report, file_name="events.csv", currency="USD")
    assert len(messages) == 2
    for message in messages:
        assert_within_slack_limits(message)


def test_totals_give_rows_revenue_and_period(year_report: WeeklyReport) -> None:
    """The first message states rows, revenue and the first to last day of the weeks."""
    [first, *_] = summary_messages(year_report, file_name="events.csv", currency="USD")
    fields = [field["text"] for field in first["blocks"][1]["fields"]]
    assert fields[0] == (
        f"*Rows*\n{year_report.rows_total:,} total\n"
        f"{year_report.rows_valid:,} valid · {year_report.rows_invalid:,} invalid"
    )
    assert (
        fields[1]
        == f"*Revenue*\n${year_report.revenue_cents // 100:,}.{year_report.revenue_cents % 100:02d}"
    )
    assert fields[2] == "*Period*\n1 Jan 2024 – 5 Jan 2025\n53 weeks"
    assert "1 Jan 2024 – 5 Jan 2025" in first["text"]


def test_a_week_shows_its_revenue_types_and_counts() -> None:
    """A week: its dates, revenue, treatments, appointments, bookings and revenue per type."""
    messages = summary_messages(analyzed(weekly_csv(1)), file_name="f.csv", currency="USD")
    assert week_text(messages, date(2024, 1, 1)) == (
        "*Week of 1–7 Jan 2024* · *$2,680.75*\n"
        "3 treatments completed · 1 appointment · 1 booking\n"
        "Implants $2,400.50 · Filling $180.25 · Cleaning $100.00"
    )


def test_a_week_across_new_year_names_both_years() -> None:
    """The week of 30 Dec 2024 names its end in 2025, with both years."""
    report = analyzed(weekly_csv(1, start=date(2024, 12, 30)))
    messages = summary_messages(report, file_name="f.csv", currency="USD")
    assert "*Week of 30 Dec 2024 – 5 Jan 2025*" in week_text(messages, date(2024, 12, 30))


def test_treatment_types_are_listed_largest_first() -> None:
    """Types are ranked by revenue, not by name or first appearance."""
    report = analyzed(
        csv_of(
            "e1,c1,p1,TREATMENT_COMPLETED,2024-01-01T10:00:00Z,aaa,1.00",
            "e2,c1,p2,TREATMENT_COMPLETED,2024-01-01T10:00:00Z,zzz,300.00",
            "e3,c1,p3,TREATMENT_COMPLETED,2024-01-01T10:00:00Z,mmm,20.00",
            "e4,c1,p4,TREATMENT_COMPLETED,2024-01-02T10:00:00Z,aaa,1.00",
        )
    )
    text = week_text(summary_messages(report, file_name="f.csv", currency="USD"), date(2024, 1, 1))
    assert text.splitlines()[2] == "Zzz $300.00 · Mmm $20.00 · Aaa $2.00"


@pytest.mark.parametrize(
    ("currency", "amount"),
    [("USD", "$2,680.75"), ("EUR", "€2,680.75"), ("GBP", "£2,680.75"), ("CHF", "CHF 2,680.75")],
)
def test_amounts_are_in_the_report_currency(currency: str, amount: str) -> None:
    """Every amount carries the currency's symbol, or its code when it has none."""
    report = analyzed(weekly_csv(1))
    [message] = summary_messages(report, file_name="f.csv", currency=currency)
    assert f"*Revenue*\n{amount}" in json.dumps(message, ensure_ascii=False).replace("\\n", "\n")
    assert f"*{amount}*" in week_text([message], date(2024, 1, 1))
    assert (
        amount in outcome_message(report, file_name="f.csv", job_id="j", currency=currency)["text"]
    )


def test_invalid_rows_are_listed_by_reason_with_their_first_rows() -> None:
    """Each reason with a count and its first spreadsheet rows; the header is row 1."""
    report = analyzed(
        csv_of(
            "e1,c1,p1,TREATMENT_COMPLETED,2024-01-01T10:00:00Z,cleaning,100.00",
            "e2,c1,p2,APPOINTMENT_SCHEDULED,yesterday,,",
            "e3,c1,p3,APPOINTMENT_SCHEDULED,2024-01-02T10:00:00Z,,",
            "e4,c1,p4,APPOINTMENT_SCHEDULED,2024-02-30T10:00:00Z,,",
            "e5,c1,p5,APPOINTMENT_SCHEDULED,20240101T100000Z,,",
            "e6,c1,,APPOINTMENT_SCHEDULED,2024-01-02T10:00:00Z,,",
            "e7,c1,p7,TREATMENT_COMPLETED,2024-01-02T10:00:00Z,cleaning,abc",
            "e8,c1,p8,APPOINTMENT_SCHEDULED",
        )
    )
    [message] = summary_messages(report, file_name="f.csv", currency="USD")
    assert message["blocks"][2]["text"]["text"] == (
        "*Invalid rows* (left out of every total)\n"
        "• wrong number of fields: 1 (row 9)\n"
        "• missing value: 1 (row 7)\n"
        "• bad date: 3 (rows 3, 5, 6)\n"
        "• bad amount: 1 (row 8)"
    )


def test_many_invalid_rows_show_the_first_few_and_an_ellipsis() -> None:
    """Past five row numbers the list ends in "…"; large row numbers have no separators."""
    rows = [f"e{i},c1,p1,APPOINTMENT_SCHEDULED,2024-01-01T10:00:00Z,," for i in range(1500)]
    rows += [f"x{i},c1,p1,APPOINTMENT_SCHEDULED,never,," for i in range(8)]
    [message] = summary_messages(analyzed(csv_of(*rows)), file_name="f.csv", currency="USD")
    text = message["blocks"][2]["text"]["text"]
    assert "• bad date: 8 (rows 1502, 1503, 1504, 1505, 1506, …)" in text


def test_a_report_without_invalid_rows_says_so() -> None:
    """No invalid rows: one short line instead of an empty list."""
    [message] = summary_messages(analyzed(weekly_csv(2)), file_name="f.csv", currency="USD")
    assert message["blocks"][2]["text"]["text"] == "*Invalid rows:* none, every row was valid."


def test_a_report_with_no_valid_row_still_renders() -> None:
    """All rows invalid: no weeks, but totals and reasons, within limits."""
    report = analyzed(csv_of("e1,c1,p1,APPOINTMENT_SCHEDULED,never,,"))
    [message] = summary_messages(report, file_name="f.csv", currency="USD")
    assert_within_slack_limits(message)
    assert "no week: no row was valid" in json.dumps(message)
    assert_within_slack_limits(
        outcome_message(report, file_name="f.csv", job_id="j", currency="USD")
    )


def test_five_hundred_treatment_types_in_one_week_fit() -> None:
    """The eight largest types are named; the others are counted and summed."""
    rows = [
        f"e{i},c1,p{i},TREATMENT_COMPLETED,2024-01-03T10:00:00Z,type-{i:03d},{i + 1}.00"
        for i in range(500)
    ]
    report = analyzed(csv_of(*rows))
    messages = summary_messages(report, file_name="f.csv", currency="USD")
    for message in messages:
        assert_within_slack_limits(message)
    types_line = week_text(messages, date(2024, 1, 1)).splitlines()[2]
    rest_dollars = sum(range(1, 493))
    assert types_line.startswith("Type-499 $500.00 · Type-498 $499.00 · ")
    assert types_line.endswith(f"Type-492 $493.00 · … and 492 more types (${rest_dollars:,}.00)")


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
        csv_of("e1,c1,p1,TREATMENT_COMPLETED,2024-01-01T10:00:00Z,<!channel> & co,10.00")
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
        ]
    )
    assert "<!" not in mrkdwn
    assert "&lt;!channel&gt; &amp; co $10.00" in mrkdwn
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
    assert "SECRET" not in dumped
    assert "Cleaning $500.00" in dumped  # the report did render


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
    assert message["blocks"][1]["elements"][0]["text"] == "25.0 MB of 100.0 MB read · 10 s elapsed"
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
    """ "Processing <file> (12.3 MB) shared by <@U123>", with the job id."""
    message = start_message(
        job_id="7f3a",
        file_name="events.csv",
        size_bytes=12_900_000,
        requested_by="U123",
        queue_position=None,
    )
    assert_within_slack_limits(message)
    assert message["text"] == "Processing events.csv (12.3 MB) shared by <@U123> — job 7f3a"
    assert message["blocks"][0]["text"]["text"].endswith(
        "Processing *events.csv* (12.3 MB) shared by <@U123>"
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


def test_three_hundred_weeks_need_few_messages() -> None:
    """300 weeks: the newest 104 take about 30 weeks per message, not one message per week."""
    report = analyzed(weekly_csv(300))
    messages = summary_messages(report, file_name="f.csv", currency="USD")
    assert len(messages) <= math.ceil(WEEKS_SHOWN / 25)


@pytest.mark.parametrize("weeks", [1, 104, 600, 15_000])
def test_the_summary_is_bounded_whatever_the_weeks(weeks: int) -> None:
    """Up to 15,000 weeks, each with nine long treatment names: never more than 10 messages."""
    kinds = [f"{'treatment-name-of-forty-characters-'}{k:04d}" for k in range(9)]
    start = date(1920, 1, 6)
    report = WeeklyReport(
        timezone="UTC",
        rows_total=weeks,
        rows_valid=weeks,
        errors={},
        revenue_on_other_event=0,
        weeks=tuple(
            WeekStats(
                week_start=start + timedelta(weeks=index),
                revenue_cents=9 * 123_456_789,
                revenue_by_treatment_cents={kind: 123_456_789 for kind in kinds},
                treatments_completed=9,
                events_by_type={"APPOINTMENT_SCHEDULED": 1_000_000},
            )
            for index in range(weeks)
        ),
        bytes_read=0,
    )
    messages = summary_messages(report, file_name="f.csv", currency="USD")
    assert 1 <= len(messages) <= MAX_SUMMARY_MESSAGES
    for message in messages:
        assert_within_slack_limits(message)


def test_the_start_message_says_who_shared_or_who_asked() -> None:
    """A share names the person who shared; /process-events the person who asked."""
    common = {
        "job_id": "7f3a9c01",
        "file_name": "events.csv",
        "size_bytes": 1000,
        "queue_position": None,
    }
    shared = start_message(requested_by="U0ALICE", **common)
    asked = start_message(requested_by="U0ALICE", via_command=True, **common)
    assert "shared by <@U0ALICE>" in shared["text"]
    assert "requested by <@U0ALICE>" in asked["text"]


def test_an_unusual_dialect_is_named_in_the_summary() -> None:
    """A semicolon file in Windows-1252 says so; a plain UTF-8 comma file says nothing."""
    text = csv_of(
        "e1;c1;p1;TREATMENT_COMPLETED;2024-01-01;caf\xe9;1,50", header=HEADER.replace(",", ";")
    )
    report = analyze(iter([text.encode("cp1252")]))
    summary = json.dumps(summary_messages(report, file_name="f.csv", currency="EUR"))
    assert "file read as Windows-1252, semicolon-separated" in summary
    plain = json.dumps(
        summary_messages(analyzed(csv_of("e1,c1,p1,X,2024-01-01,,")), file_name="f", currency="EUR")
    )
    assert "read as" not in plain and "separated" not in plain

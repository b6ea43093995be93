"""When a file or Slack misbehaves: the thread says why in plain words, and nothing leaks."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import aiohttp
import pytest
import structlog
from aiohttp import web

from bot.app import Service
from tests.helpers import HEADER, utf8_then_latin1
from tests.integration.helpers import (
    CHANNEL,
    SAMPLE,
    StartBot,
    finished_jobs,
    share,
    start_and_thread,
    weeks_csv,
)
from tests.standin.slack import SlackStandIn

SAMPLE_BODY = SAMPLE.split(b"\n", 1)[1]
ONE_MB = 1_048_576


def assert_failed_in_thread(slack: SlackStandIn, file_name: str, *words: str) -> str:
    """The job failed visibly: start message marked, progress message edited to the reason,
    no summary and no files. Returns the progress message's text."""
    start, thread = start_and_thread(slack, file_name)
    assert ":x:" in json.dumps(start["blocks"])
    assert "could not be processed" in start["text"]
    [progress] = thread  # no summary, no uploads
    assert "edited" in progress, "the progress message is edited in place"
    assert progress["text"].startswith("The file could not be processed")
    for word in words:
        assert word in progress["text"], progress["text"]
    assert not slack.calls_to("files.getUploadURLExternal")
    assert not slack.uploads
    return str(progress["text"])


async def test_missing_columns_are_named_in_the_progress_message(
    slack: SlackStandIn, bot: Service
) -> None:
    """A header without patient_id and event_timestamp: the thread names both; no report."""
    content = b"event_id,clinic_id,event_type,revenue_amount\nE1,C1,TREATMENT_COMPLETED,10.00\n"
    slack.add_file("F0NOCOLS01", "events.csv", content)
    await share(slack, "F0NOCOLS01")
    [job] = await finished_jobs(bot)
    assert job.status == "failed"
    assert_failed_in_thread(
        slack,
        "events.csv",
        "the header lacks patient_id and event_timestamp; "
        "columns found: event_id, clinic_id, event_type, revenue_amount",
    )


async def test_an_html_page_instead_of_the_file_points_at_files_read(
    slack: SlackStandIn, bot: Service
) -> None:
    """Slack's login page instead of the CSV: the thread says so and names files:read."""
    slack.add_file("F0HTMLPG01", "events.csv", weeks_csv(2), html=True)
    await share(slack, "F0HTMLPG01")
    [job] = await finished_jobs(bot)
    assert job.status == "failed"
    assert_failed_in_thread(slack, "events.csv", "Slack sent a web page", "files:read")


@pytest.fixture
async def foreign_host() -> AsyncIterator[tuple[int, list[web.Request]]]:
    """Some other server on loopback; yields its port and the requests it received."""
    received: list[web.Request] = []

    async def anything(request: web.Request) -> web.Response:
        received.append(request)
        return web.Response(text=HEADER + "\n", content_type="text/csv")

    app = web.Application()
    app.router.add_get("/{tail:.*}", anything)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield runner.addresses[0][1], received
    await runner.cleanup()


async def test_a_redirect_to_another_host_fails_without_sending_the_token(
    slack: SlackStandIn, bot: Service, foreign_host: tuple[int, list[web.Request]]
) -> None:
    """Slack's download redirects off Slack: the job fails and the token never goes there."""
    port, received = foreign_host
    elsewhere = f"http://localhost:{port}/steal/events.csv"
    slack.add_file("F0REDIREC1", "events.csv", weeks_csv(2), redirect_to=elsewhere)
    await share(slack, "F0REDIREC1")
    [job] = await finished_jobs(bot)
    assert job.status == "failed"
    assert_failed_in_thread(slack, "events.csv", "not on Slack", "token was not sent")
    assert [call.status for call in slack.calls_to("download")] == [302]
    assert not received, "the bot followed the redirect"

    # The address works, so a bot that followed the redirect would have been seen above.
    async with aiohttp.ClientSession() as session, session.get(elsewhere) as response:
        assert response.status == 200
    assert [request.headers.get("Authorization") for request in received] == [None]


async def test_a_rate_limited_progress_edit_is_retried_and_ends_on_done(
    slack: SlackStandIn, start_bot: StartBot
) -> None:
    """A 429 on the progress message's final edit: retried after Retry-After; the job succeeds."""
    service = await start_bot(progress_interval_s=60)  # no live ticks: the next edit is "done"
    slack.add_file("F0RATELIM1", "events.csv", weeks_csv(3), chunk_size=128, chunk_delay_s=0.05)
    await share(slack, "F0RATELIM1")
    await slack.wait_for_call("download")  # the job is reading: the next edit is "done"
    slack.fail_next("chat.update", status=429, retry_after=0)
    [job] = await finished_jobs(service)
    assert job.status == "succeeded"

    start, thread = start_and_thread(slack, "events.csv")
    progress, *summary = thread
    edits = [call for call in slack.calls_to("chat.update") if call.args["ts"] == progress["ts"]]
    assert [call.status for call in edits] == [429, 200]
    assert edits[0].args == edits[1].args, "the same edit, sent again"
    assert progress["text"].startswith("Done (100%)")
    assert summary, "the weekly summary follows"
    assert ":white_check_mark:" in json.dumps(start["blocks"])


async def test_a_progress_edit_slack_refuses_is_skipped_and_the_job_succeeds(
    slack: SlackStandIn, start_bot: StartBot
) -> None:
    """chat.update answers internal_error to a live update: it is dropped; the job ends on Done."""
    service = await start_bot(progress_interval_s=0.05)
    # ~2 MB over ~1 s: a progress snapshot after the first 1 MB block, half a second before
    # the end, so the first edit is a live one.
    content = SAMPLE + SAMPLE_BODY * 5
    slack.add_file("F0UPDFAIL1", "events.csv", content, chunk_size=64 * 1024, chunk_delay_s=0.03)
    with structlog.testing.capture_logs() as logs:
        await share(slack, "F0UPDFAIL1")
        await slack.wait_for_call("download")  # the job is reading; no edit has been made
        slack.fail_next("chat.update", status=200, error="internal_error")
        [job] = await finished_jobs(service)
    assert job.status == "succeeded"

    start, thread = start_and_thread(slack, "events.csv")
    progress, *summary = thread
    edits = [call for call in slack.calls_to("chat.update") if call.args["ts"] == progress["ts"]]
    assert edits[0].args["text"].startswith("Processing"), "the refused edit was a live one"
    assert edits[-1].args["text"].startswith("Done (100%)")
    skipped = [entry for entry in logs if entry["event"] == "job.progress_update_failed"]
    assert len(skipped) == 1, logs
    refused = [entry for entry in logs if entry["event"] == "slack.api_error"]
    assert [(e["method"], e["error"]) for e in refused] == [("chat.update", "internal_error")]
    assert progress["text"].startswith("Done (100%)")
    assert summary
    assert ":white_check_mark:" in json.dumps(start["blocks"])
    assert {u["filename"] for u in slack.uploads.values() if u["completed"]} == {
        "weekly-revenue.png",
        "weekly-report.csv",
        "clinic-weekly.csv",
        "invalid-rows.csv",
    }


async def test_a_file_larger_than_files_info_said_is_stopped_at_the_limit(
    slack: SlackStandIn, start_bot: StartBot
) -> None:
    """files.info says 2 KB, the download goes past MAX_FILE_SIZE_MB: failed as too large."""
    service = await start_bot(max_file_size_bytes=ONE_MB)
    content = SAMPLE + SAMPLE_BODY * 3
    assert len(content) > ONE_MB
    slack.add_file("F0LIAR0001", "events.csv", content, size=2048)
    await share(slack, "F0LIAR0001")
    [job] = await finished_jobs(service)
    assert job.status == "failed"
    assert_failed_in_thread(slack, "events.csv", "larger than the 1 MB limit", "MAX_FILE_SIZE_MB")


async def test_a_failing_job_leaves_a_job_running_beside_it_alone(
    slack: SlackStandIn, bot: Service
) -> None:
    """A bad file fails while a good one is mid-download: the good one gets its full report."""
    slack.add_file("F0GOOD0001", "good.csv", SAMPLE, chunk_size=16 * 1024, chunk_delay_s=0.02)
    slack.add_file("F0BAD00001", "bad.csv", b"event_id,clinic_id\nE1,C1\n")
    await share(slack, "F0GOOD0001")
    await slack.wait_for_call("download")
    await share(slack, "F0BAD00001")
    good, bad = await finished_jobs(bot, 2)
    assert (good.source.name, good.status) == ("good.csv", "succeeded")
    assert (bad.source.name, bad.status) == ("bad.csv", "failed")
    assert good.started_at is not None
    assert bad.finished_at is not None
    assert good.finished_at is not None
    assert good.started_at < bad.finished_at < good.finished_at, "they ran side by side"

    bad_start, [bad_progress] = start_and_thread(slack, "bad.csv")
    assert "could not be processed" in bad_start["text"]
    assert "patient_id" in bad_progress["text"]
    good_start, (good_progress, *summary) = start_and_thread(slack, "good.csv")
    assert good_progress["text"].startswith("Done (100%)")
    assert "$305,272.95" in json.dumps([m.get("blocks") for m in summary])
    assert ":white_check_mark:" in json.dumps(good_start["blocks"])
    await slack.wait_for_call("files.completeUploadExternal")
    uploads = [u for u in slack.uploads.values() if u["completed"]]
    assert {u["filename"] for u in uploads} == {
        "weekly-revenue.png",
        "weekly-report.csv",
        "clinic-weekly.csv",
        "invalid-rows.csv",
    }
    assert all(u["thread_ts"] == good_start["ts"] for u in uploads)


SECRET = "PATIENT-SECRET"
SECRET_ROWS = "\n".join(
    [
        HEADER,
        f"E1,C1,{SECRET}-101,TREATMENT_COMPLETED,2024-01-02T10:00:00Z,cleaning,120.00",
        f"E2,C1,{SECRET}-102,TREATMENT_COMPLETED,2024-01-03T10:00:00Z,filling,not-money",
        f"E3,C1,{SECRET}-103,APPOINTMENT_SCHEDULED,yesterday,,",
        f",C1,{SECRET}-104,TREATMENT_COMPLETED,2024-01-04T10:00:00Z,cleaning,80.00",
        f"E5,C1,{SECRET}-105,TREATMENT_COMPLETED,2024-01-05T10:00:00Z,cleaning,90.00,extra",
        f"E6,C1,{SECRET}-106,TREATMENT_COMPLETED,2024-01-09T10:00:00Z,implants,1500.00",
    ]
)
NOT_UTF8 = utf8_then_latin1(
    f"E1,C1,{SECRET}-201,TREATMENT_COMPLETED,2024-01-02T10:00:00Z,cleaning,1.00",
    f"E2,C1,{SECRET}-202,TREATMENT_COMPLETED,2024-01-02T11:00:00Z,caf\u00e9,2.00",
)


async def test_no_patient_id_reaches_slack_or_the_logs(
    slack: SlackStandIn, start_bot: StartBot, caplog: pytest.LogCaptureFixture
) -> None:
    """Bad rows, and a file that fails: no message, upload or log line holds a patient id."""
    slack.add_file("F0SECRET01", "events.csv", (SECRET_ROWS + "\n").encode())
    slack.add_file("F0SECRET02", "latin1.csv", NOT_UTF8)
    with structlog.testing.capture_logs() as logs:
        service = await start_bot()
        await share(slack, "F0SECRET01")
        await share(slack, "F0SECRET02")
        first, second = await finished_jobs(service, 2)
        await slack.wait_for_call("files.completeUploadExternal")
    assert (first.status, second.status) == ("succeeded", "failed")
    assert first.report is not None
    assert first.report.rows_invalid == 4
    assert "row 40003 is not valid UTF-8" in str(second.error)

    seen_by_slack = json.dumps(
        {
            "calls": [call.args for call in slack.calls],
            "messages": [slack.messages(CHANNEL)]
            + [slack.thread(CHANNEL, m["ts"]) for m in slack.messages(CHANNEL)],
            "uploads": [u["content"].decode("latin-1") for u in slack.uploads.values()],
            "ephemerals": slack.ephemerals,
        }
    )
    assert "bad amount" in seen_by_slack  # the bad rows are reported, by row number
    assert SECRET not in seen_by_slack
    assert any(entry["event"] == "job.finished" for entry in logs)
    assert SECRET not in json.dumps(logs, default=str)
    assert SECRET not in caplog.text


async def test_a_refused_summary_still_leaves_the_files_and_the_outcome(
    slack: SlackStandIn, bot: Service
) -> None:
    """Slack refusing the summary post does not stop the CSV, the chart or the outcome line."""
    slack.add_file("F0REFUSE01", "events.csv", SAMPLE, chunk_size=64 * 1024, chunk_delay_s=0.05)
    await share(slack, "F0REFUSE01")
    await slack.wait_for_call("download")  # start and progress posted; the summary comes after
    slack.fail_next("chat.postMessage", status=200, error="invalid_blocks")
    [job] = await finished_jobs(bot)
    assert job.status == "succeeded"
    await slack.wait_for_call("files.completeUploadExternal")
    start = next(m for m in slack.messages(CHANNEL) if "events.csv" in m["text"])
    assert "see thread" in start["text"]

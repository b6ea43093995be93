"""Someone shares an events CSV in a channel; the thread tells the whole story."""

from __future__ import annotations

import json
from typing import Any

import aiohttp

from bot.app import Service
from bot.jobs.runner import JobRunner
from bot.slack.api import slack_client
from bot.slack.files import SlackDownloader
from bot.slack.intake import SlackContext, SlackJobs
from processing import analyze, to_clinic_csv, to_csv
from tests.integration.helpers import CHANNEL, SAMPLE, StartBot, finished_jobs, share, weeks_csv
from tests.standin.slack import BOT_TOKEN, BOT_USER_ID, SlackStandIn


async def test_a_shared_csv_gets_start_message_progress_summary_and_files(
    slack: SlackStandIn, bot: Service
) -> None:
    """One upload (two events) gives one job: start, progress reply, summary, files, outcome."""
    slack.add_file("F0SAMPLE1", "events-sample.csv", SAMPLE)
    await share(slack, "F0SAMPLE1")
    [job] = await finished_jobs(bot)
    assert job.status == "succeeded"
    await slack.wait_for_call("files.completeUploadExternal")

    top = [
        m for m in slack.messages(CHANNEL) if m.get("user") == BOT_USER_ID and not m.get("files")
    ]
    assert len(top) == 1, "exactly one start message"
    start = top[0]
    assert "events-sample.csv" in start["text"]
    assert "see thread" in start["text"].lower()
    assert job.id in json.dumps(start)

    thread = slack.thread(CHANNEL, start["ts"])
    progress, *rest = thread
    assert "100%" in progress["text"]
    summary_text = json.dumps([m.get("blocks") for m in rest])
    assert "$305,272.95" in summary_text  # the sample's total revenue
    uploads = [u for u in slack.uploads.values() if u["completed"]]
    assert {u["filename"] for u in uploads} == {
        "weekly-revenue.png",
        "weekly-report.csv",
        "clinic-weekly.csv",
        "invalid-rows.csv",
    }
    assert all(u["thread_ts"] == start["ts"] and u["channel_id"] == CHANNEL for u in uploads)
    by_name = {u["filename"]: u["content"] for u in uploads}
    assert by_name["weekly-report.csv"].decode() == to_csv(analyze(iter([SAMPLE])))
    assert by_name["weekly-revenue.png"].startswith(b"\x89PNG\r\n\x1a\n")
    report = analyze(iter([SAMPLE]))
    assert by_name["clinic-weekly.csv"].decode() == to_clinic_csv(report)
    invalid = by_name["invalid-rows.csv"].decode().splitlines()
    assert invalid[0] == "row,reason,column,detail"
    assert len(invalid) == 1 + report.rows_invalid  # every invalid row, not only the first 20
    downloads = slack.calls_to("download")
    assert len(downloads) == 1
    assert downloads[0].authorization == f"Bearer {BOT_TOKEN}"
    start_edits = [c for c in slack.calls_to("chat.update") if c.args["ts"] == start["ts"]]
    assert len(start_edits) == 1, "no edit that changes nothing: only the outcome"


async def test_redelivered_events_do_not_start_a_second_job(
    slack: SlackStandIn, bot: Service
) -> None:
    """Slack's retries of either event are acked and ignored."""
    slack.add_file("F0SAMPLE2", "events.csv", SAMPLE[:20_000])
    await share(slack, "F0SAMPLE2")
    retry = await slack.send_event(slack.file_shared_event("F0SAMPLE2"), retry_attempt=1)
    await slack.wait_ack(retry)
    await finished_jobs(bot)
    again = await slack.send_event(slack.file_share_event("F0SAMPLE2"), retry_attempt=2)
    await slack.wait_ack(again)
    assert len(bot.jobs.recent()) == 1
    assert len(slack.calls_to("download")) == 1


async def test_other_files_and_the_bots_own_uploads_are_ignored(
    slack: SlackStandIn, bot: Service
) -> None:
    """A PDF, and a CSV the bot itself uploaded, start nothing and post nothing."""
    slack.add_file("F0NOTCSV1", "minutes.pdf", b"%PDF-1.7", filetype="pdf")
    slack.add_file("F0BOTCSV1", "weekly-report.csv", b"a,b\n", user=BOT_USER_ID)
    await share(slack, "F0NOTCSV1")
    await share(slack, "F0BOTCSV1", user=BOT_USER_ID)
    # a later, real share proves the earlier events were fully handled before it
    slack.add_file("F0REAL001", "events.csv", SAMPLE[:5_000])
    await share(slack, "F0REAL001")
    [job] = await finished_jobs(bot)
    assert job.source.name == "events.csv"
    assert not slack.ephemerals
    assert len(slack.calls_to("download")) == 1


async def test_the_same_file_shared_in_two_channels_is_processed_in_each(
    slack: SlackStandIn, start_bot: StartBot
) -> None:
    """Once per (file, channel): a second channel gets its own report."""
    service = await start_bot()
    slack.add_file("F0TWICE01", "events.csv", SAMPLE[:5_000])
    await share(slack, "F0TWICE01")
    other = await slack.send_event(slack.file_shared_event("F0TWICE01", channel="C0OTHER"))
    await slack.wait_ack(other)
    jobs = await finished_jobs(service, 2)
    assert [job.status for job in jobs] == ["succeeded", "succeeded"]
    channels = {call.args["channel"] for call in slack.calls_to("chat.postMessage")}
    assert channels == {CHANNEL, "C0OTHER"}


async def test_every_other_message_event_is_acked_and_ignored(
    slack: SlackStandIn, bot: Service
) -> None:
    """Plain messages, edits and bot messages are acked (else Slack retries) and start nothing."""
    events: list[dict[str, Any]] = [
        {"type": "message", "channel": CHANNEL, "user": "UALICE", "text": "hello", "ts": "1.1"},
        {
            "type": "message",
            "subtype": "message_changed",
            "channel": CHANNEL,
            "ts": "1.2",
            "message": {"type": "message", "text": "hello again", "user": "UALICE", "ts": "1.1"},
        },
        {
            "type": "message",
            "subtype": "channel_join",
            "channel": CHANNEL,
            "user": "UBOB",
            "ts": "1.3",
        },
        {
            "type": "message",
            "subtype": "bot_message",
            "channel": CHANNEL,
            "bot_id": "BOTHER",
            "ts": "1.4",
        },
    ]
    for event in events:
        await slack.wait_ack(await slack.send_event({**event, "event_ts": event["ts"]}))
    assert not bot.jobs.recent()
    assert not [c for c in slack.calls if c.method.startswith(("chat.", "files."))]


async def test_a_share_whose_lookup_fails_is_picked_up_by_the_other_event(
    slack: SlackStandIn,
) -> None:
    """files.info failing for the first event does not lose the file: the second one runs it."""
    runner = JobRunner(progress_interval_s=60)
    async with aiohttp.ClientSession() as session:
        client = slack_client(BOT_TOKEN, slack.base_url)
        slack_jobs = SlackJobs(
            client=client,
            downloader=SlackDownloader(session, BOT_TOKEN, slack.base_url),
            jobs=runner,
            currency="USD",
            max_file_size_bytes=1 << 30,
        )
        context = SlackContext(bot_user_id=BOT_USER_ID, bot_id="BBOT")
        slack.add_file("F0RETRY01", "events.csv", SAMPLE[:20_000])
        slack.fail_next("files.info", status=200, error="internal_error")
        for _ in range(2):  # file_shared, then the message event of the same upload
            await slack_jobs.on_share(
                file_id="F0RETRY01", channel=CHANNEL, user="UALICE", context=context
            )
        await runner.wait_until(lambda: all(job.done.is_set() for job in runner.recent()), 30)
    [job] = runner.recent()
    assert job.status == "succeeded"
    assert len(slack.calls_to("files.info")) == 2
    assert len(slack.calls_to("download")) == 1


async def test_a_file_without_invalid_rows_gets_no_invalid_rows_file(
    slack: SlackStandIn, bot: Service
) -> None:
    """invalid-rows.csv comes only when there are invalid rows."""
    slack.add_file("F0CLEAN001", "clean.csv", weeks_csv(3))
    await share(slack, "F0CLEAN001")
    [job] = await finished_jobs(bot)
    assert job.status == "succeeded"
    assert job.report is not None
    assert job.report.rows_invalid == 0
    uploads = [u["filename"] for u in slack.uploads.values() if u["completed"]]
    assert sorted(uploads) == ["clinic-weekly.csv", "weekly-report.csv", "weekly-revenue.png"]

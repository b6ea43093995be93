"""Someone types /process-events: an ack at once, then a job, or an ephemeral word on why not."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from bot.app import Service
from tests.integration.helpers import CHANNEL, SAMPLE, finished_jobs, share, weeks_csv
from tests.standin.slack import BOT_USER_ID, SlackStandIn

# Slack's limit. Only the ack test holds the bot to it: elsewhere a busy machine must not
# turn a slow ack into a failure about something else.
ACK_DEADLINE_S = 3.0


async def command_reply(slack: SlackStandIn, text: str) -> dict[str, Any]:
    """Sends the command, waits for its ack, then for the one reply POSTed to response_url."""
    envelope = await slack.send_command(text)
    await slack.wait_ack(envelope)
    [call] = await slack.wait_for_call("response_url")
    return call.args


def bot_messages(slack: SlackStandIn, channel: str = CHANNEL) -> list[dict[str, Any]]:
    return [m for m in slack.messages(channel) if m.get("user") == BOT_USER_ID]


async def test_the_command_is_acked_within_3_seconds_before_any_slow_work(
    slack: SlackStandIn, bot: Service
) -> None:
    """The ack comes at once, although files.info is rate-limited and the download crawls."""
    slack.add_file("F0SLOWCMD1", "events.csv", weeks_csv(2), chunk_size=64, chunk_delay_s=0.02)
    slack.fail_next("files.info", status=429, retry_after=1)  # its retry waits 1 s or more
    envelope = await slack.send_command("F0SLOWCMD1")
    await slack.wait_ack(envelope, timeout=ACK_DEADLINE_S)
    assert len(slack.calls_to("files.info")) <= 1, "acked only after looking the file up"
    assert not slack.calls_to("chat.postMessage")
    [job] = await finished_jobs(bot)
    assert job.status == "succeeded"
    assert [call.status for call in slack.calls_to("files.info")] == [429, 200]
    assert not slack.responses, "a started job needs no ephemeral reply"


@pytest.mark.parametrize(
    "reference",
    [
        "https://clinic.slack.com/files/UALICE/F0LINK0001/events.csv",
        "<https://clinic.slack.com/files/UALICE/F0LINK0001/events.csv|events.csv>",
        "F0LINK0001",
        "  F0LINK0001  ",
    ],
    ids=["bare-link", "slack-link-form", "file-id", "file-id-with-spaces"],
)
async def test_a_file_link_or_id_processes_that_file_in_this_channel(
    slack: SlackStandIn, bot: Service, reference: str
) -> None:
    """A link (bare or <url|label>) or a file ID: that file's report lands where the command ran."""
    slack.add_file("F0LINK0001", "events.csv", weeks_csv(3), channel="C0ELSEWHERE")
    slack.add_file("F0DECOY001", "newer.csv", weeks_csv(1))  # the latest CSV here: not chosen
    envelope = await slack.send_command(reference)
    await slack.wait_ack(envelope)
    [job] = await finished_jobs(bot)
    assert job.status == "succeeded"
    assert job.source.name == "events.csv"
    [download] = slack.calls_to("download")
    assert download.args["file_id"] == "F0LINK0001"
    [start] = [m for m in bot_messages(slack) if not m.get("files")]
    assert "events.csv" in start["text"]
    assert "see thread" in start["text"].lower()
    assert not bot_messages(slack, "C0ELSEWHERE")
    assert not slack.responses


async def test_no_argument_processes_the_latest_csv_a_person_shared_here(
    slack: SlackStandIn, bot: Service
) -> None:
    """History, newest first: a PDF, the bot's own report CSV, then a person's CSV: that one."""
    slack.add_file("F0OLDCSV01", "old-events.csv", weeks_csv(1))
    slack.add_file("F0PERSON01", "events-march.csv", weeks_csv(2), user="UBOB")
    slack.post_user_message(CHANNEL, "here is the March export")
    slack.add_file("F0BOTCSV01", "weekly-report.csv", b"week_start,revenue\n", user=BOT_USER_ID)
    slack.add_file("F0NEWPDF01", "minutes.pdf", b"%PDF-1.7", filetype="pdf")
    envelope = await slack.send_command("")
    await slack.wait_ack(envelope)
    [job] = await finished_jobs(bot)
    assert job.status == "succeeded"
    assert job.source.name == "events-march.csv"
    [download] = slack.calls_to("download")
    assert download.args["file_id"] == "F0PERSON01"
    assert [c.args["channel"] for c in slack.calls_to("conversations.history")] == [CHANNEL]
    assert not slack.responses


async def test_an_explicit_command_reprocesses_a_file_already_shared(
    slack: SlackStandIn, bot: Service
) -> None:
    """Share, then /process-events on the same file: a second job, a second report."""
    slack.add_file("F0AGAIN001", "events.csv", SAMPLE[:20_000])
    await share(slack, "F0AGAIN001")
    await finished_jobs(bot)
    envelope = await slack.send_command("F0AGAIN001")
    await slack.wait_ack(envelope)
    first, second = await finished_jobs(bot, 2)
    assert (first.status, second.status) == ("succeeded", "succeeded")
    assert first.id != second.id
    assert len(slack.calls_to("download")) == 2
    starts = [m for m in bot_messages(slack) if not m.get("files")]
    assert len(starts) == 2
    for job in (first, second):
        assert sum(job.id in json.dumps(m) for m in starts) == 1, "one start message per job"


async def test_help_is_an_ephemeral_usage_and_posts_nothing(
    slack: SlackStandIn, bot: Service
) -> None:
    """`/process-events help`: usage only the typist sees; the channel stays quiet."""
    reply = await command_reply(slack, "help")
    assert reply["response_type"] == "ephemeral"
    text = str(reply["text"])
    # Escaped: Slack would read a bare <...> as a link or a mention.
    assert "/process-events &lt;file link or ID&gt;" in text
    assert "s3://" in text
    assert "<" not in text.replace("&lt;", "")
    assert not slack.calls_to("chat.postMessage")
    assert not slack.calls_to("files.info")
    assert not bot.jobs.recent()


def _unknown_file(slack: SlackStandIn) -> str:
    return "F0NOSUCH01"


def _not_a_csv(slack: SlackStandIn) -> str:
    slack.add_file("F0PDF00001", "minutes.pdf", b"%PDF-1.7", filetype="pdf")
    return "<https://clinic.slack.com/files/UALICE/F0PDF00001/minutes.pdf|minutes.pdf>"


def _too_large(slack: SlackStandIn) -> str:
    slack.add_file("F0HUGE0001", "huge.csv", weeks_csv(1), size=5 * 1024**3)
    return "F0HUGE0001"


def _no_csv_in_history(slack: SlackStandIn) -> str:
    slack.post_user_message(CHANNEL, "morning all")
    slack.add_file("F0PDF00002", "minutes.pdf", b"%PDF-1.7", filetype="pdf")
    slack.add_file("F0BOTCSV02", "weekly-report.csv", b"week_start\n", user=BOT_USER_ID)
    return ""


def _not_in_channel(slack: SlackStandIn) -> str:
    slack.add_file("F0PRIV0001", "events.csv", weeks_csv(1))
    slack.set_not_in_channel(CHANNEL)
    return ""


def _s3_not_configured(slack: SlackStandIn) -> str:
    return "s3://clinic-exports/2024/events.csv"


def _not_a_file_reference(slack: SlackStandIn) -> str:
    return "hello"


@pytest.mark.parametrize(
    ("arrange", "says"),
    [
        (_unknown_file, ["can't find that file", "share it in this channel"]),
        (_not_a_csv, ["minutes.pdf is not a CSV", "Export the events as .csv"]),
        (_too_large, ["huge.csv", "over the 1,024 MB limit", "split the export"]),
        (_no_csv_in_history, ["found no CSV", "Share the export here"]),
        (_not_in_channel, ["not in this channel", "/invite @clinic-events"]),
        (_s3_not_configured, ["S3 is not set up", "S3_BUCKET"]),
        (_not_a_file_reference, ["doesn't look like a Slack file", "/process-events help"]),
    ],
    ids=[
        "unknown-file",
        "not-a-csv",
        "too-large-by-files-info",
        "no-csv-in-history",
        "bot-not-in-channel",
        "s3-not-configured",
        "not-a-file-reference",
    ],
)
async def test_a_problem_gets_an_ephemeral_answer_and_nothing_in_the_channel(
    slack: SlackStandIn, bot: Service, arrange: Callable[[SlackStandIn], str], says: list[str]
) -> None:
    """Each problem: one ephemeral reply saying what to do; no job, no message, no download."""
    reply = await command_reply(slack, arrange(slack))
    assert reply["response_type"] == "ephemeral"
    assert reply.get("replace_original") is False
    for words in says:
        assert words in str(reply["text"]), reply["text"]
    assert not slack.calls_to("chat.postMessage")
    assert not slack.calls_to("download")
    assert not slack.ephemerals  # the answer went to response_url, not into the channel
    assert not bot.jobs.recent()


async def test_a_file_link_in_a_channel_without_the_bot_says_to_invite_it(
    slack: SlackStandIn, bot: Service
) -> None:
    """The bot learns it is not a member only when Slack refuses its start message: same answer."""
    slack.add_file("F0OUTSIDE1", "events.csv", weeks_csv(1), channel="C0OTHER")
    slack.set_not_in_channel(CHANNEL)
    reply = await command_reply(slack, "F0OUTSIDE1")
    assert reply["response_type"] == "ephemeral"
    assert "/invite @clinic-events" in str(reply["text"])
    assert not bot_messages(slack)
    assert not slack.calls_to("download")
    assert not bot.jobs.recent()

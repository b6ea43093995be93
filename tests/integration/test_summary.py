"""The weekly summary as a user reads it in the thread: the headline, the weeks, the files."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from bot.app import Service
from tests.helpers import GatedChart
from tests.integration.helpers import CHANNEL, SAMPLE, finished_jobs, share, weeks_csv
from tests.standin.slack import BOT_USER_ID, SlackStandIn


async def thread_after_progress(slack: SlackStandIn, file_name: str) -> list[dict[str, Any]]:
    await slack.wait_for_call("files.completeUploadExternal")
    start = next(
        m
        for m in slack.messages(CHANNEL)
        if m.get("user") == BOT_USER_ID and file_name in m["text"]
    )
    progress, *rest = slack.thread(CHANNEL, start["ts"])
    assert "100%" in progress["text"]
    return rest


async def test_the_thread_reads_headline_then_weeks_then_files(
    slack: SlackStandIn, bot: Service
) -> None:
    """After the progress reply: the headline message, the weeks as a table, then the chart
    and the CSVs; never more than three summary messages."""
    slack.add_file("F0SAMPLE9", "events-sample.csv", SAMPLE)
    await share(slack, "F0SAMPLE9")
    await finished_jobs(bot)
    headline, weeks, files = await thread_after_progress(slack, "events-sample.csv")

    assert headline["blocks"][0]["text"]["text"] == "Weekly report: events-sample.csv"
    assert headline["blocks"][1]["text"]["text"].startswith("*Total revenue: $305,272.95*")
    assert "▼ 28.8% vs 16–22 Dec 2024" in headline["blocks"][2]["text"]["text"]
    [table] = [block for block in weeks["blocks"] if block["type"] == "table"]
    assert [cell["text"] for cell in table["rows"][1]][:3] == [
        "30 Dec 2024 – 5 Jan 2025",
        "$453.27",
        "–",
    ]
    assert len(table["rows"]) == 1 + 26
    assert [file["name"] for file in files["files"]] == [
        "weekly-revenue.png",
        "weekly-report.csv",
        "clinic-weekly.csv",
        "invalid-rows.csv",
    ]
    posts = slack.calls_to("chat.postMessage")
    assert all(call.status == 200 for call in posts)


async def test_the_summary_is_out_before_the_chart_is_drawn(
    slack: SlackStandIn, bot: Service, gated_chart: GatedChart
) -> None:
    """The headline and the weeks are in the thread while the chart is still being drawn;
    the files, then "see thread" on the start message, follow once it is."""
    slack.add_file("F0GATED01", "events-sample.csv", SAMPLE)
    await share(slack, "F0GATED01")
    assert await asyncio.to_thread(gated_chart.drawing.wait, 30)

    start = next(m for m in slack.messages(CHANNEL) if "events-sample.csv" in m["text"])
    progress, headline, weeks = slack.thread(CHANNEL, start["ts"])
    assert "100%" in progress["text"]
    assert headline["blocks"][1]["text"]["text"].startswith("*Total revenue: $305,272.95*")
    assert any(block["type"] == "table" for block in weeks["blocks"])
    assert not slack.calls_to("files.completeUploadExternal")
    assert "see thread" not in start["text"]

    gated_chart.release.set()
    await finished_jobs(bot)
    *_, files = slack.thread(CHANNEL, start["ts"])
    assert [file["name"] for file in files["files"]][:2] == [
        "weekly-revenue.png",
        "weekly-report.csv",
    ]
    start = next(m for m in slack.messages(CHANNEL) if "events-sample.csv" in m["text"])
    assert "see thread" in start["text"]


async def test_a_workspace_that_refuses_tables_gets_the_weeks_as_text(
    slack: SlackStandIn, bot: Service
) -> None:
    """Slack answers invalid_blocks to the table: the same weeks follow as section text, and
    the thread still ends with the files."""
    slack.refuse_tables = True
    slack.add_file("F0WEEKS60", "sixty-weeks.csv", weeks_csv(60))
    await share(slack, "F0WEEKS60")
    [job] = await finished_jobs(bot)
    assert job.report is not None
    assert len(job.report.weeks) == 60
    headline, weeks, files = await thread_after_progress(slack, "sixty-weeks.csv")

    tried = [
        call
        for call in slack.calls_to("chat.postMessage")
        if any(block.get("type") == "table" for block in call.args.get("blocks") or [])
    ]
    assert len(tried) == 1  # tried once, refused, then the text
    assert all(block["type"] != "table" for block in weeks["blocks"])
    text = json.dumps(weeks["blocks"], ensure_ascii=False)
    assert "*17–23 Feb 2025*  $477.03 · 3 treatments" in text  # the newest week first
    assert "Newest 26 of 60 weeks; weekly-report.csv below has all of them" in text
    assert headline["blocks"][0]["type"] == "header"
    assert files.get("files")

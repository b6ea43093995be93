"""Slack mode with SLACK_CHANNEL: a web upload is reported there like a shared file."""

from __future__ import annotations

import json

import aiohttp

from tests.integration.helpers import CHANNEL, SAMPLE, StartBot, finished_jobs
from tests.standin.slack import SlackStandIn


async def test_a_web_upload_reports_to_the_configured_channel(
    slack: SlackStandIn, start_bot: StartBot
) -> None:
    """Start message, threaded progress, summary and files, from a browser upload."""
    service = await start_bot(slack_channel=CHANNEL)
    form = aiohttp.FormData()
    form.add_field("file", SAMPLE, filename="from-the-web.csv", content_type="text/csv")
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"http://127.0.0.1:{service.port}/api/upload", data=form) as response,
    ):
        assert response.status == 202
    [job] = await finished_jobs(service)
    assert job.status == "succeeded"
    await slack.wait_for_call("files.completeUploadExternal")

    start = next(m for m in slack.messages(CHANNEL) if "from-the-web.csv" in m["text"])
    assert "see thread" in start["text"]
    progress, *summary = (m for m in slack.thread(CHANNEL, start["ts"]) if not m.get("files"))
    assert "100%" in progress["text"]
    assert "$305,272.95" in json.dumps(summary)
    files = [u["filename"] for u in slack.uploads.values() if u["thread_ts"] == start["ts"]]
    assert sorted(files) == [
        "clinic-weekly.csv",
        "invalid-rows.csv",
        "weekly-report.csv",
        "weekly-revenue.png",
    ]


async def test_without_slack_channel_a_web_upload_stays_out_of_slack(
    slack: SlackStandIn, start_bot: StartBot
) -> None:
    """No SLACK_CHANNEL: the job API alone reports it; Slack sees nothing."""
    service = await start_bot()
    form = aiohttp.FormData()
    form.add_field("file", SAMPLE[:20_000], filename="quiet.csv", content_type="text/csv")
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"http://127.0.0.1:{service.port}/api/upload", data=form) as response,
    ):
        assert response.status == 202
    [job] = await finished_jobs(service)
    assert job.status == "succeeded"
    assert not slack.calls_to("chat.postMessage")

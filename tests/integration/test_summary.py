"""The weekly summary as Slack accepts it: every week, within Block Kit's limits."""

from __future__ import annotations

import json

from bot.app import Service
from tests.integration.conftest import CHANNEL, finished_jobs, weeks_csv
from tests.integration.test_share import share
from tests.standin.slack import SlackStandIn


async def test_a_60_week_file_splits_its_summary_over_messages_slack_accepts(
    slack: SlackStandIn, bot: Service
) -> None:
    """60 weeks: several messages, none rejected (the stand-in enforces the limits), no week lost."""
    slack.add_file("F0WEEKS60", "sixty-weeks.csv", weeks_csv(60))
    await share(slack, "F0WEEKS60")
    [job] = await finished_jobs(bot)
    assert job.report is not None and len(job.report.weeks) == 60

    posts = slack.calls_to("chat.postMessage")
    assert all(call.status == 200 and call.args.get("blocks") is not None for call in posts)
    assert not [c for c in slack.calls if c.method.startswith("chat.") and c.status != 200]
    start = next(m for m in slack.messages(CHANNEL) if "sixty-weeks.csv" in m["text"])
    summary = [m for m in slack.thread(CHANNEL, start["ts"])[1:] if m.get("blocks")]
    assert len(summary) >= 2
    week_ids = [
        block["block_id"]
        for message in summary
        for block in message["blocks"]
        if str(block.get("block_id", "")).startswith("week-")
    ]
    expected = [f"week-{week.week_start.isoformat()}" for week in job.report.weeks]
    assert week_ids == expected
    for message in summary:
        assert len(message["blocks"]) <= 50
    assert "Week of 1\u20137 Jan 2024" in json.dumps(summary[0], ensure_ascii=False)

"""The progress message: one reply, edited in place, no more often than the interval."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

from tests import generate
from tests.integration.helpers import CHANNEL, StartBot, finished_jobs, share
from tests.standin.slack import SlackStandIn

INTERVAL_S = 0.3


async def test_a_slow_download_shows_several_updates_spaced_by_the_interval(
    slack: SlackStandIn, start_bot: StartBot, tmp_path: Path
) -> None:
    """A 4 MB file arriving over ~2 s: several chat.update calls, never closer than the interval."""
    path = tmp_path / "events.csv"
    generate.write_events(path, rows=35_000)
    content = path.read_bytes()
    slack.add_file("F0SLOW001", "events.csv", content, chunk_size=64 * 1024, chunk_delay_s=0.03)
    service = await start_bot(progress_interval_s=INTERVAL_S)
    await share(slack, "F0SLOW001")
    [job] = await finished_jobs(service)
    assert job.status == "succeeded"

    start = next(m for m in slack.messages(CHANNEL) if "events.csv" in m["text"])
    progress = slack.thread(CHANNEL, start["ts"])[0]
    updates = [
        call
        for call in slack.calls_to("chat.update")
        if call.args["ts"] == progress["ts"] and call.status == 200
    ]
    live = [call for call in updates if "Processing" in call.args["text"]]
    assert len(live) >= 2, [call.args["text"] for call in updates]
    times = [call.at for call in live]
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert min(gaps) >= INTERVAL_S * 0.9, gaps
    percents = [json.dumps(call.args["blocks"]) for call in live]
    assert any("%" in text for text in percents)
    assert "100%" in updates[-1].args["text"]
    thread = slack.thread(CHANNEL, start["ts"])
    status_messages = [
        m for m in thread if m["text"].startswith(("Processing", "Done", "Waiting", "Starting"))
    ]
    assert len(status_messages) == 1, "updates edit the one progress message, never add one"

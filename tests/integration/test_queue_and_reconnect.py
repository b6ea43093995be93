"""Jobs wait their turn, and survive Slack moving the socket."""

from __future__ import annotations

import json

from tests.integration.helpers import CHANNEL, SAMPLE, StartBot, finished_jobs, share
from tests.standin.slack import SlackStandIn


async def test_with_one_slot_the_second_job_queues_and_runs_after_the_first(
    slack: SlackStandIn, start_bot: StartBot
) -> None:
    """JOB_CONCURRENCY=1: the second start message shows its queue position; it runs next."""
    service = await start_bot(job_concurrency=1)
    slack.add_file("F0FIRST01", "first.csv", SAMPLE, chunk_size=16 * 1024, chunk_delay_s=0.02)
    slack.add_file("F0SECOND1", "second.csv", SAMPLE[:50_000])
    await share(slack, "F0FIRST01")
    await slack.wait_for_call("download")
    await share(slack, "F0SECOND1")
    first, second = await finished_jobs(service, 2)
    assert (first.status, second.status) == ("succeeded", "succeeded")
    assert second.started_at is not None
    assert first.finished_at is not None
    assert second.started_at >= first.finished_at

    announced = [
        call.args
        for call in slack.calls_to("chat.postMessage")
        if "second.csv" in call.args.get("text", "") and not call.args.get("thread_ts")
    ]
    assert len(announced) == 1
    assert "position 1" in announced[0]["text"]
    start = next(m for m in slack.messages(CHANNEL) if "second.csv" in m["text"])
    assert "position" not in start["text"]  # rewritten to the outcome
    waiting = next(
        call.args["text"]
        for call in slack.calls_to("chat.postMessage")
        if call.args.get("thread_ts") == start["ts"]
    )
    assert "Waiting for a free slot" in waiting


async def test_a_disconnect_mid_job_reconnects_and_the_job_still_finishes(
    slack: SlackStandIn, start_bot: StartBot
) -> None:
    """Slack's `disconnect` message: the client reconnects; the running job completes."""
    service = await start_bot()
    slack.add_file("F0DISCON1", "events.csv", SAMPLE, chunk_size=16 * 1024, chunk_delay_s=0.02)
    await share(slack, "F0DISCON1")
    await slack.wait_for_call("download")
    await slack.disconnect()
    await slack.wait_for_connection(2)
    [job] = await finished_jobs(service)
    assert job.status == "succeeded"
    assert len(slack.calls_to("apps.connections.open")) >= 2

    help_request = await slack.send_command("help")  # the new socket delivers and acks
    await slack.wait_ack(help_request)
    await slack.wait_until(lambda: len(slack.responses) == 1)
    assert "/process-events" in json.dumps(slack.responses[0])
    assert await service.slack_state() == "connected"

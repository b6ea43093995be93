"""SIGTERM while jobs run: finish within the grace period, otherwise say they were interrupted."""

from __future__ import annotations

import json

from tests.integration.helpers import CHANNEL, SAMPLE, StartBot, finished_jobs, share
from tests.standin.slack import SlackStandIn


async def test_a_job_that_outlasts_the_grace_period_is_marked_interrupted(
    slack: SlackStandIn, start_bot: StartBot
) -> None:
    """The running job fails with "interrupted by shutdown" in its thread; a queued one too."""
    service = await start_bot(shutdown_grace_s=0.2, job_concurrency=1)
    slack.add_file("F0LONG001", "long.csv", SAMPLE, chunk_size=4 * 1024, chunk_delay_s=0.1)
    slack.add_file("F0QUEUED1", "queued.csv", SAMPLE[:10_000])
    await share(slack, "F0LONG001")
    await slack.wait_for_call("download")
    await share(slack, "F0QUEUED1")
    await service.jobs.wait_until(lambda: len(service.jobs.recent()) == 2, 10)

    await service.stop()

    running, queued = await finished_jobs(service, 2)
    for job in (running, queued):
        assert job.status == "failed"
        assert job.error is not None
        assert "interrupted by shutdown" in job.error
    for name in ("long.csv", "queued.csv"):
        start = next(m for m in slack.messages(CHANNEL) if name in m["text"])
        assert "could not be processed" in start["text"]
        progress = slack.thread(CHANNEL, start["ts"])[0]
        assert "interrupted by shutdown" in json.dumps(progress)


async def test_a_job_that_fits_in_the_grace_period_finishes(
    slack: SlackStandIn, start_bot: StartBot
) -> None:
    """Shutdown waits for a running job that finishes in time, and its report is posted."""
    service = await start_bot(shutdown_grace_s=30)
    slack.add_file("F0SHORT01", "short.csv", SAMPLE, chunk_size=64 * 1024, chunk_delay_s=0.05)
    await share(slack, "F0SHORT01")
    await slack.wait_for_call("download")
    await service.stop()
    [job] = await finished_jobs(service)
    assert job.status == "succeeded"
    assert slack.calls_to("files.completeUploadExternal")


async def test_new_work_is_refused_politely_while_shutting_down(
    slack: SlackStandIn, start_bot: StartBot
) -> None:
    """A command during shutdown gets an ephemeral "restarting" answer, no job."""
    service = await start_bot()
    service.jobs.accepting = False  # the state stop() puts the runner in first
    slack.add_file("F0LATE001", "late.csv", SAMPLE[:5_000])
    request = await slack.send_command("F0LATE001")
    await slack.wait_ack(request)
    await slack.wait_until(lambda: len(slack.responses) == 1)
    assert "restarting" in json.dumps(slack.responses[0])
    assert not service.jobs.recent()
    assert not slack.calls_to("chat.postMessage")

"""Scale-out: `serve` instances record and queue jobs, `worker` processes run them, over
SQS, DynamoDB and S3 (moto's server, real HTTP) and the Slack stand-in. Every process is a
real subprocess; failures are real signals."""

from __future__ import annotations

import json
from typing import Any

import aiohttp

from tests.aws import ScaleOut
from tests.integration.helpers import (
    CHANNEL,
    SAMPLE,
    cluster,
    finished,
    share,
    start_and_thread,
    weeks_csv,
)
from tests.processes import Process, wait_until
from tests.standin.slack import BOT_USER_ID, SlackStandIn

SHARES = 20


async def wait_finished(processes: list[Process], count: int, timeout: float = 120) -> None:
    await wait_until(processes, lambda: len(finished(processes)) >= count, timeout)


async def share_across(slack: SlackStandIn, file_id: str) -> None:
    """The two events of one upload, each to a different `serve` instance, as Slack may."""
    first = await slack.send_event(slack.file_shared_event(file_id), connection=0)
    second = await slack.send_event(slack.file_share_event(file_id), connection=1)
    await slack.wait_ack(first)
    await slack.wait_ack(second)


async def test_twenty_shares_over_two_serves_and_two_workers_each_run_once(
    slack: SlackStandIn, scale_out: ScaleOut
) -> None:
    """20 shares, each event pair split across two `serve` instances: 20 jobs, each run once
    by one of two workers, each thread with one start message, one summary, one set of
    files; the job table decided every race."""
    for n in range(SHARES):
        slack.add_file(f"F0SHARE{n:03d}", f"clinic-{n:02d}.csv", weeks_csv(3 + n % 4))
    async with cluster(slack, scale_out, serves=2, workers=2) as (serving, working):
        for n in range(SHARES):
            await share_across(slack, f"F0SHARE{n:03d}")
        await wait_finished(working, SHARES)
        done = finished(working)
        assert len(done) == SHARES
        assert all(line["status"] == "succeeded" for line in done)
        assert len({line["job_id"] for line in done}) == SHARES
        assert all(finished(working).count(line) == 1 for line in done)
        assert all(process.events("job.started") for process in working), "both workers ran jobs"
        queued = sum(len(process.events("job.queued")) for process in serving)
        assert queued == SHARES  # the second event of each pair found the share taken
        await slack.wait_until(
            lambda: len(slack.calls_to("files.completeUploadExternal")) == SHARES
        )
    for n in range(SHARES):
        _, [progress, *replies] = start_and_thread(slack, f"clinic-{n:02d}.csv")
        assert "100%" in progress["text"]
        assert len([m for m in replies if m.get("blocks")]) == 2
        assert len([m for m in replies if m.get("files")]) == 1
    tops = [
        m for m in slack.messages(CHANNEL) if m.get("user") == BOT_USER_ID and not m.get("files")
    ]
    assert len(tops) == SHARES


async def test_a_killed_workers_job_is_taken_over_with_one_summary(
    slack: SlackStandIn, scale_out: ScaleOut
) -> None:
    """SIGKILL on the worker running a job: its lease lapses, the other worker takes the job
    over from the start in the same thread; one summary. A duplicate message for the finished
    job changes nothing."""
    slack.add_file("F0TAKEOVER", "takeover.csv", SAMPLE, chunk_size=4 * 1024, chunk_delay_s=0.05)
    async with cluster(slack, scale_out, serves=1, workers=2, WORKER_LEASE_SECONDS="3") as (
        _,
        working,
    ):
        await share(slack, "F0TAKEOVER")
        started = await first_to_log(working, "job.started")
        victim = next(p for p in working if p.events("job.started"))
        survivor = next(p for p in working if p is not victim)
        await victim.kill()
        took = await survivor.wait_event("worker.took_over", timeout=60)
        assert took["job_id"] == started["job_id"]
        done = await survivor.wait_event("job.finished", timeout=90)
        assert (done["status"], done["attempt"]) == ("succeeded", 2)
        await slack.wait_for_call("files.completeUploadExternal")

        scale_out.sqs.send_message(
            QueueUrl=scale_out.queue_url, MessageBody=json.dumps({"job_id": done["job_id"]})
        )
        await survivor.wait_event("worker.duplicate_dropped", timeout=30)
        async with aiohttp.ClientSession() as http, http.get(survivor.url + "metrics") as response:
            exposition = await response.text()
        assert "clinic_events_takeovers_total 1.0" in exposition
        assert "clinic_events_duplicate_messages_total 1.0" in exposition
        assert 'clinic_events_worker_jobs_total{status="succeeded",worker=' in exposition
        assert 'clinic_events_queue_messages{state="visible"}' in exposition
    _, [_, *replies] = start_and_thread(slack, "takeover.csv")
    assert len([m for m in replies if m.get("blocks")]) == 2
    assert len([m for m in replies if m.get("files")]) == 1
    assert len(slack.calls_to("files.completeUploadExternal")) == 1


async def test_a_worker_stopped_with_sigterm_hands_its_job_back(
    slack: SlackStandIn, scale_out: ScaleOut
) -> None:
    """SIGTERM with a short grace period: the job goes back to the queue at once (its
    attempt not counted) and the other worker runs it to the end."""
    slack.add_file("F0HANDBACK", "handback.csv", SAMPLE, chunk_size=4 * 1024, chunk_delay_s=0.05)
    async with cluster(slack, scale_out, serves=1, workers=2, SHUTDOWN_GRACE_SECONDS="0.5") as (
        _,
        working,
    ):
        await share(slack, "F0HANDBACK")
        await first_to_log(working, "job.started")
        leaving = next(p for p in working if p.events("job.started"))
        staying = next(p for p in working if p is not leaving)
        assert await leaving.stop() == 0
        assert leaving.events("job.handed_back")
        done = await staying.wait_event("job.finished", timeout=90)
        assert (done["status"], done["attempt"]) == ("succeeded", 1)
        assert not staying.events("worker.took_over")  # handed back, not taken over
    _, [progress, *replies] = start_and_thread(slack, "handback.csv")
    assert "100%" in progress["text"]
    assert len([m for m in replies if m.get("blocks")]) == 2


async def first_to_log(processes: list[Process], event: str) -> dict[str, Any]:
    await wait_until(processes, lambda: any(process.events(event) for process in processes))
    return next(process.events(event)[0] for process in processes if process.events(event))


async def test_a_web_upload_is_staged_run_by_a_worker_and_shown_by_any_serve(
    slack: SlackStandIn, scale_out: ScaleOut
) -> None:
    """Uploaded to one `serve`: staged in S3, run by a worker, its report answered by both
    `serve`s (not the queued copy the first one made), its chart by the other, from the table
    and S3; the staged object is gone afterwards."""
    async with (
        cluster(slack, scale_out, serves=2, workers=1) as (serving, working),
        aiohttp.ClientSession() as http,
    ):
        form = aiohttp.FormData()
        form.add_field("file", SAMPLE, filename="web.csv", content_type="text/csv")
        async with http.post(serving[0].url + "api/upload", data=form) as response:
            assert response.status == 202
            job_id = (await response.json())["job_id"]
        await working[0].wait_event("job.finished", job_id=job_id, timeout=60)
        for serve in serving:  # the one that took the upload (and queued it) too
            async with http.get(f"{serve.url}api/jobs/{job_id}") as response:
                job = await response.json()
            assert job["status"] == "succeeded"
            assert job["report"]["revenue"] == "305272.95"
        async with http.get(f"{serving[1].url}api/jobs/{job_id}/chart.png") as response:
            assert (await response.read()).startswith(b"\x89PNG")
        async with http.get(serving[1].url + "api/jobs") as response:
            assert [listed["id"] for listed in (await response.json())["jobs"]] == [job_id]
    staged = scale_out.s3.list_objects_v2(Bucket=scale_out.env["S3_BUCKET"], Prefix="uploads/")
    assert staged.get("KeyCount", 0) == 0
    reports = scale_out.s3.list_objects_v2(Bucket=scale_out.env["S3_BUCKET"], Prefix="reports/")
    assert f"reports/{job_id}.json" in [item["Key"] for item in reports["Contents"]]

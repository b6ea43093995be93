"""Scale-out through a DynamoDB outage, made for real: every process reaches DynamoDB (moto's
server) through a TCP proxy that the test stops and starts again. Jobs running through the
outage hold their messages and save their outcomes when the store is back; jobs whose
messages went to the dead-letter queue meanwhile are taken up by the sweeper. Every job ends
exactly once, with one summary.

Scaled down: a queue visibility of 4 s and a lease of 3 s stand for the README's 180 s, so
that an outage of 12 s (a few minutes there) sends waiting messages through their three
receives to the dead-letter queue, and one of 30 s (ten minutes there) holds a job's
outcome for as long as it lasts."""

from __future__ import annotations

import asyncio
import contextlib
import time
from urllib.parse import urlsplit

import pytest

from tests.aws import ScaleOut, create_scale_out
from tests.integration.conftest import SAMPLE
from tests.integration.test_restart import slack_env, thread_of
from tests.integration.test_scale_out import cluster, finished, share_across_one
from tests.processes import serve_process, wait_until
from tests.standin.slack import SlackStandIn
from tests.tcp_proxy import TcpProxy

JOBS = 4
RECOVERY_S = 120.0  # the bound: every job ended this long after the store's return


@pytest.fixture
def slow_queue(aws_env: str) -> ScaleOut:
    return create_scale_out(visibility_timeout_s=4)


@pytest.mark.timeout(300)  # an outage, its recovery, and four jobs
@pytest.mark.parametrize("outage_s", [12, 30])
async def test_every_job_ends_once_after_a_dynamodb_outage(
    slack: SlackStandIn, slow_queue: ScaleOut, outage_s: float
) -> None:
    """A worker runs one job, three wait in the queue; DynamoDB is cut, and a second worker
    (an autoscaler's, say) starts meanwhile and receives the waiting messages again and
    again until they go to the dead-letter queue. After the store returns every job ends
    exactly once, succeeded, with one summary, within RECOVERY_S, and the dead-letter queue
    is empty."""
    endpoint = urlsplit(slow_queue.env["AWS_ENDPOINT_URL"])
    proxy = TcpProxy(endpoint.hostname or "127.0.0.1", endpoint.port or 80)
    await proxy.start()
    for n in range(JOBS):
        delay_s = 0.2 if n == 0 else 0.01  # the first runs through the outage's start
        slack.add_file(
            f"F0OUTAGE{n:02d}",
            f"outage-{n}.csv",
            SAMPLE,
            chunk_size=16 * 1024,
            chunk_delay_s=delay_s,
        )
    env = {
        "AWS_ENDPOINT_URL_DYNAMODB": proxy.url,
        "WORKER_LEASE_SECONDS": "3",
        "SWEEP_INTERVAL_SECONDS": "1",
        "JOB_CONCURRENCY": "1",
    }
    try:
        async with (
            cluster(slack, slow_queue, serves=1, workers=1, **env) as (serving, [first]),
            contextlib.AsyncExitStack() as stack,
        ):
            await share_across_one(slack, "F0OUTAGE00")
            await first.wait_event("job.started")
            for n in range(1, JOBS):
                await share_across_one(slack, f"F0OUTAGE{n:02d}")
            await wait_until(serving, lambda: len(serving[0].events("job.enqueued")) == JOBS, 30)
            await proxy.stop()
            cut_at = time.monotonic()
            common = {**slack_env(slack), **slow_queue.env, **env, "JOB_CONCURRENCY": "2"}
            second = await stack.enter_async_context(serve_process(common, role="worker"))
            working = [first, second]
            await asyncio.sleep(outage_s - (time.monotonic() - cut_at))  # the outage's length
            claims_failed = len(second.events("store.claim_failed"))
            await proxy.start()
            back_at = time.monotonic()
            await wait_until(
                working,
                lambda: len({line["job_id"] for line in finished(working)}) >= JOBS,
                RECOVERY_S,
            )
            recovered_s = time.monotonic() - back_at
            await slack.wait_until(
                lambda: len(slack.calls_to("files.completeUploadExternal")) >= JOBS
            )
            done = finished(working)
            swept = [line for p in [*serving, *working] for line in p.events("sweeper.requeued")]
    finally:
        await proxy.stop()
    print(
        f"outage {outage_s} s: {claims_failed} claims failed during it; every job ended "
        f"{recovered_s:.1f} s after the store's return; the sweeper re-enqueued "
        f"{len(swept)} times ({sum(line['found'] == 'dead_letter' for line in swept)} from "
        "the dead-letter queue)"
    )
    assert claims_failed > 0, "the second worker met the outage"
    assert sorted(line["status"] for line in done) == ["succeeded"] * JOBS, done
    assert len({line["job_id"] for line in done}) == JOBS == len(done)
    for n in range(JOBS):
        _, [_, *replies] = thread_of(slack, f"outage-{n}.csv")
        assert len([m for m in replies if m.get("blocks")]) == 2, "one summary: two messages"
        assert len([m for m in replies if m.get("files")]) == 1
    left = slow_queue.sqs.receive_message(QueueUrl=slow_queue.dead_letter_url, WaitTimeSeconds=0)
    assert not left.get("Messages")

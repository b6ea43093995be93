"""Scale-out through outages, made for real: every process reaches DynamoDB and SQS (moto's
server) through TCP proxies that the test stops (connections refused and cut) or pauses
(connections taken, nothing answered: a service that hangs), and starts again. Jobs running
through the outage hold their messages and save their outcomes when the store is back; jobs
whose messages went to the dead-letter queue meanwhile are taken up by the sweeper. Every job
ends exactly once, with one summary.

Scaled down: a queue visibility of 4 s and a lease of 3 s stand for the README's 180 s, so
that an outage of 12 s (a few minutes there) sends waiting messages through their three
receives to the dead-letter queue, and one of 30 s (ten minutes there) holds a job's
outcome for as long as it lasts."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest

from tests.aws import ScaleOut, create_scale_out
from tests.integration.helpers import (
    SAMPLE,
    cluster,
    finished,
    share,
    slack_env,
    start_and_thread,
)
from tests.processes import serve_process, wait_until
from tests.standin.slack import SlackStandIn
from tests.tcp_proxy import TcpProxy

JOBS = 4
RECOVERY_S = 120.0  # the bound: every job ended this long after the store's return
SAMPLE_CHUNKS = -(-len(SAMPLE) // (16 * 1024))


@dataclass(frozen=True)
class Outage:
    services: tuple[str, ...]  # "dynamodb", "sqs"
    length_s: float
    hangs: bool = False  # paused (a service that takes connections and never answers)
    first_job_s: float = 4.0  # how long the first job's upload takes: through the outage?

    def __str__(self) -> str:
        how = "hangs" if self.hangs else "down"
        return f"{'+'.join(self.services)}-{how}-{self.length_s:g}s-job{self.first_job_s:g}s"

    async def begin(self, proxies: dict[str, TcpProxy]) -> None:
        """The services go away: stopped (connections refused and cut), or paused (hanging)."""
        for service in self.services:
            if self.hangs:
                proxies[service].pause()
            else:
                await proxies[service].stop()

    async def end(self, proxies: dict[str, TcpProxy]) -> None:
        for service in self.services:
            if self.hangs:
                proxies[service].resume()
            else:
                await proxies[service].start()


OUTAGES = [
    Outage(("dynamodb",), 12),
    Outage(("dynamodb",), 30),
    Outage(("dynamodb",), 12, hangs=True),
    # The queue away while a job runs on through it: its message cannot be kept hidden and
    # comes back; the lease in the store keeps a second worker from running it again.
    Outage(("sqs",), 12, first_job_s=20),
    # ... or ends while the queue is away: its message cannot be deleted, comes back, and
    # is dropped as a duplicate.
    Outage(("sqs",), 12, first_job_s=6),
    Outage(("dynamodb", "sqs"), 12),
]


@pytest.fixture
def slow_queue(aws_env: str) -> ScaleOut:
    return create_scale_out(visibility_timeout_s=4)


@pytest.mark.timeout(300)  # an outage, its recovery, and four jobs
@pytest.mark.parametrize("outage", OUTAGES, ids=str)
async def test_every_job_ends_once_after_an_outage(
    slack: SlackStandIn, slow_queue: ScaleOut, outage: Outage
) -> None:
    """A worker runs one job, three wait in the queue; the store, the queue or both go away
    (or hang), and a second worker (an autoscaler's, say) starts meanwhile and tries the
    waiting messages again and again. After they return every job ends exactly once,
    succeeded, with one summary, within RECOVERY_S, and the dead-letter queue is empty.
    While only the queue is away, no job runs twice."""
    endpoint = urlsplit(slow_queue.env["AWS_ENDPOINT_URL"])
    proxies = {
        service: TcpProxy(endpoint.hostname or "127.0.0.1", endpoint.port or 80)
        for service in ("dynamodb", "sqs")
    }
    for proxy in proxies.values():
        await proxy.start()
    for n in range(JOBS):
        # The first runs through the outage's start (or all of it); the others are quick.
        delay_s = outage.first_job_s / SAMPLE_CHUNKS if n == 0 else 0.01
        slack.add_file(
            f"F0OUTAGE{n:02d}",
            f"outage-{n}.csv",
            SAMPLE,
            chunk_size=16 * 1024,
            chunk_delay_s=delay_s,
        )
    env = {
        "AWS_ENDPOINT_URL_DYNAMODB": proxies["dynamodb"].url,
        "AWS_ENDPOINT_URL_SQS": proxies["sqs"].url,
        "WORKER_LEASE_SECONDS": "3",
        "SWEEP_INTERVAL_SECONDS": "1",
        "JOB_CONCURRENCY": "1",
    }
    try:
        async with (
            cluster(slack, slow_queue, serves=1, workers=1, **env) as (serving, [first]),
            contextlib.AsyncExitStack() as stack,
        ):
            await share(slack, "F0OUTAGE00")
            await first.wait_event("job.started")
            for n in range(1, JOBS):
                await share(slack, f"F0OUTAGE{n:02d}")
            await wait_until(serving, lambda: len(serving[0].events("job.enqueued")) == JOBS, 30)
            await outage.begin(proxies)
            cut_at = time.monotonic()
            common = {**slack_env(slack), **slow_queue.env, **env, "JOB_CONCURRENCY": "2"}
            second = await stack.enter_async_context(serve_process(common, role="worker"))
            working = [first, second]
            await asyncio.sleep(outage.length_s - (time.monotonic() - cut_at))  # the outage
            await outage.end(proxies)
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
            failed_calls = Counter(
                line["event"]
                for p in [*serving, *working]
                for line in p.lines
                if str(line.get("event")).endswith("_failed")
            )
            runs = Counter(line["job_id"] for p in working for line in p.events("job.started"))
            swept = [line for p in [*serving, *working] for line in p.events("sweeper.requeued")]
    finally:
        for proxy in proxies.values():
            proxy.resume()
            await proxy.stop()
    print(
        f"{outage}: failed calls {dict(failed_calls)}; every job ended "
        f"{recovered_s:.1f} s after the return; runs per job {sorted(runs.values())}; the "
        f"sweeper re-enqueued {len(swept)} times "
        f"({sum(line['found'] == 'dead_letter' for line in swept)} from the dead-letter queue)"
    )
    assert failed_calls, "the processes met the outage"
    assert sorted(line["status"] for line in done) == ["succeeded"] * JOBS, done
    assert len({line["job_id"] for line in done}) == JOBS == len(done)
    if outage.services == ("sqs",):
        assert set(runs.values()) == {1}, "the store's lease fenced every second delivery"
    for n in range(JOBS):
        _, [_, *replies] = start_and_thread(slack, f"outage-{n}.csv")
        assert len([m for m in replies if m.get("blocks")]) == 2, "one summary: two messages"
        assert len([m for m in replies if m.get("files")]) == 1
    left = slow_queue.sqs.receive_message(QueueUrl=slow_queue.dead_letter_url, WaitTimeSeconds=0)
    assert not left.get("Messages")

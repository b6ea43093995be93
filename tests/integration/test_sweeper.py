"""The sweeper (bot/sweeper.py) and a worker's hold on its message, against moto's DynamoDB
and SQS, DynamoDB behind a TCP proxy the test cuts or pauses."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest

from bot.errors import StoreUnavailableError
from bot.jobs.job import Job
from bot.jobs.queue import JobQueue
from bot.jobs.reopen import Reopener
from bot.jobs.runner import JobRunner
from bot.jobs.sweeper import Sweeper
from bot.jobs.worker import Worker
from bot.metrics import Metrics
from bot.sources import SourceInfo
from bot.store import JobRecord, JobStatus, ReplySpec
from bot.store.dynamo import DynamoJobStore
from tests.aws import JOB_BUCKET, JOB_TABLE, ScaleOut, create_scale_out
from tests.tcp_proxy import TcpProxy


@pytest.fixture
async def proxied(
    aws_env: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[ScaleOut, TcpProxy]]:
    made = create_scale_out()
    endpoint = urlsplit(aws_env)
    proxy = TcpProxy(endpoint.hostname or "127.0.0.1", endpoint.port or 80)
    await proxy.start()
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", proxy.url)
    try:
        yield made, proxy
    finally:
        await proxy.stop()


def parts(
    made: ScaleOut, *, lease_s: float = 0.0
) -> tuple[DynamoJobStore, JobRunner, JobQueue, Sweeper, Metrics]:
    from bot.aws import make_client

    store = DynamoJobStore(
        dynamodb=make_client("dynamodb"),
        table=JOB_TABLE,
        s3=made.s3,
        bucket=JOB_BUCKET,
        retention_s=3600,
    )
    metrics = Metrics()
    runner = JobRunner(store=store, metrics=metrics, store_patience_s=5)
    queue = JobQueue(made.sqs, made.queue_url)
    reopen = Reopener(currency="USD", max_file_size_bytes=1 << 20, console=io.StringIO())
    sweeper = Sweeper(
        runner=runner,
        store=store,
        queue=queue,
        reopen=reopen,
        metrics=metrics,
        lease_s=lease_s,
        interval_s=1.0,
    )
    return store, runner, queue, sweeper, metrics


def stranded_record(job_id: str, *, attempt: int, status: JobStatus) -> JobRecord:
    return JobRecord(
        id=job_id,
        source=SourceInfo(kind="s3", name="events.csv", label="s3://b/events.csv"),
        reply=ReplySpec(kind="console"),
        created_at=datetime.now(UTC) - timedelta(minutes=20),
        status=status,
        attempt=attempt,
    )


async def test_a_job_out_of_attempts_after_an_outage_fails_naming_it(
    proxied: tuple[ScaleOut, TcpProxy],
) -> None:
    """An outage cut short and then over; a stranded job with attempts left is queued
    again, one with none left fails saying the store was unreachable, and how long."""
    made, proxy = proxied
    store, _, _, sweeper, metrics = parts(made)
    await store.add(stranded_record("left1", attempt=1, status=JobStatus.QUEUED))
    await store.add(stranded_record("spent", attempt=3, status=JobStatus.RUNNING))
    await proxy.stop()
    with pytest.raises(StoreUnavailableError):
        await store.get("left1")
    await asyncio.sleep(5.5)  # the outage lasts this long
    await proxy.start()
    assert await store.get("left1") is not None  # the outage is over, and was measured
    assert store.last_outage_s >= 5

    await sweeper.sweep()

    failed = await store.get("spent")
    assert failed is not None
    assert failed.status is JobStatus.FAILED
    assert failed.error is not None
    assert failed.error.startswith("could not be finished: the job store was unreachable for ")
    assert (await store.get("left1")).status is JobStatus.QUEUED  # type: ignore[union-attr]
    sent = made.sqs.receive_message(QueueUrl=made.queue_url, MaxNumberOfMessages=10)
    assert [m["Body"] for m in sent.get("Messages", [])] == ['{"job_id": "left1"}']
    exposition = metrics.exposition().decode()
    assert 'clinic_events_sweeper_actions_total{action="requeued"} 1.0' in exposition
    assert 'clinic_events_sweeper_actions_total{action="failed"} 1.0' in exposition


async def test_a_stranded_job_is_queued_again_once_a_lease(
    proxied: tuple[ScaleOut, TcpProxy],
) -> None:
    """Swept a moment ago: not queued again until a lease has gone by."""
    made, _ = proxied
    store, _, _, sweeper, _ = parts(made, lease_s=60.0)
    await store.add(stranded_record("lost", attempt=0, status=JobStatus.QUEUED))
    await sweeper.sweep()
    await sweeper.sweep()
    sent = made.sqs.receive_message(QueueUrl=made.queue_url, MaxNumberOfMessages=10)
    assert [m["Body"] for m in sent.get("Messages", [])] == ['{"job_id": "lost"}']


async def test_one_sweeper_at_a_time(proxied: tuple[ScaleOut, TcpProxy]) -> None:
    """Two sweepers: the lease lets one sweep; the other finds it held."""
    made, _ = proxied
    store, *_ = parts(made)
    assert await store.take_sweeper_lease("a", 30)
    assert not await store.take_sweeper_lease("b", 30)
    assert await store.take_sweeper_lease("a", 30)  # its own, renewed


async def test_a_dead_letter_of_a_job_a_live_worker_holds_is_left_to_it(
    proxied: tuple[ScaleOut, TcpProxy],
) -> None:
    """Its message in the dead-letter queue, its lease live (the worker renewed it after an
    outage): neither failed nor queued again; the dead letter is dropped."""
    made, _ = proxied
    store, _, _, sweeper, metrics = parts(made, lease_s=1.0)
    for job_id, attempt in (("held1", 1), ("held3", 3)):
        await store.add(stranded_record(job_id, attempt=attempt - 1, status=JobStatus.QUEUED))
        claim = await store.claim(job_id, worker="w-alive", lease_s=600)
        assert claim.outcome == "claimed"
        made.sqs.send_message(
            QueueUrl=made.dead_letter_url, MessageBody=json.dumps({"job_id": job_id})
        )

    await sweeper.sweep()

    for job_id in ("held1", "held3"):
        record = await store.get(job_id)
        assert record is not None, job_id
        assert record.status is JobStatus.RUNNING, job_id
    assert not made.sqs.receive_message(QueueUrl=made.queue_url, WaitTimeSeconds=0).get("Messages")
    assert not made.sqs.receive_message(QueueUrl=made.dead_letter_url, WaitTimeSeconds=0).get(
        "Messages"
    )
    exposition = metrics.exposition().decode()
    assert 'clinic_events_sweeper_actions_total{action="left_to_its_worker"} 2.0' in exposition


async def test_a_worker_keeps_its_message_hidden_while_dynamodb_hangs(
    proxied: tuple[ScaleOut, TcpProxy],
) -> None:
    """DynamoDB paused (connections taken, nothing answered) past the lease: the worker
    still extends its message's visibility on its own clock, so nobody receives it."""
    made, proxy = proxied
    store, runner, queue, _, metrics = parts(made)
    await store.add(stranded_record("held", attempt=0, status=JobStatus.QUEUED))
    claim = await store.claim("held", worker=runner.worker, lease_s=3)
    assert claim.record is not None
    await queue.send("held")
    [message] = await queue.receive(1, 1)
    await queue.extend(message, 2)  # back in 2 s unless the worker keeps it hidden
    worker = Worker(
        runner=runner,
        queue=queue,
        reopen=Reopener(currency="USD", max_file_size_bytes=1),
        concurrency=1,
        metrics=metrics,
        lease_s=3,
        renew_every_s=1,
    )
    proxy.pause()
    keeping = asyncio.create_task(worker._keep(Job.of(claim.record), message))
    try:
        await asyncio.sleep(6)  # twice the lease, DynamoDB hanging all along
        seen = made.sqs.receive_message(QueueUrl=made.queue_url, WaitTimeSeconds=0)
    finally:
        keeping.cancel()
        proxy.resume()
    assert not seen.get("Messages"), "the message came back while its job was held"

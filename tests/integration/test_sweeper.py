"""The sweeper (bot/sweeper.py) against moto's DynamoDB and SQS, DynamoDB behind a TCP proxy
the test cuts: what it takes up, what it fails, and in which words."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest

from bot.errors import StoreUnavailableError
from bot.jobs import JobRunner
from bot.metrics import Metrics
from bot.queue import JobQueue
from bot.reopen import Reopener
from bot.sources import SourceInfo
from bot.store import JobRecord, JobStatus, ReplySpec
from bot.store.dynamo import DynamoJobStore
from bot.sweeper import Sweeper
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
        created_at=datetime.now(UTC) - timedelta(minutes=5),
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
    await proxy.start()
    assert await store.get("left1") is not None  # the outage is over, and was measured
    assert store.last_outage_s > 0

    await sweeper.sweep()

    failed = await store.get("spent")
    assert failed is not None and failed.status is JobStatus.FAILED
    assert failed.error is not None and failed.error.startswith(
        "could not be finished: the job store was unreachable for "
    )
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

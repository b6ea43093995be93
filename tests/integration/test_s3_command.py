"""/process-events s3://bucket/key: streamed from a real S3 API (moto's server)."""

from __future__ import annotations

import json
from typing import Any

from tests.integration.helpers import CHANNEL, SAMPLE, StartBot, finished_jobs
from tests.standin.slack import SlackStandIn

BUCKET = "clinic-exports"


async def test_an_allowed_s3_object_is_processed_like_a_shared_file(
    slack: SlackStandIn, start_bot: StartBot, s3: Any
) -> None:
    """The object streams into a job; the thread gets the same report as a shared file."""
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="exports/2024/events.csv", Body=SAMPLE)
    service = await start_bot(s3_allowed_buckets=frozenset({BUCKET}))
    request = await slack.send_command(f"s3://{BUCKET}/exports/2024/events.csv")
    await slack.wait_ack(request)
    [job] = await finished_jobs(service)
    assert job.status == "succeeded", job.error
    assert job.source.kind == "s3"
    assert job.source.label == f"s3://{BUCKET}/exports/2024/events.csv"
    assert job.source.size_bytes == len(SAMPLE)
    start = next(m for m in slack.messages(CHANNEL) if "events.csv" in m["text"])
    assert "see thread" in start["text"]
    assert "$305,272.95" in json.dumps(slack.thread(CHANNEL, start["ts"]))
    assert not slack.responses


async def test_s3_problems_are_answered_to_the_user_alone(
    slack: SlackStandIn, start_bot: StartBot, s3: Any
) -> None:
    """A bucket outside S3_ALLOWED_BUCKETS and a missing key: ephemeral words, no job."""
    s3.create_bucket(Bucket=BUCKET)
    service = await start_bot(s3_allowed_buckets=frozenset({BUCKET}))
    for text in ("s3://someone-elses-bucket/events.csv", f"s3://{BUCKET}/missing.csv"):
        request = await slack.send_command(text)
        await slack.wait_ack(request)
    await slack.wait_until(lambda: len(slack.responses) == 2)
    answers = [json.dumps(response) for response in slack.responses]
    assert sum("S3_ALLOWED_BUCKETS" in answer for answer in answers) == 1
    assert sum("does not exist" in answer for answer in answers) == 1
    assert not service.jobs.recent()
    assert not slack.calls_to("chat.postMessage")

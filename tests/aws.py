"""A real S3 API on loopback for every test that needs one: moto's server mode, reached over
HTTP through the standard AWS variables. Nothing is patched in-process: boto3 signs and sends
real requests, and errors come back as S3 would send them.
"""

from __future__ import annotations

import json
import logging
import os
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from moto.server import ThreadedMotoServer

from bot.aws import make_client as make_aws_client
from bot.aws.s3 import make_client


def post(url: str, body: bytes = b"") -> None:
    # text/plain: with a form type, werkzeug would swallow the body moto reads.
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "text/plain"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """The moto server's URL; port 0 lets the OS pick a free port, with no race."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, s3_endpoint: str) -> str:
    """The standard AWS variables pointing at moto, with the host's AWS config shut out."""
    for name in (
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN",
        "AWS_ENDPOINT_URL_S3",
        "AWS_ENDPOINT_URL_IAM",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_ROLE_ARN",
        "AWS_MAX_ATTEMPTS",
        "AWS_RETRY_MODE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")  # the one botocore reads
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance-role probe
    post(f"{s3_endpoint}/moto-api/reset")
    return s3_endpoint


@pytest.fixture
def s3(aws_env: str) -> Any:
    """A client from bot.aws.s3.make_client(), talking HTTP to an empty moto."""
    return make_client()


JOB_TABLE = "clinic-events-jobs"
JOB_BUCKET = "clinic-events-scale-out"
AWS_VARIABLES = (
    "AWS_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_EC2_METADATA_DISABLED",
)


@dataclass
class ScaleOut:
    """A queue with its dead-letter queue, the job table and a bucket, in moto."""

    env: dict[str, str]  # for `serve` and `worker` processes: AWS, JOB_QUEUE_URL, ...
    sqs: Any
    dynamodb: Any
    s3: Any
    queue_url: str
    dead_letter_url: str


def create_scale_out(*, visibility_timeout_s: int = 30, bucket: str = JOB_BUCKET) -> ScaleOut:
    """What README's `aws` snippet creates, made with boto3 against the configured endpoint."""
    sqs = make_aws_client("sqs")
    dead_letter_url = sqs.create_queue(QueueName="clinic-events-jobs-dlq")["QueueUrl"]
    dead_letter_arn = sqs.get_queue_attributes(
        QueueUrl=dead_letter_url, AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    queue_url = sqs.create_queue(
        QueueName="clinic-events-jobs",
        Attributes={
            "VisibilityTimeout": str(visibility_timeout_s),
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dead_letter_arn, "maxReceiveCount": "3"}
            ),
        },
    )["QueueUrl"]
    dynamodb = make_aws_client("dynamodb")
    dynamodb.create_table(
        TableName=JOB_TABLE,
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "recent_kind", "AttributeType": "S"},
            {"AttributeName": "created_at", "AttributeType": "S"},
        ],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by_kind",
                "KeySchema": [
                    {"AttributeName": "recent_kind", "KeyType": "HASH"},
                    {"AttributeName": "created_at", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    )
    s3 = make_client()
    s3.create_bucket(Bucket=bucket)
    env = {name: os.environ[name] for name in AWS_VARIABLES if name in os.environ}
    env |= {"JOB_QUEUE_URL": queue_url, "JOB_TABLE": JOB_TABLE, "S3_BUCKET": bucket}
    return ScaleOut(env, sqs, dynamodb, s3, queue_url, dead_letter_url)


@pytest.fixture
def scale_out(aws_env: str) -> ScaleOut:
    return create_scale_out()

"""A real S3 API on loopback: moto's server mode, reached over HTTP through AWS_ENDPOINT_URL.

Nothing is patched in-process: boto3 signs and sends real requests, and errors come back as
S3 would send them. IAM enforcement (for access denied and bad keys) is moto's own, switched
on through its /moto-api/reset-auth endpoint.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest

from tests.aws import post as _post

BUCKET = "clinic-exports"


@pytest.fixture
def bucket(s3: Any) -> str:
    """The name of an existing, empty bucket."""
    s3.create_bucket(Bucket=BUCKET)
    return BUCKET


@pytest.fixture
def enforce_iam(aws_env: str) -> Iterator[Callable[[], None]]:
    """Call it, after setting up as the admin, to make moto check keys and IAM like AWS."""
    yield lambda: _post(f"{aws_env}/moto-api/reset-auth", b"0")
    _post(f"{aws_env}/moto-api/reset-auth", b"inf")


def create_iam_user(policy: dict[str, Any]) -> tuple[str, str]:
    """A new IAM user whose only permissions are `policy`: its access key id and secret."""
    iam = boto3.client("iam")
    iam.create_user(UserName="clinic-bot")
    iam.put_user_policy(
        UserName="clinic-bot", PolicyName="only-this", PolicyDocument=json.dumps(policy)
    )
    key = iam.create_access_key(UserName="clinic-bot")["AccessKey"]
    return key["AccessKeyId"], key["SecretAccessKey"]


def closed_port() -> int:
    """A loopback port nobody listens on (it was free a moment ago)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])

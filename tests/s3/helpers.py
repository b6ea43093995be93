"""What the S3 tests share: the bucket's name, an IAM user of given permissions, and a port
nobody listens on."""

from __future__ import annotations

import json
import socket
from typing import Any

import boto3

BUCKET = "clinic-exports"


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

"""AWS clients, configured one way for S3, SQS and DynamoDB alike."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError

from bot.errors import S3Error


def make_client(service: str, region_name: str | None = None) -> Any:
    """A client configured the standard AWS way.

    `region_name` is AWS_REGION, which botocore itself does not read. boto3 reads
    AWS_ENDPOINT_URL, AWS_DEFAULT_REGION, AWS_PROFILE, the credentials chain
    (variables, shared files, container and instance roles) and AWS_MAX_ATTEMPTS itself.
    Retries are always "standard" mode: backoff with jitter on throttling and transient errors.
    Each call reads the configuration afresh and costs some milliseconds; share the client.
    """
    # DynamoDB answers in milliseconds: a call that takes 10 s is an outage, to be waited out
    # by the caller's own retries, not by botocore's 60 s read timeout.
    read_timeout = 10 if service == "dynamodb" else 60
    config = Config(connect_timeout=10, read_timeout=read_timeout, retries={"mode": "standard"})
    try:
        # A session of its own: boto3's default session is shared, and sessions are not
        # thread-safe. The client is; make one and share it between threads.
        return boto3.session.Session().client(service, config=config, region_name=region_name)
    except (BotoCoreError, ValueError) as error:  # e.g. an unknown AWS_PROFILE, a bad endpoint URL
        raise S3Error(
            f"the AWS configuration is unusable ({type(error).__name__}): check AWS_PROFILE, "
            "AWS_CONFIG_FILE and AWS_ENDPOINT_URL"
        ) from error

"""A real S3 API on loopback: moto's server mode, reached over HTTP through AWS_ENDPOINT_URL.

Nothing is patched in-process: boto3 signs and sends real requests, and errors come back as
S3 would send them. IAM enforcement (for access denied and bad keys) is moto's own, switched
on through its /moto-api/reset-auth endpoint.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.aws import post as _post
from tests.s3.helpers import BUCKET


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

"""allowed_buckets_from_env follows the same rule as Settings.from_env."""

from __future__ import annotations

import pytest

from bot.config import Settings, allowed_buckets_from_env


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, set()),
        ({"S3_BUCKET": "uploads"}, {"uploads"}),
        ({"S3_BUCKET": "  uploads "}, {"uploads"}),
        ({"S3_BUCKET": "   "}, set()),
        ({"S3_ALLOWED_BUCKETS": "a,b"}, {"a", "b"}),
        ({"S3_ALLOWED_BUCKETS": " a , ,b,", "S3_BUCKET": "uploads"}, {"a", "b"}),
        ({"S3_ALLOWED_BUCKETS": " ", "S3_BUCKET": "uploads"}, {"uploads"}),
        ({"S3_ALLOWED_BUCKETS": ",", "S3_BUCKET": "uploads"}, set()),
        ({"S3_ALLOWED_BUCKETS": "exports", "S3_BUCKET": "uploads"}, {"exports"}),
    ],
)
def test_agrees_with_settings(env: dict[str, str], expected: set[str]) -> None:
    """The CLI's reading of the bucket variables matches the server's Settings."""
    assert allowed_buckets_from_env(env) == expected
    assert Settings.from_env(env).s3_allowed_buckets == expected

"""Staging web uploads in S3: multipart parts, empty files, and failures that leave nothing."""

from __future__ import annotations

import os
from typing import Any

import pytest
from botocore.exceptions import ClientError

from bot.aws.s3 import MIN_PART_SIZE_BYTES, MultipartUpload, S3Location, delete_object
from bot.errors import S3Error

MiB = 1 << 20


def pending_uploads(s3: Any, bucket: str) -> list[dict[str, Any]]:
    return list(s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []))


def object_exists(s3: Any, location: S3Location) -> bool:
    try:
        s3.head_object(Bucket=location.bucket, Key=location.key)
    except ClientError as error:
        if error.response["Error"]["Code"] == "404":
            return False
        raise
    return True


def test_upload_in_three_parts(s3: Any, bucket: str) -> None:
    """12.5 MiB written in odd-sized chunks becomes one object of 5 + 5 + 2.5 MiB parts."""
    data = os.urandom(12 * MiB + MiB // 2)
    location = S3Location(bucket, "uploads/job-1/events.csv")
    with MultipartUpload.start(s3, location, part_size=MIN_PART_SIZE_BYTES) as upload:
        for start in range(0, len(data), 700_001):
            upload.write(data[start : start + 700_001])
        assert upload.complete() == len(data)
    stored = s3.get_object(Bucket=bucket, Key=location.key)
    assert stored["ETag"].endswith('-3"')  # S3's ETag of a multipart object counts its parts
    assert stored["Body"].read() == data
    assert pending_uploads(s3, bucket) == []


def test_zero_byte_upload(s3: Any, bucket: str) -> None:
    """An empty upload completes as an empty object (one empty part)."""
    location = S3Location(bucket, "uploads/job-2/empty.csv")
    with MultipartUpload.start(s3, location) as upload:
        assert upload.complete() == 0
    assert s3.get_object(Bucket=bucket, Key=location.key)["ContentLength"] == 0


def test_failure_half_way_leaves_nothing(s3: Any, bucket: str) -> None:
    """An exception after some parts aborts: no object, no pending multipart upload."""
    location = S3Location(bucket, "uploads/job-3/events.csv")
    upload = MultipartUpload.start(s3, location, part_size=MIN_PART_SIZE_BYTES)
    with pytest.raises(ConnectionResetError):
        fail_after_a_part(upload, s3, bucket)
    assert not object_exists(s3, location)
    assert pending_uploads(s3, bucket) == []
    upload.abort()  # a second abort is a quiet no-op


def fail_after_a_part(upload: MultipartUpload, s3: Any, bucket: str) -> None:
    """One part sent, then the client goes away, inside the upload's `with`."""
    with upload:
        upload.write(os.urandom(6 * MiB))  # one part is already in S3
        assert len(pending_uploads(s3, bucket)) == 1
        raise ConnectionResetError("the browser went away")


def test_leaving_without_complete_aborts(s3: Any, bucket: str) -> None:
    """Leaving the block without complete() is not an upload: nothing is kept."""
    location = S3Location(bucket, "uploads/job-4/events.csv")
    with MultipartUpload.start(s3, location) as upload:
        upload.write(b"event_id\n")
    assert not object_exists(s3, location)
    assert pending_uploads(s3, bucket) == []
    with pytest.raises(RuntimeError, match="already finished"):
        upload.write(b"more")


def test_upload_to_missing_bucket(s3: Any) -> None:
    """A wrong S3_BUCKET fails at the start with a message naming the bucket."""
    with pytest.raises(S3Error, match=r"^bucket no-such-bucket does not exist"):
        MultipartUpload.start(s3, S3Location("no-such-bucket", "uploads/job-5/a.csv"))


def test_parts_below_the_s3_minimum_are_refused(s3: Any, bucket: str) -> None:
    """A part size S3 would reject at completion is refused up front."""
    with pytest.raises(ValueError, match="5 MiB"):
        MultipartUpload.start(s3, S3Location(bucket, "a.csv"), part_size=MiB)
    assert pending_uploads(s3, bucket) == []


def test_delete_object(s3: Any, bucket: str) -> None:
    """A staged upload can be deleted, and deleting it again is not an error."""
    location = S3Location(bucket, "uploads/job-6/events.csv")
    s3.put_object(Bucket=bucket, Key=location.key, Body=b"x")
    delete_object(s3, location)
    assert not object_exists(s3, location)
    delete_object(s3, location)

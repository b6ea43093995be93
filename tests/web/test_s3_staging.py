"""Uploads staged in S3 (S3_BUCKET set), against moto's real S3 API on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from tests.web.conftest import (
    BUCKET,
    FORM_TYPE,
    HEADER,
    Serve,
    Web,
    chunk,
    form_head,
    form_tail,
    open_raw,
    without_source,
)

ROW = b"e1,C1,P1,APPOINTMENT_SCHEDULED,2024-01-02T10:00:00Z,,\n"


def keys(s3_client: Any) -> list[str]:
    listing = s3_client.list_objects_v2(Bucket=BUCKET)
    return [item["Key"] for item in listing.get("Contents", [])]


def pending_multipart_uploads(s3_client: Any) -> list[Any]:
    return list(s3_client.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []))


def outcome(web: Web, name: str) -> float:
    return web.metrics.uploads.labels(name)._value.get()  # type: ignore[no-any-return]


async def test_staged_upload_is_processed_from_s3_then_deleted(
    serve: Serve, s3_client: Any, sample_bytes: bytes, pinned_report: dict[str, Any]
) -> None:
    """The body goes to S3 first; the job reads it there; the object is deleted afterwards."""
    web = await serve(s3_bucket=BUCKET, s3_allowed_buckets=frozenset({BUCKET}))

    answer = await web.upload(sample_bytes, "events-sample.csv")

    assert answer.status == 202
    job = await web.finished(answer.body["job_id"])
    assert job["status"] == "succeeded"
    assert without_source(job["report"]) == without_source(pinned_report)
    # The size is the object's own, exactly: the form around the file was not staged.
    assert job["source"]["size_bytes"] == len(sample_bytes)
    assert web.service is not None
    await web.service.stop()  # waits for the job's cleanup
    assert keys(s3_client) == []
    assert pending_multipart_uploads(s3_client) == []


async def test_staged_upload_is_kept_with_s3_keep_uploads(
    serve: Serve, s3_client: Any, sample_bytes: bytes
) -> None:
    """With S3_KEEP_UPLOADS the object stays at uploads/<job id>/<name>, byte for byte."""
    web = await serve(s3_bucket=BUCKET, s3_keep_uploads=True)

    # A path in the file name (some clients send one) must not reach the S3 key.
    form = form_head("../exports/events-sample.csv") + sample_bytes + form_tail()
    async with web.session.post(
        "/api/upload", data=form, headers={"Content-Type": FORM_TYPE}
    ) as response:
        assert response.status == 202
        job_id = (await response.json())["job_id"]
    job = await web.finished(job_id)
    assert web.service is not None
    await web.service.stop()

    assert job["status"] == "succeeded"
    key = f"uploads/{job['id']}/events-sample.csv"
    assert keys(s3_client) == [key]
    assert s3_client.get_object(Bucket=BUCKET, Key=key)["Body"].read() == sample_bytes


async def test_too_large_half_way_leaves_nothing_in_s3(serve: Serve, s3_client: Any) -> None:
    """An upload passing the limit after a part went to S3 is aborted: no object, no parts."""
    limit = 9 << 20  # above one 8 MiB part, so a part is in S3 when the limit trips
    web = await serve(s3_bucket=BUCKET, max_file_size_bytes=limit)
    answered = asyncio.Event()

    async def body() -> AsyncIterator[bytes]:
        yield form_head("big.csv") + HEADER.encode() + b"\n"
        block = ROW * 20_000
        for _ in range((limit + (2 << 20)) // len(block)):
            yield block
        await answered.wait()

    async with web.session.post(
        "/api/upload", data=body(), headers={"Content-Type": FORM_TYPE}
    ) as response:
        answered.set()
        assert response.status == 413
        assert "larger than the 9 MB limit" in (await response.json())["error"]

    assert pending_multipart_uploads(s3_client) == []
    assert keys(s3_client) == []
    assert web.jobs.recent() == []
    assert outcome(web, "too_large") == 1


async def test_client_gone_half_way_leaves_nothing_in_s3(serve: Serve, s3_client: Any) -> None:
    """A client that disconnects mid-upload leaves no object and no multipart upload."""
    web = await serve(s3_bucket=BUCKET)
    _, writer = await open_raw(
        web.port,
        "POST /api/upload HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: {FORM_TYPE}\r\nTransfer-Encoding: chunked\r\n\r\n",
    )
    writer.write(chunk(form_head("cut.csv") + HEADER.encode() + b"\n"))
    block = ROW * 20_000
    for _ in range((16 << 20) // len(block)):
        writer.write(chunk(block))
        await writer.drain()
    writer.close()
    await writer.wait_closed()
    assert web.service is not None
    await web.service.stop()  # returns once the upload handler has finished

    assert outcome(web, "failed") == 1
    assert pending_multipart_uploads(s3_client) == []
    assert keys(s3_client) == []
    assert web.jobs.recent() == []


async def test_s3_refusing_the_upload_is_a_502_in_plain_words(serve: Serve, s3_client: Any) -> None:
    """When S3 will not take the file, the person uploading is told so, without S3 details."""
    web = await serve(s3_bucket="no-such-bucket")

    answer = await web.upload(b"event_id\n1\n")

    assert answer.status == 502
    assert answer.body["error"].startswith("The file could not be stored for processing.")
    assert "no-such-bucket" not in answer.body["error"]
    assert outcome(web, "failed") == 1
    assert web.jobs.recent() == []


async def test_the_pages_two_step_upload_is_staged_first(
    serve: Serve, s3_client: Any, sample_bytes: bytes, pinned_report: dict[str, Any]
) -> None:
    """With S3_BUCKET the reservation is not live: the PUT stages the body, then the job
    runs under the reserved id from S3 and the object is deleted afterwards."""
    web = await serve(s3_bucket=BUCKET, s3_allowed_buckets=frozenset({BUCKET}))
    async with web.session.post(
        "/api/uploads", json={"file_name": "events-sample.csv", "size_bytes": len(sample_bytes)}
    ) as response:
        reserved = await response.json()
    assert response.status == 201 and reserved["live"] is False
    assert web.jobs.get(reserved["job_id"]) is None  # no job until the file is stored

    async with web.session.put(reserved["upload_url"], data=sample_bytes) as response:
        assert response.status == 202
        assert (await response.json())["job_id"] == reserved["job_id"]
    job = await web.finished(reserved["job_id"])
    assert job["status"] == "succeeded"
    assert without_source(job["report"]) == without_source(pinned_report)
    assert web.service is not None
    await web.service.stop()
    assert keys(s3_client) == []

"""Uploads staged in S3 (S3_BUCKET set), against moto's real S3 API on loopback."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.store.sqlite import SqliteJobStore
from bot.web.staging import Staging
from tests.aws import AWS_VARIABLES
from tests.helpers import FORM_TYPE, TWO_WEEKS, UPLOAD_HEADER, chunk, form_head, form_tail
from tests.processes import serve_process
from tests.web.helpers import (
    BUCKET,
    BusySlot,
    Serve,
    Web,
    open_raw,
    read_answer,
    reserve,
    without_source,
)

ROW = b"e1,C1,P1,APPOINTMENT_SCHEDULED,2024-01-02T10:00:00Z,,\n"


def keys(s3_client: Any) -> list[str]:
    listing = s3_client.list_objects_v2(Bucket=BUCKET)
    return [item["Key"] for item in listing.get("Contents", [])]


def pending_multipart_uploads(s3_client: Any) -> list[Any]:
    return list(s3_client.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []))


def outcome(web: Web, name: str) -> float:
    return web.metrics.uploads.labels(name)._value.get()


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
        yield form_head("big.csv") + UPLOAD_HEADER.encode() + b"\n"
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
    writer.write(chunk(form_head("cut.csv") + UPLOAD_HEADER.encode() + b"\n"))
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
    assert response.status == 201
    assert reserved["live"] is False
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


async def test_an_upload_being_staged_answers_staging_and_one_cut_off_says_why(
    serve: Serve, s3_client: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """From its first byte a staged upload is a job with status `staging`, listed; cut off,
    it is a failed job saying so (not a lapsed reservation, not a 404), its key freed."""
    web = await serve(s3_bucket=BUCKET, data_dir=tmp_path)
    began = asyncio.Event()
    begin = Staging.begin.__func__  # type: ignore[attr-defined]

    async def noted(cls: type[Staging], *args: Any, **kwargs: Any) -> Staging:
        staging: Staging = await begin(cls, *args, **kwargs)
        began.set()
        return staging

    monkeypatch.setattr(Staging, "begin", classmethod(noted))
    key = {"Idempotency-Key": "cut-off-1"}
    reserved = await reserve(web, {"file_name": "cut.csv", "size_bytes": 1 << 20}, headers=key)
    job_id = reserved.body["job_id"]
    _, writer = await open_raw(
        web.port,
        f"PUT {reserved.body['upload_url']} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Length: {1 << 20}\r\n\r\n",
    )
    writer.write(UPLOAD_HEADER.encode() + b"\n" + ROW * 100)
    await writer.drain()
    await asyncio.wait_for(began.wait(), 10)
    staging = await web.get_json(f"/api/jobs/{job_id}")
    assert staging.body["status"] == "staging"
    assert [job["id"] for job in (await web.get_json("/api/jobs")).body["jobs"]] == [job_id]
    writer.close()
    assert web.service is not None
    await web.service.stop()  # returns once the upload handler has finished

    store = await SqliteJobStore(tmp_path).open()
    try:
        record = await store.get(job_id)
        assert record is not None
        assert record.status.value == "failed"
        assert record.error == (
            "the upload stopped before the whole file arrived; please upload the file again"
        )
        assert await store.held_by(f"upload:client-127.0.0.1:{key['Idempotency-Key']}") is None
    finally:
        await store.close()
    assert pending_multipart_uploads(s3_client) == []


async def test_a_staged_copy_that_is_gone_is_told_in_words(serve: Serve, s3_client: Any) -> None:
    """The staged object deleted before its job reads it: the job fails saying the staged
    copy is gone, naming neither the bucket nor the key."""
    web = await serve(s3_bucket=BUCKET, job_concurrency=1)
    async with BusySlot(web) as busy:
        answer = await web.upload(TWO_WEEKS, "events.csv")
        job_id = answer.body["job_id"]
        [staged] = keys(s3_client)
        s3_client.delete_object(Bucket=BUCKET, Key=staged)
        busy.release()
    job = await web.finished(job_id)
    assert job["status"] == "failed"
    assert job["error"] == "the staged copy of the upload is gone; please upload the file again"
    assert BUCKET not in str(job)
    assert "uploads/" not in str(job)


async def test_a_serve_killed_while_staging_leaves_no_parts_and_a_job_that_says_so(
    s3_client: Any, tmp_path: Path
) -> None:
    """SIGKILL while an upload is being staged: started again on the same DATA_DIR, the
    service aborts the upload's incomplete multipart upload and its job id answers
    `failed`, interrupted by a restart (not 404)."""
    env = {name: os.environ[name] for name in AWS_VARIABLES if name in os.environ}
    env |= {"S3_BUCKET": BUCKET}
    key = {"Idempotency-Key": "killed-1"}
    sent = UPLOAD_HEADER.encode() + b"\n" + ROW * 200_000
    async with (
        serve_process(env, data_dir=tmp_path) as first,
        aiohttp.ClientSession(base_url=first.url) as session,
    ):
        async with session.post(
            "/api/uploads", json={"file_name": "killed.csv", "size_bytes": 20 << 20}, headers=key
        ) as response:
            reserved = await response.json()
        port = int(first.url.rsplit(":", 1)[1].strip("/"))
        _, writer = await open_raw(
            port,
            f"PUT {reserved['upload_url']} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Length: {20 << 20}\r\n\r\n",
        )
        writer.write(sent)  # more than one 8 MiB part
        await writer.drain()
        await first.wait_event("upload.staging")
        await wait_until_parts(s3_client)
        await first.kill()
        writer.close()
    assert len(pending_multipart_uploads(s3_client)) == 1
    async with serve_process(env, data_dir=tmp_path) as second:
        await second.wait_event("upload.parts_aborted", uploads=1)
        async with aiohttp.ClientSession(base_url=second.url) as session:
            async with session.get(f"/api/jobs/{reserved['job_id']}") as response:
                job = await response.json()
            # The upload never arrived whole: its key is free to send the same file again.
            head = hashlib.sha256(sent[: 1 << 20]).hexdigest()
            wanted = {"file_name": "killed.csv", "size_bytes": 20 << 20, "head_sha256": head}
            async with session.post("/api/uploads", json=wanted, headers=key) as response:
                assert response.status == 201
    assert job["status"] == "failed"
    assert job["error"] == "interrupted by a restart; please upload the file again"
    assert pending_multipart_uploads(s3_client) == []


async def wait_until_parts(s3_client: Any, timeout_s: float = 30.0) -> None:
    """Until the multipart upload holds a part (S3 is asked, as it must be, by polling)."""
    async with asyncio.timeout(timeout_s):
        while True:
            [upload] = pending_multipart_uploads(s3_client)
            parts = s3_client.list_parts(
                Bucket=BUCKET, Key=upload["Key"], UploadId=upload["UploadId"]
            ).get("Parts", [])
            if parts:
                return
            await asyncio.sleep(0.05)


async def test_a_put_that_sends_no_byte_leaves_no_job(serve: Serve, s3_client: Any) -> None:
    """Headers and then nothing: 408, and neither a job, a record nor an S3 upload remains;
    the reservation's id says it lapsed."""
    web = await serve(s3_bucket=BUCKET, upload_idle_timeout_s=0.3)
    reserved = await reserve(web, {"file_name": "quiet.csv", "size_bytes": 1000})
    reader, writer = await open_raw(
        web.port,
        f"PUT {reserved.body['upload_url']} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Length: 1000\r\n\r\n",
    )
    try:
        answer = await read_answer(reader)
    finally:
        writer.close()
    assert answer.status == 408
    assert (await web.get_json("/api/jobs")).body["jobs"] == []
    asked = await web.get_json(f"/api/jobs/{reserved.body['job_id']}")
    assert asked.status == 404
    assert "lapsed" in asked.body["error"]
    assert await web.jobs.store.get(reserved.body["job_id"]) is None
    assert pending_multipart_uploads(s3_client) == []

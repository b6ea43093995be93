"""The page's upload: reserve a job (POST /api/uploads), then send the bytes (PUT)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest

from bot.jobs import JobStatus
from processing import analyze, to_dict
from tests.web.conftest import TWO_WEEKS, Answer, Serve, Web, without_source
from tests.web.test_upload import rows_of

TOKEN = "two-step-token"


async def reserve(
    web: Web, body: Any, *, token: str | None = None, raw: bytes | None = None
) -> Answer:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    options: dict[str, Any] = {"data": raw} if raw is not None else {"json": body}
    async with web.session.post("/api/uploads", headers=headers, **options) as response:
        return Answer(response.status, await response.json(), response.headers)


async def send(web: Web, url: str, data: Any, *, token: str | None = None) -> Answer:
    headers = {"Content-Type": "text/csv"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    async with web.session.put(url, data=data, headers=headers) as response:
        return Answer(response.status, await response.json(), response.headers)


async def test_the_job_exists_before_the_file_and_reads_it_as_it_arrives(web: Web) -> None:
    """201 with the job at once; the job shows rows read before the body has ended; the
    PUT answers 202 and the report is the engine's own for the same bytes."""
    data = rows_of(3_000_000)
    reserved = await reserve(web, {"file_name": "events.csv", "size_bytes": len(data)})
    assert reserved.status == 201
    job_id = reserved.body["job_id"]
    assert reserved.body == {
        "job_id": job_id,
        "status_url": f"/api/jobs/{job_id}",
        "upload_url": f"/api/uploads/{job_id}",
        "live": True,
    }
    waiting = await web.get_json(f"/api/jobs/{job_id}")
    assert waiting.status == 200 and waiting.body["status"] in ("queued", "running")
    assert waiting.body["source"]["size_bytes"] == len(data)

    first = 2_200_000  # past the engine's first 1 MiB blocks
    body: asyncio.Queue[bytes | None] = asyncio.Queue()

    async def paced() -> AsyncIterator[bytes]:
        while (piece := await body.get()) is not None:
            yield piece

    sending = asyncio.create_task(send(web, reserved.body["upload_url"], paced()))
    await body.put(data[:first])
    job = web.jobs.get(job_id)
    assert job is not None
    await web.jobs.wait_until(lambda: job.progress is not None, 10)
    seen = await web.get_json(f"/api/jobs/{job_id}")
    assert seen.body["status"] == "running" and seen.body["progress"]["rows"] > 0
    assert 0 < seen.body["progress"]["percent"] < 100
    assert not sending.done()
    await body.put(data[first:])
    await body.put(None)

    answer = await sending
    assert answer.status == 202
    assert answer.body == {"job_id": job_id, "status_url": f"/api/jobs/{job_id}"}
    finished = await web.finished(job_id)
    assert finished["status"] == "succeeded"
    expected = to_dict(analyze(iter([data])), "events.csv", "USD")
    assert without_source(finished["report"]) == without_source(expected)


async def test_a_reservation_is_used_once(web: Web) -> None:
    """A second PUT to the same address, or one to an unknown job, is 404 in words."""
    reserved = await reserve(web, {"file_name": "a.csv", "size_bytes": len(TWO_WEEKS)})
    url = reserved.body["upload_url"]
    assert (await send(web, url, TWO_WEEKS)).status == 202
    again = await send(web, url, TWO_WEEKS)
    assert again.status == 404 and "sent already" in again.body["error"]
    assert (await send(web, "/api/uploads/deadbeef", TWO_WEEKS)).status == 404
    await web.finished(reserved.body["job_id"])


async def test_a_reservation_never_used_lapses_and_its_job_says_so(serve: Serve) -> None:
    """No body within UPLOAD_IDLE_TIMEOUT_SECONDS: the job fails as stalled, the address is gone."""
    web = await serve(upload_idle_timeout_s=0.3)
    reserved = await reserve(web, {"file_name": "a.csv", "size_bytes": 10})
    job = await web.finished(reserved.body["job_id"])
    assert job["status"] == "failed"
    assert job["error"].startswith("the upload stalled")
    assert (await send(web, reserved.body["upload_url"], TWO_WEEKS)).status == 404


async def test_what_a_reservation_refuses(serve: Serve) -> None:
    """Not JSON or no size: 400; not a .csv: 415; over the limit: 413; no token: 401.
    Each answer says what to do, and none leaves a job behind."""
    web = await serve(upload_token=TOKEN, max_file_size_bytes=1000)
    cases = [
        ({"file_name": "a.csv"}, None, 400, "file's name and size"),
        ({"file_name": "a.csv", "size_bytes": "12"}, None, 400, "file's name and size"),
        ({"file_name": "a.csv", "size_bytes": -1}, None, 400, "file's name and size"),
        ({"file_name": "a.xlsx", "size_bytes": 10}, None, 415, "is not a CSV file"),
        ({"file_name": "a.csv", "size_bytes": 5000}, None, 413, "limit"),
    ]
    for body, raw, status, words in cases:
        answer = await reserve(web, body, token=TOKEN, raw=raw)
        assert (answer.status, words in answer.body["error"]) == (status, True), answer.body
    not_json = await reserve(web, None, token=TOKEN, raw=b"{nope")
    assert not_json.status == 400
    refused = await reserve(web, {"file_name": "a.csv", "size_bytes": 10})
    assert refused.status == 401
    assert web.jobs.recent() == []


async def test_a_body_over_the_limit_is_413_and_fails_the_job(serve: Serve) -> None:
    """Past MAX_FILE_SIZE_MB while streaming: 413, and the job says the file is too large."""
    web = await serve(max_file_size_bytes=2000)
    reserved = await reserve(web, {"file_name": "a.csv", "size_bytes": 1500})
    answer = await send(web, reserved.body["upload_url"], TWO_WEEKS + b"x" * 5000)
    assert answer.status == 413
    job = await web.finished(reserved.body["job_id"])
    assert job["status"] == "failed" and "limit" in job["error"]


async def test_reservations_count_towards_the_rate_limit(serve: Serve) -> None:
    """Reserving is an upload request: past UPLOADS_PER_MINUTE it is 429 with Retry-After."""
    web = await serve(uploads_per_minute=2, upload_idle_timeout_s=1)
    for _ in range(2):
        assert (await reserve(web, {"file_name": "a.csv", "size_bytes": 10})).status == 201
    limited = await reserve(web, {"file_name": "a.csv", "size_bytes": 10})
    assert limited.status == 429 and int(limited.headers["Retry-After"]) >= 1


async def test_the_same_idempotency_key_is_answered_with_the_same_job(web: Web) -> None:
    """An upload retried with its Idempotency-Key (a dropped connection, a double click) is
    the same job; its body is not read again. Another key is another job; a malformed key
    is refused."""
    headers = {"Idempotency-Key": "9f1c2e7a-upload-1"}
    form = aiohttp.FormData()
    form.add_field("file", TWO_WEEKS, filename="a.csv", content_type="text/csv")
    async with web.session.post("/api/upload", data=form, headers=headers) as response:
        first = await response.json()
    form = aiohttp.FormData()
    form.add_field("file", b"not even a csv", filename="a.csv", content_type="text/csv")
    async with web.session.post("/api/upload", data=form, headers=headers) as response:
        assert response.status == 202
        assert (await response.json())["job_id"] == first["job_id"]
    reserved = await reserve(web, {"file_name": "a.csv", "size_bytes": 10})
    assert reserved.body["job_id"] != first["job_id"]
    async with web.session.post(
        "/api/uploads", json={"file_name": "a.csv", "size_bytes": 10}, headers=headers
    ) as response:
        again = await response.json()
    assert (response.status, again["job_id"], again["upload_url"]) == (200, first["job_id"], None)
    async with web.session.post(
        "/api/uploads",
        json={"file_name": "a.csv", "size_bytes": 10},
        headers={"Idempotency-Key": "has spaces"},
    ) as response:
        assert response.status == 400
    job = await web.finished(first["job_id"])
    assert job["status"] == "succeeded"
    assert len([j for j in web.jobs.recent() if j.id == first["job_id"]]) == 1


async def test_a_long_poll_is_answered_as_soon_as_the_job_finishes(
    web: Web, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Asked with the status it last saw (the page's way), the job API holds the answer
    while the job keeps that status and answers with the report the moment it finishes."""
    data = rows_of(20_000)
    reserved = await reserve(web, {"file_name": "events.csv", "size_bytes": len(data)})
    job_id = reserved.body["job_id"]
    body: asyncio.Queue[bytes | None] = asyncio.Queue()

    async def paced() -> AsyncIterator[bytes]:
        while (piece := await body.get()) is not None:
            yield piece

    sending = asyncio.create_task(send(web, reserved.body["upload_url"], paced()))
    await body.put(data[: len(data) // 2])
    job = web.jobs.get(job_id)
    assert job is not None
    await web.jobs.wait_until(lambda: job.status is JobStatus.RUNNING, 10)

    waiting = asyncio.Event()
    wait_until = web.jobs.wait_until

    async def noticed(predicate: Callable[[], bool], timeout_s: float) -> None:
        waiting.set()
        await wait_until(predicate, timeout_s)

    monkeypatch.setattr(web.jobs, "wait_until", noticed)
    polled = asyncio.create_task(web.get_json(f"/api/jobs/{job_id}?seen=running&wait_s=20"))
    await asyncio.wait_for(waiting.wait(), 10)
    assert not polled.done()
    await body.put(data[len(data) // 2 :])
    await body.put(None)
    answer = await asyncio.wait_for(polled, 20)
    assert (await sending).status == 202
    assert answer.body["status"] == "succeeded"
    assert answer.body["report"]["rows"]["total"] == analyze(iter([data])).rows_total


async def test_a_long_poll_on_an_unchanged_job_answers_after_wait_s(web: Web) -> None:
    """Nothing changes within wait_s: the same status comes back; bad parameters are a 400
    that says what to send."""
    reserved = await reserve(web, {"file_name": "events.csv", "size_bytes": 10})
    path = f"/api/jobs/{reserved.body['job_id']}"
    job = web.jobs.get(reserved.body["job_id"])
    assert job is not None
    await web.jobs.wait_until(lambda: job.status is JobStatus.RUNNING, 10)  # for its bytes
    same = await web.get_json(f"{path}?seen=running&wait_s=0.05")
    assert same.status == 200 and same.body["status"] == "running"
    for query in (
        "seen=done&wait_s=1",
        "seen=running",
        "seen=running&wait_s=0",
        "wait_s=99&seen=queued",
        "seen=queued&wait_s=soon",
    ):
        refused = await web.get_json(f"{path}?{query}")
        assert refused.status == 400, query
        assert "give seen (one of queued, running, succeeded, failed)" in refused.body["error"]

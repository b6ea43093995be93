"""The page's upload: reserve a job (POST /api/uploads), then send the bytes (PUT)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import Callable

import aiohttp
import pytest

from bot.store import JobStatus
from bot.web.reservations import RESERVATIONS, Reservations
from processing import analyze, to_dict
from tests.helpers import TWO_WEEKS
from tests.web.helpers import Answer, Serve, Web, paced_body, reserve, rows_of, send, without_source

TOKEN = "two-step-token"


def reservations_of(web: Web) -> Reservations:
    assert web.service is not None
    return web.service.web_runner.app[RESERVATIONS]


async def test_a_reservation_is_not_a_job_until_its_bytes_come(web: Web) -> None:
    """201 with an id, a secret and an upload address that carries it; the id answers
    `reserved`, is not listed and holds nothing in the store; the job begins with the body,
    reads it as it arrives, and its report is the engine's own for the same bytes."""
    data = rows_of(3_000_000)
    reserved = await reserve(web, {"file_name": "events.csv", "size_bytes": len(data)})
    assert reserved.status == 201
    job_id, secret = reserved.body["job_id"], reserved.body["upload_secret"]
    assert reserved.body == {
        "job_id": job_id,
        "status_url": f"/api/jobs/{job_id}",
        "upload_url": f"/api/uploads/{job_id}/{secret}",
        "upload_secret": secret,
        "live": True,
    }
    assert len(base64.urlsafe_b64decode(secret + "==")) == 16  # 128 random bits
    waiting = await web.get_json(f"/api/jobs/{job_id}")
    assert waiting.status == 200
    assert waiting.body["status"] == "reserved"
    assert waiting.body["source"]["size_bytes"] == len(data)
    assert (await web.get_json("/api/jobs")).body["jobs"] == []
    assert await web.jobs.store.get(job_id) is None
    assert web.jobs.get(job_id) is None

    first = 2_200_000  # past the engine's first 1 MiB blocks
    body, pieces = paced_body()
    sending = asyncio.create_task(send(web, reserved.body["upload_url"], pieces))
    await body.put(data[:first])
    await web.jobs.wait_until(lambda: web.jobs.get(job_id) is not None, 10)
    job = web.jobs.get(job_id)
    assert job is not None
    await web.jobs.wait_until(lambda: job.progress is not None, 10)
    seen = await web.get_json(f"/api/jobs/{job_id}")
    assert seen.body["status"] == "running"
    assert seen.body["progress"]["rows"] > 0
    assert 0 < seen.body["progress"]["percent"] < 100
    assert [listed["id"] for listed in (await web.get_json("/api/jobs")).body["jobs"]] == [job_id]
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


async def test_only_the_holder_of_the_secret_sends_the_body(web: Web) -> None:
    """The plain job address without the secret, a wrong secret or another job's secret is
    answered as an unknown id, and spends nothing; the header Upload-Secret works too."""
    reserved = await reserve(web, {"file_name": "a.csv", "size_bytes": len(TWO_WEEKS)})
    other = await reserve(web, {"file_name": "b.csv", "size_bytes": len(TWO_WEEKS)})
    job_id = reserved.body["job_id"]
    unknown = await send(web, "/api/uploads/deadbeef", TWO_WEEKS)
    assert unknown.status == 404
    for url, headers in [
        (f"/api/uploads/{job_id}", {}),
        (f"/api/uploads/{job_id}/{'A' * 22}", {}),
        (f"/api/uploads/{job_id}/{other.body['upload_secret']}", {}),
        (f"/api/uploads/{job_id}", {"Upload-Secret": other.body["upload_secret"]}),
    ]:
        refused = await send(web, url, TWO_WEEKS, headers=headers)
        assert (refused.status, refused.body) == (unknown.status, unknown.body), url
    assert (await web.get_json(f"/api/jobs/{job_id}")).body["status"] == "reserved"
    by_header = await send(
        web,
        f"/api/uploads/{job_id}",
        TWO_WEEKS,
        headers={"Upload-Secret": reserved.body["upload_secret"]},
    )
    assert by_header.status == 202
    assert (await web.finished(job_id))["status"] == "succeeded"


async def test_a_reservation_is_used_once(web: Web) -> None:
    """A second PUT to the same address, or one to an unknown job, is 404 in words."""
    reserved = await reserve(web, {"file_name": "a.csv", "size_bytes": len(TWO_WEEKS)})
    url = reserved.body["upload_url"]
    assert (await send(web, url, TWO_WEEKS)).status == 202
    again = await send(web, url, TWO_WEEKS)
    assert again.status == 404
    assert "sent already" in again.body["error"]
    assert (await send(web, "/api/uploads/deadbeef", TWO_WEEKS)).status == 404
    await web.finished(reserved.body["job_id"])


async def test_a_reservation_never_used_lapses_and_disappears(serve: Serve) -> None:
    """No body within UPLOAD_IDLE_TIMEOUT_SECONDS: the reservation is gone, not a failed job;
    its id and its address say it lapsed."""
    web = await serve(upload_idle_timeout_s=0.3)
    reserved = await reserve(web, {"file_name": "a.csv", "size_bytes": 10})
    job_id = reserved.body["job_id"]
    reservation = reservations_of(web).waiting[job_id]
    assert reservation.lapse is not None
    await asyncio.wait_for(reservation.lapse, 10)
    asked = await web.get_json(f"/api/jobs/{job_id}")
    assert asked.status == 404
    assert "reservation lapsed" in asked.body["error"]
    put = await send(web, reserved.body["upload_url"], TWO_WEEKS)
    assert put.status == 404
    assert "reservation lapsed" in put.body["error"]
    assert (await web.get_json("/api/jobs")).body["jobs"] == []
    assert await web.jobs.store.get(job_id) is None


async def test_a_reservation_holds_no_job_slot(serve: Serve) -> None:
    """With one slot, reservations that send nothing do not keep an upload from running."""
    web = await serve(job_concurrency=1)
    for name in ("a.csv", "b.csv"):
        assert (await reserve(web, {"file_name": name, "size_bytes": 10})).status == 201
    uploaded = await web.upload(TWO_WEEKS, "now.csv")
    assert (await web.finished(uploaded.body["job_id"]))["status"] == "succeeded"


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
    """Past MAX_FILE_SIZE_MB while streaming: 413, and the job says the file is too large;
    a Content-Length over it is refused before any job begins."""
    web = await serve(max_file_size_bytes=2000)
    reserved = await reserve(web, {"file_name": "a.csv", "size_bytes": 1500})
    body, pieces = paced_body()
    sending = asyncio.create_task(send(web, reserved.body["upload_url"], pieces))
    await body.put(TWO_WEEKS)
    await web.jobs.wait_until(lambda: web.jobs.get(reserved.body["job_id"]) is not None, 10)
    await body.put(b"x" * 5000)
    await body.put(None)
    answer = await sending
    assert answer.status == 413
    job = await web.finished(reserved.body["job_id"])
    assert job["status"] == "failed"
    assert "limit" in job["error"]

    declared = await reserve(web, {"file_name": "b.csv", "size_bytes": 1500})
    refused = await send(web, declared.body["upload_url"], TWO_WEEKS + b"x" * 5000)
    assert refused.status == 413
    assert await web.jobs.store.get(declared.body["job_id"]) is None


async def test_reservations_count_towards_the_rate_limit(serve: Serve) -> None:
    """Reserving is an upload request: past UPLOADS_PER_MINUTE it is 429 with Retry-After."""
    web = await serve(uploads_per_minute=2, upload_idle_timeout_s=1)
    for _ in range(2):
        assert (await reserve(web, {"file_name": "a.csv", "size_bytes": 10})).status == 201
    limited = await reserve(web, {"file_name": "a.csv", "size_bytes": 10})
    assert limited.status == 429
    assert int(limited.headers["Retry-After"]) >= 1


async def form_upload(web: Web, data: bytes, key: str) -> Answer:
    form = aiohttp.FormData()
    form.add_field("file", data, filename="a.csv", content_type="text/csv")
    async with web.session.post(
        "/api/upload", data=form, headers={"Idempotency-Key": key}
    ) as response:
        return Answer(response.status, await response.json(), response.headers)


async def test_the_same_key_and_file_is_the_same_job_another_file_is_refused(web: Web) -> None:
    """An upload retried with its Idempotency-Key (a dropped connection, a double click) is
    the same job; the same key with another file, by its first MiB or its size, is 422 and
    never the other file's job; another key is another job; a malformed key is refused."""
    key = "9f1c2e7a-upload-1"
    first = (await form_upload(web, TWO_WEEKS, key)).body
    await web.finished(first["job_id"])
    again = await form_upload(web, TWO_WEEKS, key)
    assert (again.status, again.body["job_id"]) == (202, first["job_id"])
    other = await form_upload(web, TWO_WEEKS.replace(b"100.50", b"999.99"), key)
    assert other.status == 422
    assert "another file" in other.body["error"]
    assert "job_id" not in other.body

    reserved = await reserve(web, {"file_name": "a.csv", "size_bytes": 10})
    assert reserved.body["job_id"] != first["job_id"]
    keyed = {"Idempotency-Key": key}
    proven = await reserve(
        web,
        {"file_name": "a.csv", "size_bytes": len(TWO_WEEKS), "head_sha256": sha256(TWO_WEEKS)},
        headers=keyed,
    )
    assert (proven.status, proven.body["job_id"], proven.body["upload_url"]) == (
        200,
        first["job_id"],
        None,
    )
    # The same size without the first MiB's hash: a reservation, and its PUT decides.
    for body, status in ((TWO_WEEKS, 202), (TWO_WEEKS.replace(b"100.50", b"999.99"), 422)):
        same_size = await reserve(
            web, {"file_name": "a.csv", "size_bytes": len(TWO_WEEKS)}, headers=keyed
        )
        assert same_size.status == 201
        sent = await send(web, same_size.body["upload_url"], body)
        assert sent.status == status, sent.body
        assert sent.body.get("job_id", first["job_id"]) == first["job_id"]
    other_size = await reserve(web, {"file_name": "a.csv", "size_bytes": 10}, headers=keyed)
    assert other_size.status == 422
    other_head = await reserve(
        web,
        {"file_name": "a.csv", "size_bytes": len(TWO_WEEKS), "head_sha256": sha256(b"other")},
        headers=keyed,
    )
    assert other_head.status == 422
    malformed = await reserve(
        web, {"file_name": "a.csv", "size_bytes": 10}, headers={"Idempotency-Key": "has spaces"}
    )
    assert malformed.status == 400
    assert len([j for j in web.jobs.recent() if j.id == first["job_id"]]) == 1


def sha256(data: bytes) -> str:
    return hashlib.sha256(data[: 1 << 20]).hexdigest()


async def test_keys_belong_to_the_access_code_not_the_address(serve: Serve) -> None:
    """With UPLOAD_TOKEN, one key is one file for every holder of the code: a colleague's
    reuse of a key while a reservation waits is 409 (its secret stays its holder's), for
    another file 422, never the first file's job."""
    web = await serve(upload_token=TOKEN)
    key = {"Idempotency-Key": "monday-export"}
    mine = await reserve(web, {"file_name": "a.csv", "size_bytes": 100}, token=TOKEN, headers=key)
    assert mine.status == 201
    again = await reserve(web, {"file_name": "a.csv", "size_bytes": 100}, token=TOKEN, headers=key)
    assert again.status == 409
    assert int(again.headers["Retry-After"]) >= 1
    assert mine.body["upload_secret"] not in str(again.body)
    theirs = await reserve(web, {"file_name": "b.csv", "size_bytes": 999}, token=TOKEN, headers=key)
    assert theirs.status == 422
    assert "job_id" not in theirs.body


async def test_a_long_poll_is_answered_as_soon_as_the_job_finishes(
    web: Web, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Asked with the status it last saw (the page's way), the job API holds the answer
    while the job keeps that status and answers with the report the moment it finishes."""
    data = rows_of(20_000)
    reserved = await reserve(web, {"file_name": "events.csv", "size_bytes": len(data)})
    job_id = reserved.body["job_id"]
    body, pieces = paced_body()
    sending = asyncio.create_task(send(web, reserved.body["upload_url"], pieces))
    await body.put(data[: len(data) // 2])
    await web.jobs.wait_until(lambda: web.jobs.get(job_id) is not None, 10)
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
    same = await web.get_json(f"{path}?seen=reserved&wait_s=0.05")
    assert same.status == 200
    assert same.body["status"] == "reserved"
    for query in (
        "seen=done&wait_s=1",
        "seen=running",
        "seen=running&wait_s=0",
        "wait_s=99&seen=queued",
        "seen=queued&wait_s=soon",
    ):
        refused = await web.get_json(f"{path}?{query}")
        assert refused.status == 400, query
        assert (
            "give seen (one of reserved, staging, queued, running, succeeded, failed)"
            in refused.body["error"]
        )

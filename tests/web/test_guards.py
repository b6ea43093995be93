"""The web boundary over real HTTP: encodings, stalls, uploads in flight, Origin, Host, the job
API's visibility and rate limit, and JSON for every error."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator

import aiohttp

from bot.jobs.replies import SilentReplier
from bot.sources import CallbackSource, SourceInfo
from tests.helpers import BOUNDARY, FORM_TYPE, TWO_WEEKS, chunk, form_head, form_tail
from tests.web.helpers import Serve, Web, open_raw, post_form, read_answer


async def raw_get(port: int, path: str, host: str) -> tuple[int, str]:
    reader, writer = await open_raw(
        port, f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    try:
        answer = await read_answer(reader)
    finally:
        writer.close()
    return answer.status, str(answer.body)


async def hold_upload(port: int, name: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """An upload whose body has begun and goes on until the test finishes it."""
    reader, writer = await open_raw(
        port,
        "POST /api/upload HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: {FORM_TYPE}\r\nTransfer-Encoding: chunked\r\n\r\n",
    )
    writer.write(chunk(form_head(name) + TWO_WEEKS))
    await writer.drain()
    return reader, writer


async def finish_upload(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> int:
    writer.write(chunk(form_tail()) + b"0\r\n\r\n")
    await writer.drain()
    answer = await read_answer(reader)
    writer.close()
    return answer.status


async def test_a_compressed_body_is_refused_415(web: Web) -> None:
    """Content-Encoding: gzip is refused before the body is read: limits are on wire bytes."""
    form = aiohttp.FormData()
    form.add_field("file", gzip.compress(TWO_WEEKS), filename="events.csv")
    async with web.session.post(
        "/api/upload", data=form, headers={"Content-Encoding": "gzip"}
    ) as response:
        assert response.status == 415
        assert "Content-Encoding" in (await response.json())["error"]
    assert not web.jobs.recent()


async def test_a_stalled_upload_is_closed_and_its_job_fails(serve: Serve) -> None:
    """No byte for UPLOAD_IDLE_TIMEOUT_SECONDS: 408, the connection closes, the job says why."""
    web = await serve(upload_idle_timeout_s=0.5)
    reader, writer = await hold_upload(web.port, "slow.csv")
    try:
        answer = await read_answer(reader)  # the server answers on its own once it gives up
        assert answer.status == 408
        assert "stalled" in answer.body["error"]
        assert await reader.read() == b""  # and closes the connection
    finally:
        writer.close()
    [job] = web.jobs.recent()
    finished = await web.finished(job.id)
    assert finished["status"] == "failed"
    assert finished["error"].startswith("the upload stalled")


async def test_a_form_that_stalls_after_the_file_is_closed_408(serve: Serve) -> None:
    """The whole file arrived, but the form's end does not: 408 once the client is quiet for
    UPLOAD_IDLE_TIMEOUT_SECONDS, and the job does not wait for it."""
    web = await serve(upload_idle_timeout_s=0.5)
    reader, writer = await hold_upload(web.port, "slow-end.csv")
    try:
        writer.write(chunk(f"\r\n--{BOUNDARY}\r\n".encode()))  # the delimiter, then nothing
        await writer.drain()
        answer = await read_answer(reader)
        assert answer.status == 408
        assert "stalled" in answer.body["error"]
    finally:
        writer.close()
    [job] = web.jobs.recent()
    assert (await web.finished(job.id))["status"] == "failed"


async def test_a_stalled_upload_frees_its_job_slot(serve: Serve) -> None:
    """Two stalled uploads hold both slots only until the timeout; then a new file runs."""
    web = await serve(upload_idle_timeout_s=0.5, job_concurrency=1)
    held = [await hold_upload(web.port, f"slow-{n}.csv") for n in range(2)]
    for reader, _ in held:
        assert (await read_answer(reader)).status == 408
    for _, writer in held:
        writer.close()
    answer = await web.upload(TWO_WEEKS)
    assert (await web.finished(answer.body["job_id"]))["status"] == "succeeded"


async def test_at_most_two_uploads_in_flight_per_address(web: Web) -> None:
    """A third upload from the same address while two are arriving: 429, and it says why."""
    held = [await hold_upload(web.port, f"held-{n}.csv") for n in range(2)]
    await web.jobs.wait_until(lambda: len(web.jobs.recent()) == 2, 10)
    third = await web.upload(TWO_WEEKS, "third.csv")
    assert third.status == 429
    assert "2 uploads on their way" in third.body["error"]
    assert [await finish_upload(*pair) for pair in held] == [202, 202]
    assert (await web.upload(TWO_WEEKS, "fourth.csv")).status == 202


async def test_a_foreign_origin_cannot_post_without_a_token(web: Web) -> None:
    """CSRF: a page on another origin is refused 403; the service's own page is fine."""
    form = aiohttp.FormData()
    form.add_field("file", TWO_WEEKS, filename="events.csv")
    async with web.session.post(
        "/api/upload", data=form, headers={"Origin": "https://evil.example"}
    ) as response:
        assert response.status == 403
        assert "own upload page" in (await response.json())["error"]
    form = aiohttp.FormData()
    form.add_field("file", TWO_WEEKS, filename="events.csv")
    own = f"http://127.0.0.1:{web.port}"
    async with web.session.post("/api/upload", data=form, headers={"Origin": own}) as response:
        assert response.status == 202


async def test_a_foreign_host_is_misdirected_without_a_token(serve: Serve) -> None:
    """DNS rebinding: a Host that is not loopback or PUBLIC_URL's gets 421; health still answers."""
    web = await serve(public_url="https://reports.example.com/")
    assert (await raw_get(web.port, "/api/jobs", "rebound.example:3000"))[0] == 421
    assert (await raw_get(web.port, "/", "rebound.example"))[0] == 421
    assert (await raw_get(web.port, "/api/jobs", f"localhost:{web.port}"))[0] == 200
    assert (await raw_get(web.port, "/api/jobs", "[::1]"))[0] == 200
    assert (await raw_get(web.port, "/api/jobs", "reports.example.com"))[0] == 200
    assert (await raw_get(web.port, "/health", "10.0.0.7:3000"))[0] == 200


async def test_with_a_token_any_host_may_ask(serve: Serve) -> None:
    """Behind an access code the token is the boundary: a proxy's Host is fine."""
    web = await serve(upload_token="s3cret")
    status, _ = await raw_get(web.port, "/api/config", "reports.clinic.example")
    assert status == 200


async def test_the_job_api_shows_only_web_jobs(web: Web) -> None:
    """A Slack channel's job stays in Slack: not listed, and 404 by id."""

    async def chunks() -> AsyncIterator[bytes]:
        yield TWO_WEEKS

    slack_job = await web.jobs.submit(
        CallbackSource(SourceInfo(kind="slack", name="private.csv", label="x"), chunks),
        SilentReplier(),
    )
    await asyncio.wait_for(slack_job.done.wait(), 10)
    upload = await web.upload(TWO_WEEKS, "mine.csv")
    await web.finished(upload.body["job_id"])
    listed = (await web.get_json("/api/jobs")).body["jobs"]
    assert [job["source"]["name"] for job in listed] == ["mine.csv"]
    assert (await web.get_json(f"/api/jobs/{slack_job.id}")).status == 404
    assert (await web.get_json(f"/api/jobs/{slack_job.id}/weekly-report.csv")).status == 404


async def test_job_routes_are_rate_limited(serve: Serve) -> None:
    """More than JOB_API_PER_MINUTE job requests from one address: 429 with Retry-After."""
    web = await serve(job_api_per_minute=3)
    statuses = [(await web.get_json("/api/jobs")).status for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    answer = await web.get_json("/api/jobs")
    assert int(answer.headers["Retry-After"]) >= 1
    assert "at most 3 a minute" in answer.body["error"]
    assert (await web.get_json("/api/config")).status == 200  # other routes are not counted


async def test_a_malformed_authorization_is_401_json(serve: Serve) -> None:
    """A token that is not ASCII (or not even UTF-8) is a wrong token, not a crash."""
    web = await serve(upload_token="s3cret")
    for raw in (b"Bearer s\xc3\xa9cret", b"Bearer \xff\xfe"):
        reader, writer = await open_raw(web.port, "")
        writer.write(
            b"GET /api/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: "
            + raw
            + b"\r\nConnection: close\r\n\r\n"
        )
        await writer.drain()
        answer = await read_answer(reader)
        writer.close()
        assert answer.status == 401
        assert "access code" in answer.body["error"]


async def test_every_error_is_json(web: Web) -> None:
    """404 and 405 from aiohttp itself come back as JSON, on any path."""
    for method, path, status in (
        ("GET", "/nothing-here", 404),
        ("GET", "/api/nothing", 404),
        ("DELETE", "/api/upload", 405),
    ):
        async with web.session.request(method, path) as response:
            assert response.status == status
            assert response.content_type == "application/json"
            assert (await response.json())["error"]


async def test_a_file_name_with_a_line_break_is_named_as_the_problem(web: Web) -> None:
    """A raw CR/LF inside the part's file name breaks the form headers: 400 saying so."""
    boundary = "b0undary"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
        'filename="ev\r\nil.csv"\r\nContent-Type: text/csv\r\n\r\n'
        f"event_id\n\r\n--{boundary}--\r\n"
    ).encode()
    answer = await post_form(web.port, body, f"multipart/form-data; boundary={boundary}")
    assert answer.status == 400
    assert "a file name with a line break" in answer.body["error"]

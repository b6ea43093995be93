"""The upload boundary against slow, hostile or proxied clients, over real HTTP: the pace an
upload must keep, uploads in flight, client addresses behind proxies, and aiohttp's own
answers to requests it cannot read."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
from typing import Any

import pytest
import structlog
from multidict import CIMultiDict

from bot.config import TrustedProxies
from bot.web import protocol
from bot.web.guards import forwarded_client
from tests.helpers import FORM_TYPE, TWO_WEEKS, chunk, form_head, form_tail
from tests.web.helpers import (
    Answer,
    BusySlot,
    Serve,
    Web,
    open_raw,
    paced_body,
    post_form,
    read_answer,
    reserve,
    rows_of,
    send,
)

LOOPBACK = TrustedProxies((ipaddress.ip_network("127.0.0.1/32"),))


async def put_head(web: Web, size_bytes: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A reserved upload whose PUT has begun over a bare connection; the body is the test's."""
    reserved = await reserve(web, {"file_name": "slow.csv", "size_bytes": size_bytes})
    return await open_raw(
        web.port,
        f"PUT {reserved.body['upload_url']} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: text/csv\r\nContent-Length: {size_bytes}\r\n\r\n",
    )


async def trickle(writer: asyncio.StreamWriter, data: bytes, piece: int, every_s: float) -> None:
    """A slow client: `piece` bytes every `every_s` seconds, until cancelled or done."""
    with contextlib.suppress(ConnectionError):
        for start in range(0, len(data), piece):
            writer.write(data[start : start + piece])
            await writer.drain()
            await asyncio.sleep(every_s)


async def answer_to_trickle(web: Web, data: bytes, *, piece: int, every_s: float) -> Answer:
    """The service's answer to a reserved upload whose PUT trickles `data` in."""
    reader, writer = await put_head(web, len(data))
    sending = asyncio.create_task(trickle(writer, data, piece, every_s))
    try:
        return await read_answer(reader)
    finally:
        sending.cancel()
        writer.close()


async def test_a_stalled_upload_is_answered_408_and_closed_within_a_second(serve: Serve) -> None:
    """The 408 and the end of the connection come together: no lingering while the client
    holds the socket open."""
    web = await serve(upload_idle_timeout_s=0.3)
    reader, writer = await put_head(web, 10_000)
    try:
        writer.write(TWO_WEEKS)
        await writer.drain()
        answer = await read_answer(reader)
        assert answer.status == 408
        assert answer.body["error"].startswith("The upload stalled")
        # Closed, not kept open for the client: the bound only keeps a failure from hanging.
        assert await asyncio.wait_for(reader.read(), 10.0) == b""
    finally:
        writer.close()


async def test_a_trickle_under_the_minimum_rate_is_refused_and_its_job_says_which_rule(
    serve: Serve,
) -> None:
    """Ten bytes every 50 ms against 2,000 B/s over 0.5 s: 408 naming the rate, and the job
    fails with the same sentence; a steady upload in the same settings is fine."""
    web = await serve(
        upload_idle_timeout_s=5, upload_min_bytes_per_s=2000, upload_rate_window_s=0.5
    )
    answer = await answer_to_trickle(web, rows_of(20_000), piece=10, every_s=0.05)
    assert answer.status == 408
    assert answer.body["error"].startswith("The upload was too slow: ")
    [job] = web.jobs.recent()
    finished = await web.finished(job.id)
    assert finished["status"] == "failed"
    assert finished["error"].startswith("the upload was too slow: ")
    assert "less than the 2,000 bytes a second an upload must keep up" in finished["error"]

    steady = await web.upload(TWO_WEEKS)
    assert (await web.finished(steady.body["job_id"]))["status"] == "succeeded"


async def test_an_upload_past_its_overall_deadline_is_refused(serve: Serve) -> None:
    """Sending steadily but for longer than UPLOAD_MAX_SECONDS of its own time: 408 saying
    the upload took too long."""
    web = await serve(upload_idle_timeout_s=5, upload_max_s=0.5, upload_min_bytes_per_s=0)
    answer = await answer_to_trickle(web, rows_of(6_000_000), piece=2_000, every_s=0.01)
    assert answer.status == 408  # 30 s of sending at this pace
    assert answer.body["error"].startswith("The upload took too long: it was still arriving")


async def test_time_waiting_for_a_job_slot_is_not_held_against_the_client(serve: Serve) -> None:
    """Every slot busy for longer than the idle and overall limits: the upload is simply not
    read meanwhile, then arrives whole and is analysed."""
    web = await serve(
        job_concurrency=1, upload_idle_timeout_s=0.3, upload_max_s=0.3, upload_min_bytes_per_s=0
    )
    data = rows_of(36_000_000)  # more than every buffer on the way holds
    async with BusySlot(web) as busy:
        reserved = await reserve(web, {"file_name": "big.csv", "size_bytes": len(data)})
        sending = asyncio.create_task(send(web, reserved.body["upload_url"], data))
        job_id = reserved.body["job_id"]
        await web.jobs.wait_until(lambda: web.jobs.get(job_id) is not None, 10)
        await asyncio.sleep(1.0)  # the service keeps the slot busy: this is the scenario
        assert not sending.done()
        busy.release()
    answer = await asyncio.wait_for(sending, 60)
    assert answer.status == 202
    assert (await web.finished(job_id))["report"]["rows"]["total"] == data.count(b"\n") - 1


async def test_an_upload_waiting_for_its_bytes_lets_another_file_run(serve: Serve) -> None:
    """One slot: a live upload that has sent a little and waits does not hold it; a form
    upload meanwhile is analysed, and the first finishes once its bytes come."""
    web = await serve(job_concurrency=1)
    data = rows_of(100_000)
    reserved = await reserve(web, {"file_name": "slow.csv", "size_bytes": len(data)})
    body, pieces = paced_body()
    sending = asyncio.create_task(send(web, reserved.body["upload_url"], pieces))
    await body.put(data[:1000])
    job_id = reserved.body["job_id"]
    await web.jobs.wait_until(lambda: web.jobs.get(job_id) is not None, 10)
    other = await web.upload(TWO_WEEKS, "meanwhile.csv")
    assert (await web.finished(other.body["job_id"]))["status"] == "succeeded"
    assert not sending.done()
    await body.put(data[1000:])
    await body.put(None)
    assert (await sending).status == 202
    assert (await web.finished(job_id))["report"]["rows"]["total"] == data.count(b"\n") - 1


async def hold_form(
    port: int, name: str, forwarded_for: str
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await open_raw(
        port,
        "POST /api/upload HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"X-Forwarded-For: {forwarded_for}\r\n"
        f"Content-Type: {FORM_TYPE}\r\nTransfer-Encoding: chunked\r\n\r\n",
    )
    writer.write(chunk(form_head(name) + TWO_WEEKS))
    await writer.drain()
    return reader, writer


async def test_uploads_in_flight_are_bounded_for_all_clients_together(serve: Serve) -> None:
    """UPLOADS_IN_FLIGHT=3: a fourth client's upload while three arrive is 503 with
    Retry-After, in words; once one has arrived, the next is taken."""
    web = await serve(uploads_in_flight=3, trusted_proxies=LOOPBACK)
    held = [await hold_form(web.port, f"held-{n}.csv", f"10.0.0.{n}") for n in range(3)]
    await web.jobs.wait_until(lambda: len(web.jobs.recent()) == 3, 10)
    async with web.session.post(
        "/api/upload",
        data=form_of(TWO_WEEKS),
        headers={"X-Forwarded-For": "10.0.0.9", "Content-Type": FORM_TYPE},
    ) as response:
        refused = (response.status, await response.json(), response.headers.get("Retry-After"))
    assert refused[0] == 503
    assert refused[2] is not None
    assert "as many uploads as it takes at once (3)" in refused[1]["error"]
    reader, writer = held[0]
    writer.write(chunk(form_tail()) + b"0\r\n\r\n")
    await writer.drain()
    assert (await read_answer(reader)).status == 202
    async with web.session.post(
        "/api/upload",
        data=form_of(TWO_WEEKS),
        headers={"X-Forwarded-For": "10.0.0.9", "Content-Type": FORM_TYPE},
    ) as response:
        assert response.status == 202
    for _, writer in held:
        writer.close()


async def test_a_put_refused_for_too_many_uploads_keeps_its_reservation(serve: Serve) -> None:
    """The third upload of a client while two arrive: 429, and the same address takes the
    body once one of the two has arrived."""
    web = await serve()
    held = [await hold_form(web.port, f"held-{n}.csv", "ignored") for n in range(2)]
    await web.jobs.wait_until(lambda: len(web.jobs.recent()) == 2, 10)
    reserved = await reserve(web, {"file_name": "third.csv", "size_bytes": len(TWO_WEEKS)})
    refused = await send(web, reserved.body["upload_url"], TWO_WEEKS)
    assert refused.status == 429
    assert "2 uploads on their way" in refused.body["error"]
    reader, writer = held[0]
    writer.write(chunk(form_tail()) + b"0\r\n\r\n")
    await writer.drain()
    assert (await read_answer(reader)).status == 202
    taken = await send(web, reserved.body["upload_url"], TWO_WEEKS)
    assert taken.status == 202
    assert (await web.finished(reserved.body["job_id"]))["status"] == "succeeded"
    for _, writer in held:
        writer.close()


def form_of(data: bytes) -> bytes:
    return form_head("events.csv") + data + form_tail()


async def test_behind_a_trusted_proxy_each_client_has_its_own_limits(serve: Serve) -> None:
    """With FORWARDED_ALLOW_IPS the proxy's clients are told apart by X-Forwarded-For; a
    client cannot pose as another by writing the header itself (the rightmost entry that
    is not a trusted proxy counts); without the setting the header is ignored."""
    web = await serve(uploads_per_minute=1, trusted_proxies=LOOPBACK)

    async def upload_as(forwarded_for: str) -> int:
        async with web.session.post(
            "/api/upload",
            data=form_of(TWO_WEEKS),
            headers={"X-Forwarded-For": forwarded_for, "Content-Type": FORM_TYPE},
        ) as response:
            return response.status

    assert await upload_as("10.0.0.1") == 202
    assert await upload_as("10.0.0.2") == 202
    assert await upload_as("10.0.0.1") == 429
    assert await upload_as("10.0.0.2, 10.0.0.1") == 429  # "10.0.0.2" was written by 10.0.0.1

    plain = await serve(uploads_per_minute=1)

    async def upload_plainly(forwarded_for: str) -> int:
        async with plain.session.post(
            "/api/upload",
            data=form_of(TWO_WEEKS),
            headers={"X-Forwarded-For": forwarded_for, "Content-Type": FORM_TYPE},
        ) as response:
            return response.status

    assert await upload_plainly("10.0.0.1") == 202
    assert await upload_plainly("10.0.0.2") == 429  # the same peer: the header is not believed


def test_the_client_named_by_forwarding_headers() -> None:
    """X-Forwarded-For over Forwarded, ports and brackets dropped, trusted hops skipped, a
    peer that is no trusted proxy taken as it is."""
    proxies = TrustedProxies(
        (ipaddress.ip_network("10.1.0.0/16"), ipaddress.ip_network("fd00::/8"))
    )

    def client(peer: str, **headers: str) -> str:
        named = CIMultiDict((name.replace("_", "-"), value) for name, value in headers.items())
        return forwarded_client(peer, named, proxies)

    assert client("10.1.0.5", X_Forwarded_For="203.0.113.7") == "203.0.113.7"
    assert client("10.1.0.5", X_Forwarded_For="198.51.100.1, 203.0.113.7, 10.1.2.3") == (
        "203.0.113.7"
    )
    assert client("10.1.0.5", X_Forwarded_For="203.0.113.7:5123") == "203.0.113.7"
    assert client("10.1.0.5", Forwarded='for="[2001:db8::17]:4711";proto=https') == (
        "2001:db8::/64"  # an IPv6 client is its /64
    )
    assert client("10.1.0.5", X_Forwarded_For="::ffff:203.0.113.7") == "203.0.113.7"
    assert client("::ffff:192.0.2.1") == "192.0.2.1"
    assert client("10.1.0.5", Forwarded="for=198.51.100.9, for=10.1.9.9") == "198.51.100.9"
    assert client("10.1.0.5", X_Forwarded_For="10.1.0.7, 10.1.0.8") == "10.1.0.7"
    assert client("10.1.0.5") == "10.1.0.5"
    assert client("192.0.2.1", X_Forwarded_For="203.0.113.7") == "192.0.2.1"
    assert forwarded_client("198.51.100.1", CIMultiDict(), TrustedProxies(any=True)) == (
        "198.51.100.1"
    )
    assert client("10.1.0.5", X_Forwarded_For="unknown") == "unknown"


async def raw_exchange(web: Web, request: bytes) -> tuple[bytes, bytes]:
    """Send these exact bytes; the answer's head and body as they came, to the end."""
    reader, writer = await asyncio.open_connection("127.0.0.1", web.port)
    try:
        writer.write(request)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    return head, body


async def test_requests_aiohttp_cannot_read_are_answered_in_json_echoing_nothing(
    web: Web,
) -> None:
    """An oversized header, Content-Length beside Transfer-Encoding, a bad chunk, a broken
    request line: each a JSON error in words, with none of the request's bytes, in the
    answer or the logs."""
    secret = "Bearer " + "a" * 9000
    cases = [
        b"GET /api/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: "
        + secret.encode()
        + b"\r\n\r\n",
        b"PUT /api/uploads/x HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer aaaa-leak\r\n"
        b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"GET /aaaa-leak\x01 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        b"POST /api/upload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
        + FORM_TYPE.encode()
        + b"\r\nTransfer-Encoding: chunked\r\n\r\nzz-aaaa-leak\r\n",
    ]
    with structlog.testing.capture_logs() as logs:
        for request in cases:
            head, body = await raw_exchange(web, request)
            status = int(head.split(b" ", 2)[1])
            assert 400 <= status < 500, head
            assert b"application/json" in head.lower(), head
            assert b"aaaa" not in head + body, body[:200]
            assert body.startswith(b'{"error": "'), body[:200]
    assert "aaaa" not in repr(logs)


async def test_the_service_still_answers_after_hostile_requests(web: Web) -> None:
    """Requests it cannot read cost their own connection only."""
    await raw_exchange(web, b"\x16\x03\x01 not http at all\r\n\r\n")
    assert (await web.get_json("/api/config")).status == 200


async def test_connections_from_one_client_are_bounded(
    web: Web, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past MAX_CONNECTIONS_PER_CLIENT open connections from one address, the next is
    closed at once, without a word; once they close, connections are taken again."""
    assert web.service is not None
    limits = web.service.web_runner.server.limits  # type: ignore[union-attr]
    released = releases_of(limits, monkeypatch)
    opened = [
        await asyncio.open_connection("127.0.0.1", web.port)
        for _ in range(protocol.MAX_CONNECTIONS_PER_CLIENT)
    ]
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", web.port)
        assert await asyncio.wait_for(reader.read(), 5) == b""
        writer.close()
    finally:
        for _, open_writer in opened:
            open_writer.close()
            await open_writer.wait_closed()
    await asyncio.wait_for(until_closed(limits, released), 5)
    assert (await web.get_json("/api/config")).status == 200


def releases_of(
    limits: protocol.ConnectionLimits, monkeypatch: pytest.MonkeyPatch
) -> asyncio.Event:
    """An event set each time the server lets a connection go."""
    released = asyncio.Event()
    release = limits.release

    def release_and_tell(handler: Any) -> None:
        release(handler)
        released.set()

    monkeypatch.setattr(limits, "release", release_and_tell)
    return released


async def until_closed(limits: protocol.ConnectionLimits, released: asyncio.Event) -> None:
    """Until the server has seen every test connection go (connection_lost runs later)."""
    while limits.count > 1:  # the session's own keep-alive connection may stay
        released.clear()
        await released.wait()


async def test_expect_is_answered_in_json_and_continue_only_with_the_access_code(
    serve: Serve,
) -> None:
    """An Expect other than 100-continue: 417 in JSON, echoing nothing; 100-continue
    without the access code: 401 before a byte of the body is sent."""
    web = await serve(upload_token="s3cret")
    head, body = await raw_exchange(
        web,
        b"POST /api/upload HTTP/1.1\r\nHost: 127.0.0.1\r\nExpect: ZQXJ-echo\r\n"
        b"Content-Length: 5\r\n\r\n",
    )
    assert head.startswith(b"HTTP/1.1 417")
    assert b"application/json" in head
    assert b"ZQXJ" not in head + body
    head, body = await raw_exchange(
        web,
        b"PUT /api/uploads/x/y HTTP/1.1\r\nHost: 127.0.0.1\r\nExpect: 100-continue\r\n"
        b"Content-Length: 5\r\n\r\n",
    )
    assert head.startswith(b"HTTP/1.1 401")
    assert b"100 Continue" not in head
    head, body = await raw_exchange(
        web,
        b"GET /nothing HTTP/1.1\r\nHost: 127.0.0.1\r\nExpect: ZQXJ-echo\r\n\r\n",
    )
    assert b"application/json" in head
    assert b"ZQXJ" not in head + body


async def test_a_reservation_body_that_never_ends_is_closed(serve: Serve) -> None:
    """13 of 100 promised bytes and then nothing: 408 at the idle time, not a handle held
    for ever."""
    web = await serve(upload_idle_timeout_s=0.3)
    reader, writer = await open_raw(
        web.port,
        "POST /api/uploads HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        "Content-Length: 100\r\n\r\n",
    )
    try:
        writer.write(b'{"file_name":')
        await writer.drain()
        answer = await read_answer(reader)
    finally:
        writer.close()
    assert answer.status == 408


async def test_what_a_put_and_a_reservation_refuse_in_size(web: Web) -> None:
    """A size past any file is a plain 413 that repeats nothing; a PUT whose length is not
    the reserved size is 400 and starts nothing."""
    huge = await reserve(web, {"file_name": "a.csv", "size_bytes": 10**309})
    assert huge.status == 413
    assert "0" * 30 not in huge.body["error"]
    reserved = await reserve(web, {"file_name": "a.csv", "size_bytes": 10})
    wrong = await send(web, reserved.body["upload_url"], TWO_WEEKS)
    assert wrong.status == 400
    assert "reserved for a file of 10 bytes" in wrong.body["error"]
    assert web.jobs.recent() == []


async def test_two_forms_racing_with_one_key_and_two_files_never_share_a_job(
    web: Web,
) -> None:
    """Sent at once with the same Idempotency-Key, two different files: one is a job, the
    other 422 or 409, never answered with the first's job."""
    key = {"Idempotency-Key": "race-1", "Content-Type": FORM_TYPE}
    other = TWO_WEEKS.replace(b"100.50", b"999.99")

    async def post(data: bytes) -> tuple[int, dict[str, str]]:
        async with web.session.post("/api/upload", data=form_of(data), headers=key) as response:
            return response.status, await response.json()

    answers = await asyncio.gather(post(TWO_WEEKS), post(other))
    accepted = [body for status, body in answers if status == 202]
    assert len(accepted) == 1, answers
    assert sorted(status for status, _ in answers)[1] in (409, 422), answers


async def test_hostile_names_and_hashes_are_refused_in_words(web: Web) -> None:
    """A file name of bytes that are not UTF-8 is shown with ?, never as escapes or raw
    bytes; a head_sha256 that is not 64 hex digits, or a megabyte of it, is a 400."""
    body = (
        b'--b0undary\r\nContent-Disposition: form-data; name="file"; filename="ev\xffil.xlsx"'
        b"\r\nContent-Type: text/csv\r\n\r\nevent_id\n\r\n--b0undary--\r\n"
    )
    answer = await post_form(web.port, body, "multipart/form-data; boundary=b0undary")
    assert answer.status == 415
    assert "ev?il.xlsx" in answer.body["error"]
    assert "\\udc" not in answer.body["error"]
    for head in ("ZZ" * 32, "a" * 63, "a" * 1_000_000, 12):
        refused = await reserve(web, {"file_name": "a.csv", "size_bytes": 10, "head_sha256": head})
        assert refused.status in (400, 413), head
        assert "head_sha256" in refused.body["error"] or refused.status == 413

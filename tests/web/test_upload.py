"""POST /api/upload against the running service: streaming, limits, auth and failures."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import structlog

from bot import web as web_module
from bot.config import Settings
from bot.jobs.job import Job
from bot.jobs.replies import SilentReplier
from bot.jobs.runner import JobRunner
from bot.metrics import Metrics
from bot.web.intake import FORM_OVERHEAD_BYTES
from tests.helpers import BOUNDARY, FORM_TYPE, TWO_WEEKS, chunk, form_head, form_tail
from tests.web.helpers import (
    PATIENT_ID,
    Serve,
    Web,
    open_raw,
    post_form,
    read_answer,
    rows_of,
    without_source,
)

TOKEN = "s3cret-upload-token"


def uploads(web: Web) -> dict[str, float]:
    return {
        sample.labels["outcome"]: sample.value
        for metric in web.metrics.uploads.collect()
        for sample in metric.samples
        if sample.name.endswith("_total")
    }


async def test_upload_is_processed_and_matches_the_pinned_report(
    web: Web, sample_bytes: bytes, pinned_report: dict[str, Any]
) -> None:
    """The sample uploads with 202 and its job ends with the pinned report."""
    answer = await web.upload(sample_bytes, "events-sample.csv")

    assert answer.status == 202
    job_id = answer.body["job_id"]
    assert answer.body == {"job_id": job_id, "status_url": f"/api/jobs/{job_id}"}
    job = await web.finished(job_id)
    assert job["status"] == "succeeded"
    assert job["error"] is None
    assert without_source(job["report"]) == without_source(pinned_report)
    assert job["report"]["source"] == "events-sample.csv"
    assert job["source"]["kind"] == "upload"
    assert job["source"]["name"] == "events-sample.csv"
    assert job["progress"]["rows"] == 3000
    assert job["progress"]["revenue"] == "305272.95"
    assert job["progress"]["percent"] == 100.0
    assert uploads(web)["accepted"] == 1


async def test_no_file_part_is_400(web: Web) -> None:
    """A form without a `file` part is a 400 that says what to send."""
    answer = await web.upload(TWO_WEEKS, field="document")

    assert answer.status == 400
    assert "No file was attached" in answer.body["error"]
    assert uploads(web)["bad_request"] == 1
    assert web.jobs.recent() == []


async def test_a_body_that_is_not_a_form_is_400(web: Web) -> None:
    """A raw CSV body instead of a form is a 400."""
    async with web.session.post("/api/upload", data=TWO_WEEKS) as response:
        assert response.status == 400
        assert "form upload" in (await response.json())["error"]


@pytest.mark.parametrize("name", ["events.xlsx", "events.csv.txt", "events"])
async def test_a_file_not_named_csv_is_415(web: Web, name: str) -> None:
    """Only .csv files are taken, whatever their contents."""
    answer = await web.upload(TWO_WEEKS, name)

    assert answer.status == 415
    assert "is not a CSV file" in answer.body["error"]
    assert uploads(web)["unsupported_type"] == 1


async def test_csv_extension_in_any_case_is_accepted(web: Web) -> None:
    """EVENTS.CSV is a CSV file too."""
    answer = await web.upload(TWO_WEEKS, "EVENTS.CSV")

    assert answer.status == 202
    assert (await web.finished(answer.body["job_id"]))["status"] == "succeeded"


async def test_too_large_by_content_length_is_refused_before_the_body(serve: Serve) -> None:
    """A Content-Length over the limit gets 413 at once, with no body byte sent."""
    web = await serve(max_file_size_bytes=1 << 20)
    reader, writer = await open_raw(
        web.port,
        "POST /api/upload HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: {FORM_TYPE}\r\nContent-Length: {50 << 20}\r\n\r\n",
    )
    try:
        answer = await read_answer(reader)
    finally:
        writer.close()

    assert answer.status == 413
    assert answer.headers["Connection"] == "close"
    assert "over the 1 MB limit" in answer.body["error"]
    assert uploads(web)["too_large"] == 1
    assert web.jobs.recent() == []


async def test_too_large_mid_stream_is_answered_before_the_body_ends(serve: Serve) -> None:
    """A chunked body passing the limit gets 413 while the client still has data to send."""
    limit = 1 << 20
    web = await serve(max_file_size_bytes=limit)
    reader, writer = await open_raw(
        web.port,
        "POST /api/upload HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: {FORM_TYPE}\r\nTransfer-Encoding: chunked\r\n\r\n",
    )
    try:
        # Past the limit, but no closing boundary and no last chunk: the body is not done.
        writer.write(chunk(form_head("big.csv") + rows_of(limit + (512 << 10))))
        await writer.drain()
        answer = await read_answer(reader)
    finally:
        writer.close()

    assert answer.status == 413
    assert answer.headers["Connection"] == "close"
    assert "larger than the 1 MB limit" in answer.body["error"]
    [job] = web.jobs.recent()
    finished = await web.finished(job.id)
    assert finished["status"] == "failed"
    assert "larger than the 1 MB limit" in finished["error"]


async def test_aiohttp_client_streaming_too_much_gets_413_not_an_error(serve: Serve) -> None:
    """A streaming client sees a plain 413 response; the rest of its body is never needed."""
    limit = 1 << 20
    web = await serve(max_file_size_bytes=limit)
    answered = asyncio.Event()
    sent_everything = False

    async def body() -> AsyncIterator[bytes]:
        nonlocal sent_everything
        yield form_head("big.csv") + rows_of(limit + (512 << 10))
        await answered.wait()  # never set before the answer: the body cannot have ended
        yield form_tail()
        sent_everything = True

    async with web.session.post(
        "/api/upload", data=body(), headers={"Content-Type": FORM_TYPE}
    ) as response:
        answered.set()
        assert response.status == 413
        assert "limit" in (await response.json())["error"]
    assert not sent_everything


async def test_missing_or_wrong_token_is_401_and_the_right_one_works(serve: Serve) -> None:
    """With UPLOAD_TOKEN set, uploads need it as a Bearer token."""
    web = await serve(upload_token=TOKEN)

    missing = await web.upload(TWO_WEEKS)
    wrong = await web.upload(TWO_WEEKS, token="not-the-token")
    right = await web.upload(TWO_WEEKS, token=TOKEN)

    for answer in (missing, wrong):
        assert answer.status == 401
        assert answer.headers["WWW-Authenticate"].startswith("Bearer")
        assert "access code" in answer.body["error"]
    assert right.status == 202
    job = await web.finished(right.body["job_id"], token=TOKEN)
    assert job["status"] == "succeeded"
    assert uploads(web)["unauthorized"] == 2
    assert uploads(web)["accepted"] == 1


async def test_the_job_api_needs_the_token_too(serve: Serve) -> None:
    """Reports are business figures: with a token set, reading jobs needs it."""
    web = await serve(upload_token=TOKEN)
    job_id = (await web.upload(TWO_WEEKS, token=TOKEN)).body["job_id"]
    await web.finished(job_id, token=TOKEN)

    for path in ("/api/jobs", f"/api/jobs/{job_id}", f"/api/jobs/{job_id}/chart.png"):
        refused = await web.get_json(path)
        assert refused.status == 401, path
        assert refused.headers["WWW-Authenticate"].startswith("Bearer")
        async with web.session.get(path, headers={"Authorization": f"Bearer {TOKEN}"}) as ok:
            assert ok.status == 200, path


async def test_rate_limit_counts_every_request_and_answers_429(serve: Serve) -> None:
    """Rejected uploads count toward the per-minute limit; the next one gets 429."""
    web = await serve(uploads_per_minute=3, upload_token=TOKEN)

    unauthorized = await web.upload(TWO_WEEKS)
    wrong_type = await web.upload(TWO_WEEKS, "events.txt", token=TOKEN)
    accepted = await web.upload(TWO_WEEKS, token=TOKEN)
    limited = await web.upload(TWO_WEEKS, token=TOKEN)

    assert [unauthorized.status, wrong_type.status, accepted.status] == [401, 415, 202]
    assert limited.status == 429
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert "Too many uploads" in limited.body["error"]
    assert uploads(web)["rate_limited"] == 1
    assert len(web.jobs.recent()) == 1


async def test_shutting_down_answers_503(web: Web) -> None:
    """While the service drains it takes no new uploads."""
    web.jobs.accepting = False

    answer = await web.upload(TWO_WEEKS)

    assert answer.status == 503
    assert "restarting" in answer.body["error"]
    assert "Retry-After" in answer.headers
    assert uploads(web)["unavailable"] == 1
    assert web.jobs.recent() == []


async def test_missing_columns_fail_the_job_and_the_upload_still_completes(web: Web) -> None:
    """A job that stops reading early does not hold the upload: 202, then the job says why."""
    # Far more than the job's queue and first block: the handler must drop the rest.
    body = b"date,amount\n" + b"2024-01-02,10.00\n" * 400_000

    answer = await web.upload(body, "wrong-columns.csv")

    assert answer.status == 202
    job = await web.finished(answer.body["job_id"])
    assert job["status"] == "failed"
    assert job["error"].startswith("the first line does not look like a header")
    assert job["report"] is None


async def test_concurrent_uploads_all_succeed(
    serve: Serve, sample_bytes: bytes, pinned_report: dict[str, Any]
) -> None:
    """Two uploads at once (the most one address may have open) with one job slot: both are
    processed, none mixed up."""
    web = await serve(job_concurrency=1)

    answers = await asyncio.gather(*(web.upload(sample_bytes, f"sample-{n}.csv") for n in range(2)))

    assert [answer.status for answer in answers] == [202] * 2
    jobs = [await web.finished(answer.body["job_id"]) for answer in answers]
    for n, job in enumerate(jobs):
        assert job["status"] == "succeeded"
        assert job["report"]["source"] == f"sample-{n}.csv"
        assert without_source(job["report"]) == without_source(pinned_report)


async def test_no_patient_id_or_token_is_logged_or_echoed(serve: Serve) -> None:
    """Logs and answers carry neither the file's values nor the token."""
    web = await serve(upload_token=TOKEN)
    with structlog.testing.capture_logs() as logs:
        answer = await web.upload(rows_of(4096), token=TOKEN)
        await web.finished(answer.body["job_id"], token=TOKEN)
        refused = await web.upload(rows_of(4096), token=TOKEN + "x")
        listing = await web.get_json("/api/jobs", token=TOKEN)

    text = repr(logs) + repr(answer.body) + repr(refused.body) + repr(listing.body)
    assert any(entry["event"] == "upload.accepted" for entry in logs)
    assert PATIENT_ID not in text
    assert TOKEN not in text


# -- with a web app of our own: repliers that fail or tell us when a job is announced ---------


class Announcing(SilentReplier):
    """Records announcements; can refuse them, as Slack does for a channel it is not in."""

    def __init__(self, *, fail: bool = False) -> None:
        self.fail = fail
        self.announced = asyncio.Event()

    async def announce(self, job: Job, queue_position: int | None) -> None:
        self.announced.set()
        if self.fail:
            raise RuntimeError("not_in_channel")


@contextlib.asynccontextmanager
async def bare_web(replier: Announcing) -> AsyncIterator[Web]:
    settings = Settings(port=0)
    metrics = Metrics()
    jobs = JobRunner(metrics=metrics, max_file_size_bytes=settings.max_file_size_bytes)

    async def slack_state() -> str:
        return "disabled"

    context = web_module.WebContext(
        settings=settings,
        jobs=jobs,
        metrics=metrics,
        slack_state=slack_state,
        slack_down_for_s=lambda: 0.0,
        upload_replier=lambda: replier,
    )
    runner, port = await web_module.start(context)
    try:
        async with aiohttp.ClientSession(base_url=f"http://127.0.0.1:{port}") as session:
            yield Web(port, jobs, metrics, session)
    finally:
        await jobs.shutdown(5)
        await runner.cleanup()


async def test_a_refused_announcement_does_not_fail_the_upload() -> None:
    """If telling Slack fails, the job still runs and the job API shows it."""
    replier = Announcing(fail=True)
    async with bare_web(replier) as web:
        answer = await web.upload(TWO_WEEKS)

        assert replier.announced.is_set()
        assert answer.status == 202
        assert (await web.finished(answer.body["job_id"]))["status"] == "succeeded"


async def test_a_client_that_disconnects_mid_upload_fails_its_job() -> None:
    """An upload cut off half-way ends its job with a message, and counts as failed."""
    replier = Announcing()
    async with bare_web(replier) as web:
        _, writer = await open_raw(
            web.port,
            "POST /api/upload HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: {FORM_TYPE}\r\nTransfer-Encoding: chunked\r\n\r\n",
        )
        writer.write(chunk(form_head("cut.csv") + rows_of(64 << 10)))
        await writer.drain()
        await asyncio.wait_for(replier.announced.wait(), 10)
        writer.close()
        await writer.wait_closed()

        [job] = web.jobs.recent()
        finished = await web.finished(job.id)

        assert finished["status"] == "failed"
        assert "stopped before the whole file arrived" in finished["error"]
        assert uploads(web)["failed"] == 1


def test_rate_limiter_slides_and_forgets() -> None:
    """The window slides per client, refused requests count too, quiet clients are forgotten."""
    now = [0.0]
    limiter = web_module.RateLimiter(2, window_s=60, clock=lambda: now[0])

    assert limiter.hit("a") is None
    now[0] = 10
    assert limiter.hit("a") is None
    assert limiter.hit("a") == pytest.approx(60)  # refused, and counted: wait a full window
    assert limiter.hit("b") is None
    now[0] = 60.5
    assert limiter.hit("a") == pytest.approx(9.5)  # knocking early is refused, and counts
    now[0] = 70.5
    assert limiter.hit("a") is None  # waited as told
    now[0] = 500
    assert limiter.hit("c") is None
    assert set(limiter._hits) == {"c"}


async def test_a_crlf_file_with_fields_after_it_arrives_whole(web: Web) -> None:
    """The file part ends exactly at its delimiter, whatever its line ends look like, and
    small fields after it are read and dropped."""
    crlf = TWO_WEEKS.replace(b"\n", b"\r\n") + b"\r\n--" + b"\r\n"  # a last row of dashes
    body = (
        form_head("events.csv")
        + crlf
        + f'\r\n--{BOUNDARY}\r\nContent-Disposition: form-data; name="note"\r\n\r\nhi'.encode()
        + form_tail()
    )

    answer = await post_form(web.port, body)

    assert answer.status == 202
    job = await web.finished(answer.body["job_id"])
    assert job["status"] == "succeeded"
    assert job["report"]["rows"] == {"total": 4, "valid": 3, "invalid": 1}
    assert job["report"]["revenue"] == "120.50"


@pytest.mark.parametrize(
    ("after_the_file", "why"),
    [
        (b"\r\n", "the form never closes"),
        (b"\r\n" + b"x" * (FORM_OVERHEAD_BYTES + 1) + form_tail(), "too much besides the file"),
    ],
)
async def test_a_form_that_does_not_end_properly_is_400(
    web: Web, after_the_file: bytes, why: str
) -> None:
    """After the file, the body must close the form within a few KiB: 400 otherwise."""
    body = form_head("events.csv") + TWO_WEEKS + f"\r\n--{BOUNDARY}".encode() + after_the_file

    answer = await post_form(web.port, body)

    assert answer.status == 400, why
    assert "garbled or incomplete" in answer.body["error"]


async def test_a_form_that_ends_inside_the_file_is_400_and_fails_its_job(web: Web) -> None:
    """A body that stops before the file's delimiter loses the job, not the service."""
    answer = await post_form(web.port, form_head("events.csv") + TWO_WEEKS)

    assert answer.status == 400
    assert "garbled or incomplete" in answer.body["error"]
    [job] = [job for job in web.jobs.recent() if job.source.name == "events.csv"]
    assert (await web.finished(job.id))["status"] == "failed"

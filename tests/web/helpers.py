"""What the web tests share: the running service as a `Web` with its client session, files
of a given size, the two-step upload's requests, and bare HTTP/1.1 over a socket for what
aiohttp's client will not send."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from bot.app import Service
from bot.jobs.job import Job
from bot.jobs.replies import SilentReplier
from bot.jobs.runner import JobRunner
from bot.metrics import Metrics
from bot.sources import CallbackSource, SourceInfo
from bot.store import JobStatus
from tests.helpers import FORM_TYPE, ROOT, TWO_WEEKS, UPLOAD_HEADER

SAMPLE = ROOT / "samples" / "events-sample.csv"
PINNED = ROOT / "samples" / "events-sample.report.json"
BUCKET = "clinic-uploads"
JOB_TIMEOUT_S = 30.0

PATIENT_ID = "P-123456"
ROW = f"e1,C1,{PATIENT_ID},APPOINTMENT_SCHEDULED,2024-01-02T10:00:00Z,,\n".encode()


def rows_of(size_bytes: int) -> bytes:
    """A valid CSV of about size_bytes."""
    return UPLOAD_HEADER.encode() + b"\n" + ROW * (size_bytes // len(ROW) + 1)


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any
    headers: Mapping[str, str]


@dataclass
class Web:
    """A running web app (normally the whole Service) and a client session for it."""

    port: int
    jobs: JobRunner
    metrics: Metrics
    session: aiohttp.ClientSession
    service: Service | None = None

    async def upload(
        self,
        data: bytes,
        filename: str = "events.csv",
        *,
        token: str | None = None,
        field: str = "file",
    ) -> Answer:
        form = aiohttp.FormData()
        form.add_field(field, data, filename=filename, content_type="text/csv")
        async with self.session.post("/api/upload", data=form, headers=_auth(token)) as response:
            return Answer(response.status, await response.json(), response.headers)

    async def get_json(self, path: str, *, token: str | None = None) -> Answer:
        async with self.session.get(path, headers=_auth(token)) as response:
            return Answer(response.status, await response.json(), response.headers)

    async def finished(self, job_id: str, *, token: str | None = None) -> dict[str, Any]:
        """The job's JSON once it has finished (waits on the job itself, not on a clock)."""
        job = self.jobs.get(job_id)
        assert job is not None, f"no job {job_id}"
        await asyncio.wait_for(job.done.wait(), JOB_TIMEOUT_S)
        answer = await self.get_json(f"/api/jobs/{job_id}", token=token)
        assert answer.status == 200, answer.body
        return answer.body


Serve = Callable[..., Awaitable[Web]]  # the serve fixture: Settings fields -> Web


def _auth(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def without_source(report: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in report.items() if key != "source"}


# -- the page's two steps: reserve, then send the bytes --------------------------------------


async def reserve(
    web: Web,
    body: Any,
    *,
    token: str | None = None,
    raw: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> Answer:
    """POST /api/uploads with `body` as JSON (or `raw` bytes as they are)."""
    headers = {**(headers or {}), **_auth(token)}
    options: dict[str, Any] = {"data": raw} if raw is not None else {"json": body}
    async with web.session.post("/api/uploads", headers=headers, **options) as response:
        return Answer(response.status, await response.json(), response.headers)


async def send(
    web: Web,
    url: str,
    data: Any,
    *,
    token: str | None = None,
    headers: dict[str, str] | None = None,
) -> Answer:
    """PUT the file's bytes to the upload URL a reservation gave."""
    headers = {"Content-Type": "text/csv", **(headers or {})}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    async with web.session.put(url, data=data, headers=headers) as response:
        return Answer(response.status, await response.json(), response.headers)


def paced_body() -> tuple[asyncio.Queue[bytes | None], AsyncIterator[bytes]]:
    """A request body sent piece by piece as the test puts pieces in (None ends it)."""
    body: asyncio.Queue[bytes | None] = asyncio.Queue()

    async def pieces() -> AsyncIterator[bytes]:
        while (piece := await body.get()) is not None:
            yield piece

    return body, pieces()


# -- bare HTTP/1.1 ---------------------------------------------------------------------------


async def open_raw(port: int, head: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A bare TCP client: the request head is sent, the body is up to the test."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(head.encode())
    await writer.drain()
    return reader, writer


async def read_answer(reader: asyncio.StreamReader) -> Answer:
    """Status, headers and JSON body of one HTTP/1.1 response with a Content-Length."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines if line)
    body = await asyncio.wait_for(reader.readexactly(int(headers["Content-Length"])), 10)
    return Answer(int(status_line.split()[1]), json.loads(body), headers)


async def post_form(port: int, body: bytes, content_type: str = FORM_TYPE) -> Answer:
    """POST /api/upload with this exact body and Content-Length, over a bare connection."""
    reader, writer = await open_raw(
        port,
        "POST /api/upload HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n",
    )
    writer.write(body)
    await writer.drain()
    answer = await read_answer(reader)
    writer.close()
    return answer


# -- a busy job slot -------------------------------------------------------------------------


class BusySlot:
    """A job that holds a job slot, reading an S3-like source that sends nothing until
    `release()`: the way a long analysis keeps a slot busy (an upload waiting for its
    bytes no longer does)."""

    def __init__(self, web: Web) -> None:
        self._web = web
        self._go = asyncio.Event()
        self.job: Job | None = None

    async def __aenter__(self) -> BusySlot:
        async def chunks() -> AsyncIterator[bytes]:
            await self._go.wait()
            yield TWO_WEEKS

        info = SourceInfo(kind="s3", name="busy.csv", label="s3://busy/busy.csv")
        self.job = await self._web.jobs.submit(CallbackSource(info, chunks), SilentReplier())
        job = self.job
        await self._web.jobs.wait_until(lambda: job.status is JobStatus.RUNNING, JOB_TIMEOUT_S)
        return self

    def release(self) -> None:
        self._go.set()

    async def __aexit__(self, *exc_info: object) -> None:
        self.release()
        assert self.job is not None
        await asyncio.wait_for(self.job.done.wait(), JOB_TIMEOUT_S)

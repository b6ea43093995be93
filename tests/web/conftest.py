"""The real service on a loopback port, and an HTTP client for it.

`serve(**settings)` starts `bot.app.running(Settings(port=0, ...))` in local mode (no Slack
tokens) and returns a `Web`: the Service plus an aiohttp session pointed at it. Everything
stops when the test ends. S3 staging talks to moto's server mode over real HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.app import Service, running
from bot.config import Settings
from bot.jobs.replies import SilentReplier
from bot.jobs.runner import Job, JobRunner, JobStatus
from bot.metrics import Metrics
from bot.sources import CallbackSource, SourceInfo

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "samples" / "events-sample.csv"
PINNED = ROOT / "samples" / "events-sample.report.json"
HEADER = "event_id,clinic_id,patient_id,event_type,event_timestamp,revenue_amount,treatment_type"
BUCKET = "clinic-uploads"
BOUNDARY = "clinic-events-test-boundary"
JOB_TIMEOUT_S = 30.0


def tiny_csv(*rows: str, header: str = HEADER) -> bytes:
    return ("\n".join((header, *rows)) + "\n").encode()


TWO_WEEKS = tiny_csv(
    "e1,C1,P1,TREATMENT_COMPLETED,2024-01-02T10:00:00Z,100.50,cleaning",
    "e2,C1,P2,APPOINTMENT_SCHEDULED,2024-01-03T10:00:00Z,,",
    "e3,C1,P3,TREATMENT_COMPLETED,2024-01-09T10:00:00Z,20.00,filling",
)


def form_head(filename: str, field: str = "file") -> bytes:
    """The start of a multipart body whose file part runs on until `form_tail()`."""
    return (
        f"--{BOUNDARY}\r\n"
        f'Content-Disposition: form-data; name="{field}"; filename="{filename}"\r\n'
        "Content-Type: text/csv\r\n\r\n"
    ).encode()


def form_tail() -> bytes:
    return f"\r\n--{BOUNDARY}--\r\n".encode()


FORM_TYPE = f"multipart/form-data; boundary={BOUNDARY}"


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
        return answer.body  # type: ignore[no-any-return]


def _auth(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def without_source(report: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in report.items() if key != "source"}


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


def chunk(data: bytes) -> bytes:
    """One chunk of a Transfer-Encoding: chunked body."""
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


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


Serve = Callable[..., Awaitable[Web]]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    """Start the service with these Settings fields (port 0, local mode, quiet console)."""
    async with contextlib.AsyncExitStack() as stack:

        async def start(**fields: Any) -> Web:
            fields.setdefault("progress_interval_s", 60.0)
            settings = Settings(port=0, **fields)
            service = await stack.enter_async_context(running(settings, console=io.StringIO()))
            session = await stack.enter_async_context(
                aiohttp.ClientSession(base_url=f"http://127.0.0.1:{service.port}")
            )
            return Web(service.port, service.jobs, service.metrics, session, service)

        yield start


@pytest.fixture
async def web(serve: Serve) -> Web:
    """The service with default settings."""
    return await serve()


@pytest.fixture(scope="session")
def pinned_report() -> dict[str, Any]:
    return json.loads(PINNED.read_text())


@pytest.fixture(scope="session")
def sample_bytes() -> bytes:
    return SAMPLE.read_bytes()


@pytest.fixture
def s3_client(s3: Any) -> Any:
    """An empty moto (tests/aws.py) with BUCKET in it; the service's client reads the same variables."""
    s3.create_bucket(Bucket=BUCKET)
    return s3

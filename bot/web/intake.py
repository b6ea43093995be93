"""How an upload's bytes become a job: read under an idle timeout and a size limit, refused
in words with the status that fits, streamed into the job or staged in S3 first. Shared by
the two ways in (uploads.py, reservations.py).

Never whole in memory, never on local disk. Every upload request counts towards the
client's rate limit; every rejection answers JSON in words, with the status that fits.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import structlog
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from bot import s3
from bot.errors import FileTooLargeError, S3Error, SourceError
from bot.jobs import UPLOAD_KEY_TTL_S, Job, NotAccepting
from bot.replies import SilentReplier
from bot.sources import (
    Source,
    SourceInfo,
    UploadSource,
    is_csv_name,
    s3_source,
)
from bot.store import Duplicate
from bot.web.context import (
    ASK_FOR_TOKEN,
    CONTEXT,
    IN_FLIGHT,
    LIMITER,
    TASKS,
    UNAUTHORIZED,
    WebContext,
    authorized,
    error_response,
)
from bot.web.guards import client_of
from processing.text import displayable

log = structlog.get_logger("bot.web")

T = TypeVar("T")

CHUNK_BYTES = 1024 * 1024
# Room for the form's boundaries, part headers and any small extra fields around the file:
# a Content-Length this far over the file limit cannot hold a file within it.
FORM_OVERHEAD_BYTES = 64 * 1024
MAX_NAME_CHARS = 200
INTERRUPTED = "the upload stopped before the whole file arrived; please upload the file again"


def stalled_reason(idle_s: float) -> str:
    return (
        f"the upload stalled: nothing arrived for {idle_s:g} seconds, so the connection was "
        "closed; please upload the file again"
    )


class Stalled(Exception):
    """The client sent nothing for UPLOAD_IDLE_TIMEOUT_SECONDS."""


Read = Callable[[], Awaitable[bytes]]


async def next_chunk(read: Read, idle_s: float) -> bytes:
    """The next piece of the body, or Stalled when the client goes quiet: a connection that
    trickles a byte now and then must not hold a job slot for hours."""
    try:
        async with asyncio.timeout(idle_s):
            return await read()
    except TimeoutError:
        raise Stalled() from None


async def file_chunks(
    request: web.Request, read: Read, idle_s: float, limit_bytes: int
) -> AsyncIterator[bytes]:
    """The file's chunks until the body ends; TooLarge as soon as it passes the limit.

    The bytes on the wire count too: aiohttp's multipart reader holds the last chunk it read
    back until it has seen what follows (a boundary may start in it), so a client that stops
    sending just past the limit would otherwise never be told.
    """
    received = 0
    while chunk := await next_chunk(read, idle_s):
        received += len(chunk)
        on_the_wire = request.content.total_bytes
        if received > limit_bytes or on_the_wire > limit_bytes + FORM_OVERHEAD_BYTES:
            raise TooLarge()
        yield chunk


def body_reader(request: web.Request) -> Read:
    return lambda: request.content.read(CHUNK_BYTES)


def clean_name(filename: str) -> str:
    """The file's own name, without any folders a browser or client put in front of it."""
    name = filename.replace("\\", "/").rsplit("/", 1)[-1]
    return displayable(name)[-MAX_NAME_CHARS:]


class Rejected(Exception):
    """An upload turned away: the answer, and the outcome counted in metrics."""

    def __init__(
        self,
        status: int,
        outcome: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        close: bool = True,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.outcome = outcome
        self.message = message
        self.headers = headers
        self.close = close

    def response(self) -> web.Response:
        return error_response(self.status, self.message, headers=self.headers, close=self.close)


class TooLarge(Exception):
    pass


def too_large(limit_bytes: int, size_bytes: int | None = None) -> Rejected:
    return Rejected(413, "too_large", _sentence(str(FileTooLargeError(size_bytes, limit_bytes))))


def _sentence(message: str) -> str:
    return message[:1].upper() + message[1:] + ("" if message.endswith(".") else ".")


async def answered(
    request: web.Request, handling: Coroutine[Any, Any, web.Response], *, counted: bool = True
) -> web.Response:
    """The handler's answer, or its rejection in words; counted in uploads_total (a
    reservation only when it is refused: the upload counts once it arrives)."""
    context = request.app[CONTEXT]
    outcome: str | None = "failed"
    try:
        response = await handling
        outcome = "accepted" if counted else None
    except Rejected as rejected:
        outcome = rejected.outcome
        response = rejected.response()
    except Exception:
        log.exception("upload.crashed")
        response = error_response(
            500, "Something went wrong on our side; please try the upload again.", close=True
        )
    finally:
        if outcome is not None:
            context.metrics.uploads.labels(outcome).inc()
    log.info("upload.answered", outcome=outcome or "reserved", status=response.status)
    return response


def admit(request: web.Request, context: WebContext) -> None:
    """The checks every new upload passes first: rate, access code, service accepting."""
    settings = context.settings
    # Every upload request counts, whatever becomes of it: a wrong token is no free retry.
    retry_after_s = request.app[LIMITER].hit(client_of(request))
    if retry_after_s is not None:
        wait_s = max(1, math.ceil(retry_after_s))
        raise Rejected(
            429,
            "rate_limited",
            f"Too many uploads from your address: at most {settings.uploads_per_minute} a "
            f"minute. Please wait {wait_s} seconds and try again.",
            headers={"Retry-After": str(wait_s)},
        )
    if not authorized(request, settings.upload_token):
        raise Rejected(401, "unauthorized", UNAUTHORIZED, headers=ASK_FOR_TOKEN)
    if not context.jobs.accepting:
        raise unavailable()


@contextlib.asynccontextmanager
async def in_flight_slot(request: web.Request) -> AsyncIterator[None]:
    in_flight = request.app[IN_FLIGHT]
    client = client_of(request)
    if not in_flight.enter(client):
        raise Rejected(
            429,
            "rate_limited",
            f"You already have {in_flight.limit} uploads on their way from your address. "
            "Please wait until one has finished.",
            headers={"Retry-After": "10"},
        )
    try:
        yield
    finally:
        in_flight.leave(client)


IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,200}")


def idempotency_key(request: web.Request) -> str | None:
    """An `Idempotency-Key` header names one upload for 24 hours, for this client address:
    the same key again is answered with the same job, and the body is not read again."""
    given = request.headers.get("Idempotency-Key")
    if given is None:
        return None
    if not IDEMPOTENCY_KEY.fullmatch(given):
        raise Rejected(
            400,
            "bad_request",
            "An Idempotency-Key is 1 to 200 visible ASCII characters (a UUID, for instance).",
        )
    return f"upload:{client_of(request)}:{given}"


def answered_again(job_id: str) -> web.Response:
    log.info("upload.answered_again", job_id=job_id)
    response = accepted_answer(job_id, staged=False)
    response.force_close()  # the body was not read
    return response


def accepted_answer(job_id: str, *, staged: bool) -> web.Response:
    log.info("upload.accepted", job_id=job_id, staged=staged)
    status_url = f"/api/jobs/{job_id}"
    return web.json_response(
        {"job_id": job_id, "status_url": status_url},
        status=202,
        headers={"Location": status_url},
    )


def stages_in_s3(context: WebContext) -> bool:
    return bool(context.settings.s3_bucket) and context.s3_client is not None


def upload_info(name: str, size_bytes: int | None) -> SourceInfo:
    return SourceInfo(kind="upload", name=name, label=f"upload {name}", size_bytes=size_bytes)


def checked_name(filename: str) -> str:
    name = clean_name(filename)
    if not is_csv_name(name):
        raise Rejected(
            415,
            "unsupported_type",
            f"“{name}” is not a CSV file. Export the events as CSV (a file ending in .csv) "
            "and upload that.",
        )
    return name


def background(app: web.Application, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
    tasks = app[TASKS]
    task = asyncio.create_task(work)
    tasks.add(task)
    task.add_done_callback(tasks.discard)
    return task


def unavailable() -> Rejected:
    return Rejected(
        503,
        "unavailable",
        "The service is restarting and takes no new files right now. Please try again in a minute.",
        headers={"Retry-After": "30"},
    )


def malformed() -> Rejected:
    return Rejected(
        400,
        "bad_request",
        "The upload arrived garbled or incomplete. Please choose the file and upload it again.",
    )


def interrupted() -> Rejected:
    return Rejected(400, "failed", _sentence(INTERRUPTED))


def stalled(idle_s: float) -> Rejected:
    return Rejected(408, "stalled", _sentence(stalled_reason(idle_s)))


async def submit_upload(
    context: WebContext,
    source: Source,
    *,
    job_id: str,
    idempotency_key: str | None = None,
    **options: Any,
) -> Job:
    """Submit with the configured replier; if telling people fails (Slack said no), the
    upload still counts: the job runs with the job API as its only reporter."""
    try:
        replier = context.upload_replier()
    except Exception as error:
        log.warning("upload.replier_failed", error=type(error).__name__)
        replier = None
    keyed: dict[str, Any] = {"idempotency_key": idempotency_key, "key_ttl_s": UPLOAD_KEY_TTL_S}
    try:
        if replier is not None:
            try:
                return await context.jobs.submit(source, replier, job_id=job_id, **keyed, **options)
            except (NotAccepting, Duplicate):
                raise
            except Exception as error:
                log.warning("upload.announce_failed", error=type(error).__name__)
        return await context.jobs.submit(source, SilentReplier(), job_id=job_id, **keyed, **options)
    except NotAccepting:
        raise unavailable() from None


async def until_done(step: Coroutine[Any, Any, None], job: Job) -> bool:
    """Run step (a put into the job's source) unless the job finishes first.

    False when the job has stopped reading, e.g. it failed on the first block: it will never
    take the chunk, so waiting for it would hold the upload forever.
    """
    if job.done.is_set():
        step.close()
        return False
    put = asyncio.ensure_future(step)
    finished = asyncio.ensure_future(job.done.wait())
    try:
        await asyncio.wait({put, finished}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        finished.cancel()
        delivered = put.done()
        if not delivered:
            put.cancel()  # a cancelled Queue.put leaves nothing in the queue
    if delivered:
        put.result()
    return delivered


def hand_over(app: web.Application, step: Coroutine[Any, Any, None], job: Job) -> None:
    """Tell the job in the background how its source ended: a queued job may take a while
    to read it, and the client should get its answer now."""

    async def deliver() -> None:
        await until_done(step, job)

    background(app, deliver())


async def feed(
    app: web.Application,
    source: UploadSource,
    job: Job,
    chunks: AsyncIterator[bytes],
    rest: Callable[[], Awaitable[None]] | None,
    context: WebContext,
) -> None:
    """The body's chunks into the job as they arrive; however the body ends, the job is told."""
    limit = context.settings.max_file_size_bytes
    idle_s = context.settings.upload_idle_timeout_s
    reading = True  # False once the job stopped taking chunks: the rest is read and dropped
    try:
        async for chunk in chunks:
            if reading:
                reading = await until_done(source.put(chunk), job)
        if rest is not None:
            await rest()
    except Stalled:
        hand_over(app, source.finish(SourceError(stalled_reason(idle_s))), job)
        raise stalled(idle_s) from None
    except TooLarge:
        hand_over(app, source.finish(FileTooLargeError(None, limit)), job)
        raise too_large(limit) from None
    except (ConnectionError, HttpProcessingError, ValueError) as error:
        hand_over(app, source.finish(SourceError(INTERRUPTED)), job)
        if isinstance(error, ValueError):
            raise malformed() from None
        raise interrupted() from None
    except BaseException:
        hand_over(app, source.finish(SourceError(INTERRUPTED)), job)
        raise
    if reading:
        await until_done(source.finish(), job)


async def stage_in_s3(
    context: WebContext,
    chunks: AsyncIterator[bytes],
    rest: Callable[[], Awaitable[None]] | None,
    name: str,
    job_id: str,
    idempotency_key: str | None = None,
) -> Job:
    """Stream the body into s3://S3_BUCKET/uploads/<job id>/<name>, then run the job from there.

    boto3 blocks, so each call runs in a worker thread; the multipart upload holds at most
    one part in memory. Any failure on the way aborts it: no object, no parts left behind.
    """
    settings = context.settings
    client = context.s3_client
    assert settings.s3_bucket is not None
    limit = settings.max_file_size_bytes
    location = s3.S3Location(settings.s3_bucket, f"uploads/{job_id}/{name}")
    try:
        staging = await asyncio.to_thread(s3.MultipartUpload.start, client, location)
    except S3Error as error:
        raise _not_stored(error, job_id) from None
    # Cancelling an awaited to_thread() leaves its thread running: the lock makes the abort
    # wait for a part still on its way, instead of racing it.
    one_at_a_time = threading.Lock()

    def locked(call: Callable[..., T], *args: Any) -> T:
        with one_at_a_time:
            return call(*args)

    idle_s = settings.upload_idle_timeout_s
    try:
        async for chunk in chunks:
            await asyncio.to_thread(locked, staging.write, chunk)
        if rest is not None:
            await rest()
        size_bytes = await asyncio.to_thread(locked, staging.complete)
    except BaseException as error:
        # Shielded: even a cancelled handler must not leave parts behind in S3.
        await asyncio.shield(asyncio.to_thread(locked, _abort_quietly, staging))
        if isinstance(error, TooLarge):
            raise too_large(limit) from None
        if isinstance(error, Stalled):
            raise stalled(idle_s) from None
        if isinstance(error, S3Error):
            raise _not_stored(error, job_id) from None
        if isinstance(error, ValueError):
            raise malformed() from None
        if isinstance(error, ConnectionError | HttpProcessingError):
            raise interrupted() from None
        raise
    log.info("upload.staged", job_id=job_id, bucket=location.bucket, size_bytes=size_bytes)

    # The job reads the staged object (and deletes it once it has finished, unless
    # S3_KEEP_UPLOADS): a restart or another worker can read it again from the start.
    info = SourceInfo(
        kind="upload",
        name=name,
        label=f"upload {name}",
        size_bytes=size_bytes,
        locator={"bucket": location.bucket, "key": location.key, "staged": "true"},
    )
    source = s3_source(
        client, info, allowed_buckets=frozenset({location.bucket}), max_size_bytes=limit
    )
    try:
        return await submit_upload(context, source, job_id=job_id, idempotency_key=idempotency_key)
    except BaseException:
        if not settings.s3_keep_uploads:
            with contextlib.suppress(S3Error):
                await asyncio.to_thread(s3.delete_object, client, location)
        raise


def _abort_quietly(staging: s3.MultipartUpload) -> None:
    try:
        staging.abort()
    except S3Error as error:
        # A lifecycle rule (AbortIncompleteMultipartUpload) is the backstop for this.
        log.warning("upload.abort_failed", error=str(error))


def _not_stored(error: S3Error, job_id: str) -> Rejected:
    # S3's side (bucket, permissions) is for the operator; the person uploading gets words.
    log.warning("upload.staging_failed", job_id=job_id, error=str(error))
    return Rejected(
        502,
        "failed",
        "The file could not be stored for processing. Please try again later; if it keeps "
        f"happening, tell your administrator (reference {job_id}).",
    )

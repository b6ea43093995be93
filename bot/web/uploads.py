"""POST /api/upload: the body streamed into a job, or staged in S3 first.

Never whole in memory, never on local disk. Every request counts towards the client's rate
limit; every rejection answers JSON in words, with the status that fits.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import structlog
from aiohttp import BodyPartReader, MultipartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from bot import s3
from bot.errors import FileTooLargeError, S3Error, SourceError
from bot.jobs import Job, NotAccepting
from bot.replies import SilentReplier
from bot.sources import (
    CallbackSource,
    Source,
    SourceInfo,
    UploadSource,
    is_csv_name,
    s3_object_chunks,
)
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


async def _chunk(part: BodyPartReader, idle_s: float) -> bytes:
    """The next piece of the file, or Stalled when the client goes quiet: a connection that
    trickles a byte now and then must not hold a job slot for hours."""
    try:
        async with asyncio.timeout(idle_s):
            return await part.read_chunk(CHUNK_BYTES)
    except TimeoutError:
        raise Stalled() from None


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


async def upload(request: web.Request) -> web.Response:
    context = request.app[CONTEXT]
    outcome = "failed"
    try:
        response = await _upload(request, context)
        outcome = "accepted"
    except Rejected as rejected:
        outcome = rejected.outcome
        response = rejected.response()
    except Exception:
        log.exception("upload.crashed")
        response = error_response(
            500, "Something went wrong on our side; please try the upload again.", close=True
        )
    finally:
        context.metrics.uploads.labels(outcome).inc()
    log.info("upload.answered", outcome=outcome, status=response.status)
    return response


async def _upload(request: web.Request, context: WebContext) -> web.Response:
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
        raise _unavailable()
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
        return await _accept(request, context)
    finally:
        in_flight.leave(client)


async def _accept(request: web.Request, context: WebContext) -> web.Response:
    settings = context.settings
    idle_s = settings.upload_idle_timeout_s
    limit = settings.max_file_size_bytes
    declared = request.content_length
    if declared is not None and declared > limit + FORM_OVERHEAD_BYTES:
        raise too_large(limit, declared)
    if not request.content_type.startswith("multipart/"):
        raise Rejected(
            400,
            "bad_request",
            "Send the file as a form upload (multipart/form-data) in a field named “file”.",
        )
    try:
        form = await request.multipart()
        async with asyncio.timeout(idle_s):
            part = await _file_part(form, idle_s)
    except (ValueError, RuntimeError, AssertionError):
        raise _malformed() from None
    except HttpProcessingError:
        raise Rejected(
            400,
            "bad_request",
            "The upload's form headers could not be read; a file name with a line break in "
            "it does that. Rename the file and upload it again.",
        ) from None
    except ConnectionError:
        raise _interrupted() from None
    except (TimeoutError, Stalled):
        raise _stalled(idle_s) from None
    name = clean_name(part.filename or "")
    if not is_csv_name(name):
        raise Rejected(
            415,
            "unsupported_type",
            f"“{name}” is not a CSV file. Export the events as CSV (a file ending in .csv) "
            "and upload that.",
        )
    if settings.s3_bucket and context.s3_client is not None:
        job = await _stage_in_s3(context, form, part, name)
    else:
        job = await _stream_into_job(request, context, form, part, name)
    log.info("upload.accepted", job_id=job.id, staged=bool(settings.s3_bucket))
    status_url = f"/api/jobs/{job.id}"
    return web.json_response(
        {"job_id": job.id, "status_url": status_url},
        status=202,
        headers={"Location": status_url},
    )


def _unavailable() -> Rejected:
    return Rejected(
        503,
        "unavailable",
        "The service is restarting and takes no new files right now. Please try again in a minute.",
        headers={"Retry-After": "30"},
    )


def _malformed() -> Rejected:
    return Rejected(
        400,
        "bad_request",
        "The upload arrived garbled or incomplete. Please choose the file and upload it again.",
    )


def _interrupted() -> Rejected:
    return Rejected(400, "failed", _sentence(INTERRUPTED))


def _stalled(idle_s: float) -> Rejected:
    return Rejected(408, "stalled", _sentence(stalled_reason(idle_s)))


async def _file_part(form: MultipartReader, idle_s: float) -> BodyPartReader:
    """The first part named `file` that carries a file; other small fields are skipped."""
    skipped = 0
    while True:
        part = await form.next()
        if part is None:
            raise Rejected(
                400,
                "bad_request",
                "No file was attached. Choose a CSV file and upload it in the field named “file”.",
            )
        if not isinstance(part, BodyPartReader):
            raise _malformed()
        if part.name == "file":
            if not part.filename:
                raise Rejected(
                    400, "bad_request", "No file was attached. Choose a CSV file and upload it."
                )
            return part
        while chunk := await _chunk(part, idle_s):
            skipped += len(chunk)
            if skipped > FORM_OVERHEAD_BYTES:
                raise _malformed()


async def _rest_of_form(form: MultipartReader, idle_s: float) -> None:
    """Read to the closing boundary, so the body is done when we answer; bounded."""
    extra = 0
    while True:
        try:
            async with asyncio.timeout(idle_s):
                part = await form.next()
        except TimeoutError:
            raise Stalled() from None
        if part is None:
            return
        if not isinstance(part, BodyPartReader):
            raise ValueError("nested multipart")
        while chunk := await _chunk(part, idle_s):
            extra += len(chunk)
            if extra > FORM_OVERHEAD_BYTES:
                raise ValueError("too much besides the file")


async def _submit(context: WebContext, source: Source, **options: Any) -> Job:
    """Submit with the configured replier; if telling people fails (Slack said no), the
    upload still counts: the job runs with the job API as its only reporter."""
    try:
        replier = context.upload_replier()
    except Exception as error:
        log.warning("upload.replier_failed", error=type(error).__name__)
        replier = None
    if replier is None:
        return await context.jobs.submit(source, SilentReplier(), **options)
    try:
        return await context.jobs.submit(source, replier, **options)
    except NotAccepting:
        raise
    except Exception as error:
        log.warning("upload.announce_failed", error=type(error).__name__)
        return await context.jobs.submit(source, SilentReplier(), **options)


async def _until_done(step: Coroutine[Any, Any, None], job: Job) -> bool:
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


def _hand_over(app: web.Application, step: Coroutine[Any, Any, None], job: Job) -> None:
    """Tell the job in the background how its source ended: a queued job may take a while
    to read it, and the client should get its answer now."""
    tasks = app[TASKS]
    task = asyncio.create_task(_until_done(step, job))
    tasks.add(task)
    task.add_done_callback(tasks.discard)


async def _stream_into_job(
    request: web.Request,
    context: WebContext,
    form: MultipartReader,
    part: BodyPartReader,
    name: str,
) -> Job:
    limit = context.settings.max_file_size_bytes
    # The request's length is the file plus a few hundred bytes of form framing: close
    # enough for a progress percentage, and browsers never send the part's own size.
    info = SourceInfo(
        kind="upload", name=name, label=f"upload {name}", size_bytes=request.content_length
    )
    source = UploadSource(info)
    try:
        job = await _submit(context, source)
    except NotAccepting:
        raise _unavailable() from None
    idle_s = context.settings.upload_idle_timeout_s
    reading = True  # False once the job stopped taking chunks: the rest is read and dropped
    received = 0
    try:
        while chunk := await _chunk(part, idle_s):
            received += len(chunk)
            if received > limit:
                raise TooLarge()
            if reading:
                reading = await _until_done(source.put(chunk), job)
        await _rest_of_form(form, idle_s)
    except Stalled:
        _hand_over(request.app, source.finish(SourceError(stalled_reason(idle_s))), job)
        raise _stalled(idle_s) from None
    except TooLarge:
        _hand_over(request.app, source.finish(FileTooLargeError(None, limit)), job)
        raise too_large(limit) from None
    except (ConnectionError, HttpProcessingError, ValueError) as error:
        _hand_over(request.app, source.finish(SourceError(INTERRUPTED)), job)
        if isinstance(error, ValueError):
            raise _malformed() from None
        raise _interrupted() from None
    except BaseException:
        _hand_over(request.app, source.finish(SourceError(INTERRUPTED)), job)
        raise
    if reading:
        await _until_done(source.finish(), job)
    return job


async def _stage_in_s3(
    context: WebContext, form: MultipartReader, part: BodyPartReader, name: str
) -> Job:
    """Stream the body into s3://S3_BUCKET/uploads/<job id>/<name>, then run the job from there.

    boto3 blocks, so each call runs in a worker thread; the multipart upload holds at most
    one part in memory. Any failure on the way aborts it: no object, no parts left behind.
    """
    settings = context.settings
    client = context.s3_client
    assert settings.s3_bucket is not None
    limit = settings.max_file_size_bytes
    job_id = context.jobs.new_job_id()
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
        received = 0
        while chunk := await _chunk(part, idle_s):
            received += len(chunk)
            if received > limit:
                raise TooLarge()
            await asyncio.to_thread(locked, staging.write, chunk)
        await _rest_of_form(form, idle_s)
        size_bytes = await asyncio.to_thread(locked, staging.complete)
    except BaseException as error:
        # Shielded: even a cancelled handler must not leave parts behind in S3.
        await asyncio.shield(asyncio.to_thread(locked, _abort_quietly, staging))
        if isinstance(error, TooLarge):
            raise too_large(limit) from None
        if isinstance(error, Stalled):
            raise _stalled(idle_s) from None
        if isinstance(error, S3Error):
            raise _not_stored(error, job_id) from None
        if isinstance(error, ValueError):
            raise _malformed() from None
        if isinstance(error, ConnectionError | HttpProcessingError):
            raise _interrupted() from None
        raise
    log.info("upload.staged", job_id=job_id, bucket=location.bucket, size_bytes=size_bytes)

    info = SourceInfo(kind="upload", name=name, label=f"upload {name}", size_bytes=size_bytes)
    source = CallbackSource(
        info,
        lambda: s3_object_chunks(
            client, location, allowed_buckets=frozenset({location.bucket}), max_size_bytes=limit
        ),
    )

    async def delete_staged() -> None:
        await asyncio.to_thread(s3.delete_object, client, location)

    cleanup = None if settings.s3_keep_uploads else delete_staged
    try:
        return await _submit(context, source, job_id=job_id, cleanup=cleanup)
    except BaseException as error:
        if cleanup is not None:
            with contextlib.suppress(S3Error):
                await cleanup()
        if isinstance(error, NotAccepting):
            raise _unavailable() from None
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

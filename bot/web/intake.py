"""How an upload's bytes become a job: read at a pace the client must keep (bot/web/pace.py)
and under a size limit, refused in words with the status that fits, streamed into the job
or staged in S3 first. Shared by the two ways in (uploads.py, reservations.py).

Never whole in memory, never on local disk. Every upload request counts towards the
client's rate limit; every rejection answers JSON in words, with the status that fits.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import math
import re
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import replace
from typing import Any, TypeVar

import structlog
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from bot.aws import s3
from bot.config import Settings
from bot.errors import (
    FileTooLargeError,
    NotAcceptingError,
    S3Error,
    SourceError,
    StoreError,
    StoreFullError,
    TooSlowError,
)
from bot.jobs.job import Job
from bot.jobs.replies import SilentReplier
from bot.jobs.runner import UPLOAD_KEY_TTL_S
from bot.sources import (
    Source,
    SourceInfo,
    UploadSource,
    is_csv_name,
    staged_upload_source,
)
from bot.store import Duplicate, JobRecord, UploadFingerprint
from bot.web.context import (
    ASK_FOR_TOKEN,
    CONTEXT,
    IN_FLIGHT,
    LIMITER,
    TASKS,
    WebContext,
    authorized,
    error_response,
)
from bot.web.guards import client_of
from bot.web.pace import Pace, PaceRules, Read
from bot.web.staging import Staging
from bot.words import (
    BAD_KEY,
    DISK_LOW,
    GARBLED,
    INTERRUPTED,
    KEY_BUSY,
    KEY_REUSED,
    ONLY_100_CONTINUE,
    RESTARTING,
    STAGING_FAILED,
    STORE_NOT_ANSWERING,
    UNAUTHORIZED,
    UPLOAD_WENT_WRONG,
    not_csv,
    not_stored,
    too_many_uploads,
    uploads_full,
    uploads_on_their_way,
)
from processing.text import displayable
from processing.words import sentence

log = structlog.get_logger("bot.web")

T = TypeVar("T")

CHUNK_BYTES = 1024 * 1024
# Room for the form's boundaries, part headers and any small extra fields around the file:
# a Content-Length this far over the file limit cannot hold a file within it.
FORM_OVERHEAD_BYTES = 64 * 1024
MAX_NAME_CHARS = 200
HEAD_BYTES = 1 << 20  # an upload's fingerprint hashes its first MiB
DRAIN_AFTER_ANSWER_S = 1.0


def pace_of(settings: Settings) -> Pace:
    """A new upload's clock, with the service's rules (bot/web/pace.py)."""
    return Pace(
        PaceRules(
            idle_s=settings.upload_idle_timeout_s,
            max_s=settings.upload_max_s,
            min_bytes_per_s=settings.upload_min_bytes_per_s,
            window_s=settings.upload_rate_window_s,
        )
    )


class HeadHash:
    """The SHA-256 of a file's first MiB, as its chunks go by: with its size, what tells
    one upload from another (an Idempotency-Key names one file)."""

    def __init__(self) -> None:
        self._sha = hashlib.sha256()
        self.hashed_bytes = 0
        self.received_bytes = 0

    def update(self, chunk: bytes) -> None:
        self.received_bytes += len(chunk)
        if self.hashed_bytes < HEAD_BYTES:
            piece = chunk[: HEAD_BYTES - self.hashed_bytes]
            self._sha.update(piece)
            self.hashed_bytes += len(piece)

    @property
    def known(self) -> bool:
        return self.hashed_bytes >= HEAD_BYTES

    def fingerprint(
        self, *, ended: bool = False, size_bytes: int | None = None
    ) -> UploadFingerprint:
        """What is known so far; `ended`: the whole file went by (its size is known too)."""
        return UploadFingerprint(
            size_bytes=self.received_bytes if ended else size_bytes,
            head_sha256=self._sha.hexdigest() if ended or self.known else None,
        )


async def file_chunks(
    request: web.Request,
    read: Read,
    pace: Pace,
    limit_bytes: int,
    head: HeadHash | None = None,
) -> AsyncIterator[bytes]:
    """The file's chunks until the body ends; FileTooLargeError as soon as it passes the limit,
    TooSlowError when the client breaks a rule of its pace.

    The bytes on the wire count too: aiohttp's multipart reader holds the last chunk it read
    back until it has seen what follows (a boundary may start in it), so a client that stops
    sending just past the limit would otherwise never be told.
    """
    received = 0
    while chunk := await pace.read(read):
        received += len(chunk)
        on_the_wire = request.content.total_bytes
        if received > limit_bytes or on_the_wire > limit_bytes + FORM_OVERHEAD_BYTES:
            raise FileTooLargeError(None, limit_bytes)
        if head is not None:
            head.update(chunk)
        yield chunk


async def read_first(
    chunks: AsyncIterator[bytes], head: HeadHash, *, whole_mib: bool, limit_bytes: int
) -> tuple[list[bytes], bool]:
    """The file's first chunk (or, `whole_mib`, its chunks up to its first MiB), before any
    job or record begins: a client that sends headers and nothing more leaves no trace.
    Also whether the file ended within them. Refused in words like any other read."""
    first: list[bytes] = []
    try:
        async for chunk in chunks:
            first.append(chunk)
            if not whole_mib or head.known:
                return first, False
    except Exception as error:
        answer = refusal(error)
        if answer is None:
            raise
        raise answer from None
    return first, True


async def chained(first: list[bytes], rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    for chunk in first:
        yield chunk
    async for chunk in rest:
        yield chunk


def body_reader(request: web.Request) -> Read:
    return lambda: request.content.read(CHUNK_BYTES)


def clean_name(filename: str) -> str:
    """The file's own name, without any folders a browser or client put in front of it."""
    name = filename.replace("\\", "/").rsplit("/", 1)[-1]
    # Bytes that were not UTF-8 arrive as lone surrogates: each shown as "?", never escaped.
    name = name.encode("utf-8", "replace").decode("utf-8")
    return displayable(name)[-MAX_NAME_CHARS:]


class Rejected(Exception):  # noqa: N818 (an answer on its way out of a handler, not an error)
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


def too_large(limit_bytes: int, size_bytes: int | None = None) -> Rejected:
    return Rejected(413, "too_large", sentence(str(FileTooLargeError(size_bytes, limit_bytes))))


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
    except (ConnectionError, asyncio.IncompleteReadError):
        # The client went away before its request was whole: nobody to answer.
        outcome = "failed"
        response = interrupted().response()
    except StoreFullError as error:
        log.warning("store.full", error=str(error))
        outcome = "refused"
        response = Rejected(507, "refused", sentence(DISK_LOW), close=True).response()
    except StoreError as error:
        log.warning("store.unavailable", error=type(error).__name__)
        response = store_unavailable().response()
    except Exception:
        log.exception("upload.crashed")
        response = error_response(500, UPLOAD_WENT_WRONG, close=True)
    finally:
        if outcome is not None:
            context.metrics.uploads.labels(outcome).inc()
    log.info("upload.answered", outcome=outcome or "reserved", status=response.status)
    if response.status == 408:
        await close_after(request, response)
    return response


async def close_after(request: web.Request, response: web.Response) -> None:
    """Send the answer and end the connection now. aiohttp would keep reading a body it has
    answered for up to 10 s (a lingering close) before it closes; here the end of the stream
    follows the answer at once, and what the client still sends is read and dropped for a
    moment only, so that the close does not reset the connection under an answer it has
    not read yet (a client still trickling bytes in)."""
    await response.prepare(request)
    await response.write_eof()
    transport = request.transport
    if transport is not None and transport.can_write_eof():
        transport.write_eof()
    with contextlib.suppress(Exception):
        async with asyncio.timeout(DRAIN_AFTER_ANSWER_S):
            while await request.content.readany():
                pass
    request.protocol.force_close()


async def expect_continue(request: web.Request) -> web.StreamResponse | None:
    """`Expect: 100-continue` on an upload: the client waits to send its body until told to
    go on. The access code and the service's state are checked first, so that a refused
    upload never sends a byte; an Expect of anything else is 417."""
    refusal = None
    context = request.app[CONTEXT]
    if request.headers.get("Expect", "").lower() != "100-continue":
        refusal = error_response(417, ONLY_100_CONTINUE, close=True)
    elif not authorized(request, context.settings.upload_token):
        refusal = error_response(401, UNAUTHORIZED, headers=ASK_FOR_TOKEN, close=True)
    elif not context.jobs.accepting:
        refusal = unavailable().response()
    if refusal is not None:
        await close_after(request, refusal)  # the client waits: it must have it now
        return refusal
    await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    request.writer.output_size = 0  # the answer proper has not begun
    return None


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
            too_many_uploads(settings.uploads_per_minute, wait_s),
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
    full = in_flight.enter(client)
    if full == "client":
        raise Rejected(
            429,
            "rate_limited",
            uploads_on_their_way(in_flight.per_client),
            headers={"Retry-After": "10"},
        )
    if full == "total":
        raise Rejected(
            503,
            "busy",
            uploads_full(in_flight.total),
            # Shorter than a reservation's life, so that one refused here can still be used.
            headers={"Retry-After": "5"},
        )
    try:
        yield
    finally:
        in_flight.leave(client)


IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,200}")


def account_of(request: web.Request, settings: Settings) -> str:
    """Whose keys these are: one UPLOAD_TOKEN is one account (as an API key is), without
    one each client address is its own."""
    if settings.upload_token is not None:
        return "token"  # there is one; nothing of it is kept
    return "client-" + client_of(request)


def idempotency_key(request: web.Request, settings: Settings) -> str | None:
    """An `Idempotency-Key` header names one file for 24 hours, for one account: the same
    key with the same file is answered with the same job; with another file, 422."""
    given = request.headers.get("Idempotency-Key")
    if given is None:
        return None
    if not IDEMPOTENCY_KEY.fullmatch(given):
        raise Rejected(
            400,
            "bad_request",
            BAD_KEY,
        )
    return f"upload:{account_of(request, settings)}:{given}"


async def key_reuse(context: WebContext, key: str, offered: UploadFingerprint) -> JobRecord | None:
    """The job a key names already, if it names one of the same file (None when the key is
    free); Rejected when it names another file (422), or one too new to tell (409)."""
    held = await context.jobs.store.held_by(key)
    if held is None:
        return None
    record = await context.jobs.lookup(held)
    if record is None:
        return None  # kept no longer: the key may start anew
    verdict = None if record.fingerprint is None else record.fingerprint.same_file(offered)
    if verdict is False:
        raise Rejected(
            422,
            "key_reused",
            KEY_REUSED,
        )
    if verdict is None and not record.finished:
        raise key_busy()
    return record


def key_busy() -> Rejected:
    return Rejected(
        409,
        "key_busy",
        KEY_BUSY,
        headers={"Retry-After": "2"},
    )


async def answer_duplicate(
    context: WebContext,
    key: str,
    chunks: AsyncIterator[bytes],
    head: HeadHash,
    *,
    limit_bytes: int,
    declared_size: int | None = None,
) -> web.Response:
    """Another request took the key a moment ago: this file's first MiB decides. The same
    file is answered with that job, another is 422, one that cannot be told yet 409."""
    _, ended = await read_first(chunks, head, whole_mib=True, limit_bytes=limit_bytes)
    answer = await same_file_answer(context, key, head, ended=ended, declared_size=declared_size)
    if answer is None:
        raise key_busy()
    return answer


async def same_file_answer(
    context: WebContext,
    key: str | None,
    head: HeadHash,
    *,
    ended: bool,
    declared_size: int | None = None,
) -> web.Response | None:
    """When the key names a job of this very file (by what of it has gone by: its first
    MiB, and its size), that job's answer; None when the key is free."""
    if key is None:
        return None
    offered = head.fingerprint(ended=ended, size_bytes=declared_size)
    held = await key_reuse(context, key, offered)
    return None if held is None else answered_again(held.id)


def answered_again(job_id: str) -> web.Response:
    """The same key and file again: the job it names; the rest of the body is not read."""
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
            not_csv(name),
        )
    return name


def background(app: web.Application, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
    tasks = app[TASKS]
    task = asyncio.create_task(work)
    tasks.add(task)
    task.add_done_callback(tasks.discard)
    return task


def store_unavailable() -> Rejected:
    return Rejected(
        503,
        "unavailable",
        STORE_NOT_ANSWERING,
        headers={"Retry-After": "60"},
    )


def unavailable() -> Rejected:
    return Rejected(
        503,
        "unavailable",
        RESTARTING,
        headers={"Retry-After": "30"},
    )


def malformed() -> Rejected:
    return Rejected(
        400,
        "bad_request",
        GARBLED,
    )


def interrupted() -> Rejected:
    return Rejected(400, "failed", sentence(INTERRUPTED))


def too_slow(error: TooSlowError) -> Rejected:
    """408: the rule the upload broke (bot/web/pace.py), as its job's error says too."""
    return Rejected(408, "stalled" if error.rule == "idle" else "too_slow", sentence(error.reason))


def _too_large_for(error: FileTooLargeError) -> Rejected:
    return too_large(error.limit_bytes)


def _malformed(_: ValueError) -> Rejected:
    return malformed()


def _interrupted(_: OSError | HttpProcessingError) -> Rejected:
    return interrupted()


# What reading an upload's body can raise, ours and aiohttp's, and the answer each gets; the
# first row that matches answers. Anything else is not about the body and goes on as it is.
READ_ANSWERS: tuple[
    tuple[type[BaseException] | tuple[type[BaseException], ...], Callable[[Any], Rejected]], ...
] = (
    (TooSlowError, too_slow),
    (FileTooLargeError, _too_large_for),
    (ValueError, _malformed),  # aiohttp's multipart parser, on a garbled body
    ((ConnectionError, HttpProcessingError), _interrupted),
)


def refusal(error: BaseException) -> Rejected | None:
    """The answer to an upload whose body could not be read whole (READ_ANSWERS)."""
    for kinds, answer in READ_ANSWERS:
        if isinstance(error, kinds):
            return answer(error)
    return None


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
            except (NotAcceptingError, Duplicate, StoreError):
                raise
            except Exception as error:
                log.warning("upload.announce_failed", error=type(error).__name__)
        return await context.jobs.submit(source, SilentReplier(), job_id=job_id, **keyed, **options)
    except NotAcceptingError:
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


def forget_key_later(app: web.Application, context: WebContext, record: JobRecord) -> None:
    """An upload that never arrived whole frees its key, so that the same key may send the
    file again (the failed job stays, saying why)."""
    key = record.idempotency_key
    if key is None:
        return

    async def forget() -> None:
        try:
            await context.jobs.store.forget_key(key, record.id)
        except Exception as error:  # the key lapses on its own within a day
            log.warning("upload.key_not_freed", error=type(error).__name__)

    background(app, forget())


async def feed(
    app: web.Application,
    source: UploadSource,
    job: Job,
    chunks: AsyncIterator[bytes],
    rest: Callable[[], Awaitable[None]] | None,
    context: WebContext,
    head: HeadHash,
    *,
    declared_size: int | None = None,
) -> None:
    """The body's chunks into the job as they arrive; however the body ends, the job is told.
    The job's fingerprint is saved once the first MiB has gone by (with the file's size
    when the client declared it: never a form's length, which counts its framing), and at
    the end."""
    reading = True  # False once the job stopped taking chunks: the rest is read and dropped
    try:
        async for chunk in chunks:
            if reading:
                reading = await until_done(source.put(chunk), job)
            if head.known and (job.fingerprint is None or job.fingerprint.head_sha256 is None):
                await _note_fingerprint(context, job, head.fingerprint(size_bytes=declared_size))
        if rest is not None:
            await rest()
    except BaseException as error:
        # The job ends saying what the client did (too slow, too large), else "interrupted".
        hand_over(app, source.finish(_ending(error)), job)
        forget_key_later(app, context, job)
        answer = refusal(error)
        if answer is None:
            raise
        raise answer from None
    await _note_fingerprint(context, job, head.fingerprint(ended=True))
    if reading:
        await until_done(source.finish(), job)


def _ending(error: BaseException) -> SourceError:
    """What the job ends with when its body stopped arriving: what the client did (too
    slow, too large), else that it was interrupted. A new exception, the job's own: the
    handler's stays with the handler."""
    if isinstance(error, TooSlowError):
        return TooSlowError(error.rule, error.reason)
    if isinstance(error, FileTooLargeError):
        return FileTooLargeError(error.size_bytes, error.limit_bytes)
    return SourceError(INTERRUPTED)


async def _note_fingerprint(
    context: WebContext, job: JobRecord, fingerprint: UploadFingerprint
) -> None:
    job.fingerprint = fingerprint
    if job.idempotency_key is None:
        return  # only a key's reuse asks for it
    try:
        await context.jobs.store.save(job.record())
    except Exception as error:  # a retry with the key meets 409 a little longer
        log.warning("upload.fingerprint_not_saved", error=type(error).__name__)


async def stage_in_s3(
    context: WebContext,
    chunks: AsyncIterator[bytes],
    rest: Callable[[], Awaitable[None]] | None,
    staging: Staging,
    head: HeadHash,
) -> Job:
    """Stream the body into s3://S3_BUCKET/uploads/<job id>/<name>, then run the job from there.

    boto3 blocks, so each call runs in a worker thread; the multipart upload holds at most
    one part in memory. Any failure on the way aborts it: no object, no parts left behind.
    The job is on record as `staging` meanwhile (bot/web/staging.py).
    """
    record = staging.record
    try:
        upload = await asyncio.to_thread(
            s3.MultipartUpload.start, context.s3_client, staging.location
        )
    except BaseException as error:
        reason = STAGING_FAILED if isinstance(error, S3Error) else INTERRUPTED
        await asyncio.shield(staging.failed(reason))
        if isinstance(error, S3Error):
            raise _not_stored(error, record.id) from None
        raise
    # Cancelling an awaited to_thread() leaves its thread running: the lock makes the abort
    # wait for a part still on its way, instead of racing it.
    one_at_a_time = threading.Lock()

    def locked(call: Callable[..., T], *args: Any) -> T:
        with one_at_a_time:
            return call(*args)

    try:
        async for chunk in chunks:
            await asyncio.to_thread(locked, upload.write, chunk)
            await _note_staged_fingerprint(staging, head)
        if rest is not None:
            await rest()
        size_bytes = await asyncio.to_thread(locked, upload.complete)
    except BaseException as error:
        # Shielded: even a cancelled handler must not leave parts behind in S3.
        await asyncio.shield(asyncio.to_thread(locked, _abort_quietly, upload))
        answer = _not_stored(error, record.id) if isinstance(error, S3Error) else refusal(error)
        reason = answer.message if answer is not None else INTERRUPTED
        await asyncio.shield(staging.failed(_lower(reason)))
        if answer is None:
            raise
        raise answer from None
    log.info("upload.staged", job_id=record.id, size_bytes=size_bytes)
    return await _run_staged(context, staging, head, size_bytes)


async def _note_staged_fingerprint(staging: Staging, head: HeadHash) -> None:
    """Once the first MiB has gone by, its fingerprint on record (for a reused key)."""
    record = staging.record
    known = record.fingerprint is not None and record.fingerprint.head_sha256 is not None
    if known or not head.known:
        return
    record.fingerprint = head.fingerprint(size_bytes=record.source.size_bytes)
    try:
        await staging.save()  # with the heartbeat's saves, one at a time
    except Exception as error:  # a retry with the key meets 409 a little longer
        log.warning("upload.fingerprint_not_saved", error=type(error).__name__)


async def _run_staged(
    context: WebContext, staging: Staging, head: HeadHash, size_bytes: int
) -> Job:
    """The job reads the staged object (and deletes it once it has finished, unless
    S3_KEEP_UPLOADS): a restart or another worker can read it again from the start."""
    settings = context.settings
    record, location = staging.record, staging.location
    info = replace(
        record.source,
        size_bytes=size_bytes,
        locator={"bucket": location.bucket, "key": location.key, "staged": "true"},
    )
    source = staged_upload_source(
        context.s3_client, info, max_size_bytes=settings.max_file_size_bytes
    )
    await staging.stop_heartbeat()
    try:
        return await submit_upload(
            context,
            source,
            job_id=record.id,
            idempotency_key=record.idempotency_key,
            recorded=True,
            fingerprint=head.fingerprint(ended=True),
        )
    except BaseException as error:
        reason = error.message if isinstance(error, Rejected) else INTERRUPTED
        await asyncio.shield(staging.failed(_lower(reason)))
        if not settings.s3_keep_uploads:
            with contextlib.suppress(S3Error):
                await asyncio.to_thread(s3.delete_object, context.s3_client, location)
        raise


def _lower(message: str) -> str:
    """A sentence of an answer as a job's error, which reads as a clause ("failed: ...")."""
    return message[:1].lower() + message[1:].rstrip(".")


def _abort_quietly(upload: s3.MultipartUpload) -> None:
    try:
        upload.abort()
    except S3Error as error:
        # The sweep at start and every hour (bot/web/staging.py) and a lifecycle rule
        # (AbortIncompleteMultipartUpload) are the backstops for this.
        log.warning("upload.abort_failed", error=str(error))


def _not_stored(error: S3Error, job_id: str) -> Rejected:
    # S3's side (bucket, permissions) is for the operator; the person uploading gets words.
    log.warning("upload.staging_failed", job_id=job_id, error=str(error))
    return Rejected(
        502,
        "failed",
        not_stored(job_id),
    )

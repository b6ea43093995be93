"""POST /api/upload: a multipart form whose `file` part streams into a job (or into S3
first), answered once the whole file has arrived. For curl and scripts; the page uses the
two steps of reservations.py so that it can follow the job while the bytes travel."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

import structlog
from aiohttp import BodyPartReader, MultipartReader, hdrs, web
from aiohttp.helpers import parse_mimetype
from aiohttp.http_exceptions import HttpProcessingError

from bot.errors import TooSlowError
from bot.sources import UploadSource
from bot.store import Duplicate
from bot.web.context import CONTEXT, WebContext
from bot.web.intake import (
    CHUNK_BYTES,
    FORM_OVERHEAD_BYTES,
    HeadHash,
    Rejected,
    accepted_answer,
    admit,
    answer_duplicate,
    answered,
    chained,
    checked_name,
    feed,
    file_chunks,
    idempotency_key,
    in_flight_slot,
    interrupted,
    malformed,
    pace_of,
    read_first,
    same_file_answer,
    stage_in_s3,
    stages_in_s3,
    submit_upload,
    too_large,
    too_slow,
    upload_info,
)
from bot.web.multipart import FilePart
from bot.web.pace import Pace, Read
from bot.web.staging import Staging
from bot.words import NO_FILE, NO_FILE_FIELD, NOT_A_FORM, UNREADABLE_FORM_HEADERS

log = structlog.get_logger("bot.web")


def _part_reader(part: BodyPartReader) -> Read:
    return lambda: part.read_chunk(CHUNK_BYTES)


async def upload(request: web.Request) -> web.Response:
    """POST /api/upload: a multipart form, answered once the whole file has arrived."""
    return await answered(request, _upload(request, request.app[CONTEXT]))


async def _upload(request: web.Request, context: WebContext) -> web.Response:
    admit(request, context)
    key = idempotency_key(request, context.settings)
    async with in_flight_slot(request):
        return await _accept(request, context, key)


async def _accept(request: web.Request, context: WebContext, key: str | None) -> web.Response:
    settings = context.settings
    limit = settings.max_file_size_bytes
    pace = pace_of(settings)
    declared = request.content_length
    if declared is not None and declared > limit + FORM_OVERHEAD_BYTES:
        raise too_large(limit, declared)
    if not request.content_type.startswith("multipart/"):
        raise Rejected(
            400,
            "bad_request",
            NOT_A_FORM,
        )
    part = await _form_file_part(request, pace, settings.upload_idle_timeout_s)
    name = checked_name(part.filename or "")
    file_part = FilePart(request.content, _boundary(request))
    head = HeadHash()
    chunks = file_chunks(request, file_part.read, pace, limit, head)
    # A key seen before: the file's first MiB says whether it names this file.
    keyed = key is not None and await context.jobs.store.held_by(key) is not None
    first, ended = await read_first(chunks, head, whole_mib=keyed, limit_bytes=limit)
    if keyed and (answer := await same_file_answer(context, key, head, ended=ended)):
        return answer
    chunks = chained(first, chunks)

    def rest() -> Awaitable[None]:
        return file_part.rest(pace)

    job_id = context.jobs.new_job_id()
    try:
        if stages_in_s3(context):
            staging = await Staging.begin(
                context, job_id=job_id, info=upload_info(name, None), key=key
            )
            job = await stage_in_s3(context, chunks, rest, staging, head)
        else:
            # The request's length is the file plus a few hundred bytes of form framing: close
            # enough for a progress percentage, and browsers never send the part's own size.
            source = UploadSource(upload_info(name, request.content_length))
            job = await submit_upload(context, source, job_id=job_id, idempotency_key=key)
            await feed(request.app, source, job, chunks, rest, context, head)
    except Duplicate:  # the same key raced in from another request
        assert key is not None
        return await answer_duplicate(context, key, chunks, head, limit_bytes=limit)
    return accepted_answer(job.id, staged=stages_in_s3(context))


async def _form_file_part(request: web.Request, pace: Pace, idle_s: float) -> BodyPartReader:
    """The form's file part, its headers read; refused in words when they cannot be."""
    try:
        # aiohttp buffers 128 KiB of a body by default, so a read gave ~100 KiB at a time;
        # with 2 MiB it gives up to the 1 MiB asked (bench/README.md). The file part's
        # bytes are read by FilePart.
        request.content.set_read_chunk_size(CHUNK_BYTES)
        form = await request.multipart()
        async with asyncio.timeout(idle_s):
            return await _file_part(form, pace)
    except (ValueError, RuntimeError, AssertionError):  # aiohttp's form parser
        raise malformed() from None
    except HttpProcessingError:
        raise Rejected(400, "bad_request", UNREADABLE_FORM_HEADERS) from None
    except ConnectionError:
        raise interrupted() from None
    except TimeoutError:
        raise too_slow(TooSlowError("idle", pace.rules.stalled())) from None
    except TooSlowError as error:
        raise too_slow(error) from None


async def _file_part(form: MultipartReader, pace: Pace) -> BodyPartReader:
    """The first part named `file` that carries a file; other small fields are skipped."""
    skipped = 0
    while True:
        part = await form.next()
        if part is None:
            raise Rejected(
                400,
                "bad_request",
                NO_FILE_FIELD,
            )
        if not isinstance(part, BodyPartReader):
            raise malformed()
        if part.name == "file":
            if not part.filename:
                raise Rejected(400, "bad_request", NO_FILE)
            return part
        while chunk := await pace.read(_part_reader(part)):
            skipped += len(chunk)
            if skipped > FORM_OVERHEAD_BYTES:
                raise malformed()


def _boundary(request: web.Request) -> str:
    """The form's boundary, which request.multipart() has checked is there."""
    return parse_mimetype(request.headers[hdrs.CONTENT_TYPE]).parameters["boundary"]

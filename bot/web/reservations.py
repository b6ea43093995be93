"""The page's upload, in two steps, so that it knows the job before the file is sent and can
show the analysis live while the bytes arrive:

```
POST /api/uploads        {"file_name", "size_bytes"} -> 201 {"job_id", "upload_url", "live"}
PUT  /api/uploads/<id>   the file's bytes as the body -> 202 {"job_id", "status_url"}
```

Without S3_BUCKET the job starts at the first step and reads the body as it arrives
(`live`); with it, the body is staged first and the job queues once it is stored. A
reservation not used within UPLOAD_IDLE_TIMEOUT_SECONDS lapses (its job fails as stalled).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import structlog
from aiohttp import web

from bot.errors import SourceError
from bot.jobs import Job
from bot.sources import (
    UploadSource,
)
from bot.store import Duplicate
from bot.web.context import (
    ASK_FOR_TOKEN,
    CONTEXT,
    UNAUTHORIZED,
    WebContext,
    authorized,
)
from bot.web.guards import client_of
from bot.web.intake import (
    INTERRUPTED,
    Rejected,
    accepted_answer,
    admit,
    answered,
    background,
    body_reader,
    checked_name,
    feed,
    file_chunks,
    hand_over,
    idempotency_key,
    in_flight_slot,
    stage_in_s3,
    stages_in_s3,
    stalled_reason,
    submit_upload,
    too_large,
    upload_info,
)

log = structlog.get_logger("bot.web")


async def create_upload(request: web.Request) -> web.Response:
    """POST /api/uploads: reserve a job for a file the client is about to send."""
    return await answered(request, _create(request, request.app[CONTEXT]), counted=False)


async def send_upload(request: web.Request) -> web.Response:
    """PUT /api/uploads/<job id>: the reserved job's file, as the raw body."""
    return await answered(request, _send(request, request.app[CONTEXT]))


@dataclass(eq=False)
class PendingUpload:
    """A reserved upload: its job (already reading, when not staged) waits for the body."""

    job_id: str
    name: str
    size_bytes: int
    client: str
    source: UploadSource | None = None  # None when the upload is staged in S3 first
    job: Job | None = None
    lapse: asyncio.Task[None] | None = None
    idempotency_key: str | None = None


PENDING: web.AppKey[dict[str, PendingUpload]] = web.AppKey("pending_uploads")
MAX_RESERVATION_BYTES = 4096


async def _create(request: web.Request, context: WebContext) -> web.Response:
    admit(request, context)
    settings = context.settings
    key = idempotency_key(request)
    if key is not None and (held := await context.jobs.store.held_by(key)) is not None:
        return _reserved_already(held)
    if (request.content_length or 0) > MAX_RESERVATION_BYTES:
        raise Rejected(413, "bad_request", "Send only the file's name and size here.")
    try:
        wanted = await request.json()
        filename, size_bytes = wanted["file_name"], wanted["size_bytes"]
    except (ValueError, TypeError, KeyError):
        wanted = None
    if (
        wanted is None
        or not isinstance(filename, str)
        or not isinstance(size_bytes, int)
        or isinstance(size_bytes, bool)
        or size_bytes < 0
    ):
        raise Rejected(
            400,
            "bad_request",
            'Send JSON with the file\'s name and size: {"file_name": "events.csv", '
            '"size_bytes": 1234}.',
        )
    name = checked_name(filename)
    if size_bytes > settings.max_file_size_bytes:
        raise too_large(settings.max_file_size_bytes, size_bytes)
    pending = PendingUpload(
        job_id=context.jobs.new_job_id(),
        name=name,
        size_bytes=size_bytes,
        client=client_of(request),
    )
    pending.idempotency_key = key
    if not stages_in_s3(context):
        pending.source = UploadSource(upload_info(name, size_bytes))
        try:
            pending.job = await submit_upload(
                context, pending.source, job_id=pending.job_id, idempotency_key=key
            )
        except Duplicate as duplicate:
            return _reserved_already(duplicate.job_id)
    reservations = request.app[PENDING]
    reservations[pending.job_id] = pending
    pending.lapse = background(request.app, _lapse(request.app, pending, context))
    log.info("upload.reserved", job_id=pending.job_id, size_bytes=size_bytes)
    return web.json_response(
        {
            "job_id": pending.job_id,
            "status_url": f"/api/jobs/{pending.job_id}",
            "upload_url": f"/api/uploads/{pending.job_id}",
            "live": pending.job is not None,
        },
        status=201,
    )


def _reserved_already(job_id: str) -> web.Response:
    """The same Idempotency-Key again: the job it names, and nothing to send."""
    return web.json_response(
        {
            "job_id": job_id,
            "status_url": f"/api/jobs/{job_id}",
            "upload_url": None,  # sent already, or on its way: follow the job
            "live": False,
        },
        status=200,
    )


async def _lapse(app: web.Application, pending: PendingUpload, context: WebContext) -> None:
    """A reservation whose body never starts is dropped; its job fails as stalled."""
    idle_s = context.settings.upload_idle_timeout_s
    await asyncio.sleep(idle_s)
    if app[PENDING].pop(pending.job_id, None) is None:
        return
    log.info("upload.lapsed", job_id=pending.job_id)
    if pending.source is not None and pending.job is not None:
        hand_over(app, pending.source.finish(SourceError(stalled_reason(idle_s))), pending.job)


async def _send(request: web.Request, context: WebContext) -> web.Response:
    settings = context.settings
    if not authorized(request, settings.upload_token):
        raise Rejected(401, "unauthorized", UNAUTHORIZED, headers=ASK_FOR_TOKEN)
    pending = request.app[PENDING].get(request.match_info["job_id"])
    if pending is None or pending.client != client_of(request):
        raise Rejected(
            404,
            "failed",
            f"No upload is waiting under this address: it was sent already, or not started "
            f"within {settings.upload_idle_timeout_s:g} seconds. Please choose the file again.",
        )
    del request.app[PENDING][pending.job_id]  # one body per reservation
    if pending.lapse is not None:
        pending.lapse.cancel()
    declared = request.content_length
    limit = settings.max_file_size_bytes
    idle_s = settings.upload_idle_timeout_s
    feeding = False
    try:
        if declared is not None and declared > limit:
            raise too_large(limit, declared)
        async with in_flight_slot(request):
            chunks = file_chunks(request, body_reader(request), idle_s, limit)
            if pending.source is None or pending.job is None:
                await stage_in_s3(
                    context, chunks, None, pending.name, pending.job_id, pending.idempotency_key
                )
            else:
                feeding = True  # from here on, feed tells the job how its source ended
                await feed(request.app, pending.source, pending.job, chunks, None, context)
    except BaseException as error:
        if not feeding and pending.source is not None and pending.job is not None:
            # Refused before a byte was fed (too large, too many at once): the job ends too,
            # saying why.
            reason = error.message if isinstance(error, Rejected) else INTERRUPTED
            hand_over(request.app, pending.source.finish(SourceError(reason)), pending.job)
        raise
    return accepted_answer(pending.job_id, staged=pending.source is None)

"""The page's upload, in two steps, so that it knows the job before the file is sent and can
show the analysis live while the bytes arrive:

```
POST /api/uploads                  {"file_name", "size_bytes"} -> 201 {"job_id",
                                   "upload_url", "upload_secret", "live", "status_url"}
PUT  /api/uploads/<id>/<secret>    the file's bytes as the body -> 202 {"job_id", "status_url"}
PUT  /api/uploads/<id>             the same, with the header `Upload-Secret: <secret>`
```

A reservation is a promise of a job, not a job: it holds no job slot and no record, and
`/api/jobs` does not list it; `GET /api/jobs/<id>` answers `reserved`. It belongs to whoever
holds its secret (128 random bits, compared in constant time; a wrong or missing one is
answered as an unknown id), so behind a proxy, where every client has the proxy's address,
nobody can send their bytes into someone else's reservation. The job begins with the PUT:
without S3_BUCKET it reads the body as it arrives (`live`), with it the body is staged
first. A reservation not used within UPLOAD_IDLE_TIMEOUT_SECONDS lapses: it disappears
(404, "the reservation lapsed"), it is not a failed job.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import re
import secrets
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime

import structlog
from aiohttp import web

from bot.errors import TooSlowError
from bot.sources import UploadSource
from bot.store import Duplicate, JobRecord, JobStatus, ReplySpec, UploadFingerprint, now_utc
from bot.web.context import (
    ASK_FOR_TOKEN,
    CONTEXT,
    WebContext,
    authorized,
)
from bot.web.intake import (
    HeadHash,
    Rejected,
    accepted_answer,
    admit,
    answer_duplicate,
    answered,
    background,
    body_reader,
    chained,
    checked_name,
    feed,
    file_chunks,
    idempotency_key,
    in_flight_slot,
    key_reuse,
    pace_of,
    read_first,
    same_file_answer,
    stage_in_s3,
    stages_in_s3,
    submit_upload,
    too_large,
    too_slow,
    unavailable,
    upload_info,
)
from bot.web.pace import PaceRules
from bot.web.staging import Staging
from bot.words import (
    BAD_HEAD_SHA256,
    KEY_REUSED,
    NO_SUCH_RESERVATION,
    RESERVATION_FORM,
    RESERVATION_KEY_BUSY,
    RESERVATION_TOO_BIG,
    RESERVATIONS_FULL,
    UNAUTHORIZED,
    reservation_lapsed,
    reserved_size_differs,
)

log = structlog.get_logger("bot.web")

MAX_RESERVATION_BYTES = 4096
SHA256_HEX = re.compile(r"[0-9a-f]{64}")
SECRET_BYTES = 16  # 128 bits
SECRET_HEADER = "Upload-Secret"
MAX_WAITING = 10_000  # reservations waiting for their body, all clients together
LAPSED_KEPT = 10_000  # lapsed ids remembered, to say so rather than "no such job"


@dataclass(eq=False, kw_only=True)
class Reservation:
    job_id: str
    name: str
    size_bytes: int
    secret: str = field(repr=False)
    idempotency_key: str | None = None
    claimed: bool = False  # a PUT is sending its body
    created_at: datetime = field(default_factory=now_utc)
    lapse: asyncio.Task[None] | None = None

    @property
    def upload_url(self) -> str:
        return f"/api/uploads/{self.job_id}/{self.secret}"

    def as_job(self) -> JobRecord:
        """How the job API shows it: a job with status `reserved`."""
        return JobRecord(
            id=self.job_id,
            source=upload_info(self.name, self.size_bytes),
            reply=ReplySpec(kind="silent"),
            created_at=self.created_at,
            status=JobStatus.RESERVED,
        )


class Reservations:
    """The reservations waiting for their body, by job id and by idempotency key, and the
    ids of those that lapsed lately."""

    def __init__(self) -> None:
        self.waiting: dict[str, Reservation] = {}
        self._by_key: dict[str, str] = {}
        self._lapsed: OrderedDict[str, None] = OrderedDict()

    def add(self, reservation: Reservation) -> None:
        self.waiting[reservation.job_id] = reservation
        if reservation.idempotency_key is not None:
            self._by_key[reservation.idempotency_key] = reservation.job_id

    def by_key(self, key: str) -> Reservation | None:
        job_id = self._by_key.get(key)
        return None if job_id is None else self.waiting.get(job_id)

    def take(self, job_id: str) -> Reservation | None:
        """Take it out: one body per reservation."""
        reservation = self.waiting.pop(job_id, None)
        if reservation is not None and reservation.idempotency_key is not None:
            self._by_key.pop(reservation.idempotency_key, None)
        return reservation

    def lapse(self, job_id: str) -> bool:
        if self.take(job_id) is None:
            return False
        self._lapsed[job_id] = None
        while len(self._lapsed) > LAPSED_KEPT:
            self._lapsed.popitem(last=False)
        return True

    def lapsed(self, job_id: str) -> bool:
        return job_id in self._lapsed


RESERVATIONS = web.AppKey("reservations", Reservations)


def _named_again() -> Rejected:
    return Rejected(
        404,
        "failed",
        NO_SUCH_RESERVATION,
    )


def lapsed_answer(idle_s: float) -> Rejected:
    return Rejected(
        404,
        "lapsed",
        reservation_lapsed(idle_s),
        close=False,
    )


async def create_upload(request: web.Request) -> web.Response:
    """POST /api/uploads: reserve a job for a file the client is about to send."""
    return await answered(request, _create(request, request.app[CONTEXT]), counted=False)


async def send_upload(request: web.Request) -> web.Response:
    """PUT /api/uploads/<job id>[/<secret>]: the reserved job's file, as the raw body."""
    return await answered(request, _send(request, request.app[CONTEXT]))


async def _create(request: web.Request, context: WebContext) -> web.Response:
    admit(request, context)
    settings = context.settings
    key = idempotency_key(request, settings)
    body = await _small_body(request, settings.upload_idle_timeout_s)
    try:
        wanted = json.loads(body)
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
            RESERVATION_FORM,
        )
    head_sha256 = wanted.get("head_sha256")
    if head_sha256 is not None and (
        not isinstance(head_sha256, str) or not SHA256_HEX.fullmatch(head_sha256)
    ):
        raise Rejected(
            400,
            "bad_request",
            BAD_HEAD_SHA256,
        )
    name = checked_name(filename)
    if size_bytes > settings.max_file_size_bytes:
        # A size past any real file is not repeated back (nor formatted: 1e309 MB overflows).
        shown = size_bytes if size_bytes < 1 << 62 else None
        raise too_large(settings.max_file_size_bytes, shown)
    reservations = request.app[RESERVATIONS]
    if len(reservations.waiting) >= MAX_WAITING:
        raise Rejected(
            503,
            "busy",
            RESERVATIONS_FULL,
            headers={"Retry-After": "30"},
        )
    if key is not None:
        waiting = reservations.by_key(key)
        if waiting is not None:
            if waiting.size_bytes != size_bytes:
                raise _key_reused()
            # Its secret is its holder's alone, even within one account: the same key
            # again waits until that reservation is used or lapses.
            raise Rejected(
                409,
                "key_busy",
                RESERVATION_KEY_BUSY,
                headers={"Retry-After": f"{settings.upload_idle_timeout_s:.0f}"},
            )
        offered = UploadFingerprint(size_bytes=size_bytes, head_sha256=head_sha256)
        held = await key_reuse(context, key, offered)
        if held is not None and head_sha256 is not None and _head_known(held):
            return _reserved_already(held.id)
        # Otherwise a reservation: its PUT shows the file's first MiB, which decides.
    reservation = Reservation(
        job_id=context.jobs.new_job_id(),
        name=name,
        size_bytes=size_bytes,
        secret=secrets.token_urlsafe(SECRET_BYTES),
        idempotency_key=key,
    )
    reservations.add(reservation)
    reservation.lapse = background(request.app, _lapse(request.app, reservation, context))
    log.info("upload.reserved", job_id=reservation.job_id, size_bytes=size_bytes)
    return _reserved(reservation, context)


def _head_known(record: JobRecord) -> bool:
    return record.fingerprint is not None and record.fingerprint.head_sha256 is not None


async def _small_body(request: web.Request, idle_s: float) -> bytes:
    """The reservation's JSON: at most MAX_RESERVATION_BYTES, all of it within the idle
    time (a body that never ends must not hold a connection, or a file handle, for ever)."""
    too_big = Rejected(413, "bad_request", RESERVATION_TOO_BIG)
    if (request.content_length or 0) > MAX_RESERVATION_BYTES:
        raise too_big
    body = bytearray()
    try:
        async with asyncio.timeout(idle_s):
            while chunk := await request.content.read(MAX_RESERVATION_BYTES + 1 - len(body)):
                body += chunk
                if len(body) > MAX_RESERVATION_BYTES:
                    raise too_big
    except TimeoutError:
        raise too_slow(TooSlowError("idle", PaceRules(idle_s=idle_s).stalled())) from None
    return bytes(body)


def _reserved(reservation: Reservation, context: WebContext) -> web.Response:
    return web.json_response(
        {
            "job_id": reservation.job_id,
            "status_url": f"/api/jobs/{reservation.job_id}",
            "upload_url": reservation.upload_url,
            "upload_secret": reservation.secret,
            "live": not stages_in_s3(context),
        },
        status=201,
    )


def _key_reused() -> Rejected:
    return Rejected(
        422,
        "key_reused",
        KEY_REUSED,
    )


def _reserved_already(job_id: str) -> web.Response:
    """The same Idempotency-Key and file again: the job it names, and nothing to send."""
    return web.json_response(
        {
            "job_id": job_id,
            "status_url": f"/api/jobs/{job_id}",
            "upload_url": None,  # sent already, or on its way: follow the job
            "upload_secret": None,
            "live": False,
        },
        status=200,
    )


async def _lapse(app: web.Application, reservation: Reservation, context: WebContext) -> None:
    await asyncio.sleep(context.settings.upload_idle_timeout_s)
    if app[RESERVATIONS].lapse(reservation.job_id):
        log.info("upload.lapsed", job_id=reservation.job_id)


def _named(request: web.Request, reservations: Reservations, idle_s: float) -> Reservation:
    """The reservation this PUT names, if it carries its secret. A wrong or missing secret
    reads as an unknown id."""
    job_id = request.match_info["job_id"]
    given = request.match_info.get("secret") or request.headers.get(SECRET_HEADER) or ""
    reservation = reservations.waiting.get(job_id)
    if reservation is None or not hmac.compare_digest(
        given.encode("utf-8", "surrogateescape"), reservation.secret.encode()
    ):
        if reservation is None and reservations.lapsed(job_id):
            raise lapsed_answer(idle_s)
        raise _named_again()
    return reservation


def _reservation_to_send(request: web.Request, context: WebContext) -> Reservation:
    """The reservation a PUT names, if the request may send its file."""
    settings = context.settings
    if not authorized(request, settings.upload_token):
        raise Rejected(401, "unauthorized", UNAUTHORIZED, headers=ASK_FOR_TOKEN)
    if not context.jobs.accepting:
        raise unavailable()
    reservation = _named(request, request.app[RESERVATIONS], settings.upload_idle_timeout_s)
    declared = request.content_length
    limit = settings.max_file_size_bytes
    if declared is not None and declared > limit:
        raise too_large(limit, declared)
    if declared is not None and declared != reservation.size_bytes:
        raise Rejected(
            400,
            "bad_request",
            reserved_size_differs(reservation.size_bytes, declared),
        )
    return reservation


async def _send(request: web.Request, context: WebContext) -> web.Response:
    settings = context.settings
    reservations = request.app[RESERVATIONS]
    reservation = _reservation_to_send(request, context)
    limit = settings.max_file_size_bytes
    key = reservation.idempotency_key
    fingerprint = UploadFingerprint(size_bytes=reservation.size_bytes)
    # Claimed once the upload may go on (too many uploads at once: try the same address
    # again), so that no second body is accepted; taken out once its job is on record, so
    # that the page following it always finds it, `reserved` until then.
    async with in_flight_slot(request):
        if reservation.claimed:  # another PUT has it
            raise _named_again()
        reservation.claimed = True
        try:
            if reservation.lapse is not None:
                reservation.lapse.cancel()  # the upload's own pace rules from here
            head = HeadHash()
            chunks = file_chunks(request, body_reader(request), pace_of(settings), limit, head)
            # A key that names a job already: the file's first MiB says whether it is this file.
            keyed = key is not None and await context.jobs.store.held_by(key) is not None
            try:
                first, ended = await read_first(chunks, head, whole_mib=keyed, limit_bytes=limit)
            except BaseException:
                reservations.lapse(reservation.job_id)
                raise
            if keyed and (
                answer := await same_file_answer(
                    context, key, head, ended=ended, declared_size=reservation.size_bytes
                )
            ):
                return answer
            chunks = chained(first, chunks)
            info = upload_info(reservation.name, reservation.size_bytes)
            try:
                if stages_in_s3(context):
                    staging = await Staging.begin(
                        context,
                        job_id=reservation.job_id,
                        info=info,
                        key=key,
                        fingerprint=fingerprint,
                    )
                    reservations.take(reservation.job_id)
                    await stage_in_s3(context, chunks, None, staging, head)
                else:
                    source = UploadSource(info)
                    job = await submit_upload(
                        context,
                        source,
                        job_id=reservation.job_id,
                        idempotency_key=key,
                        fingerprint=fingerprint,
                    )
                    reservations.take(reservation.job_id)
                    await feed(
                        request.app,
                        source,
                        job,
                        chunks,
                        None,
                        context,
                        head,
                        declared_size=reservation.size_bytes,
                    )
            except Duplicate:  # the same key raced in from another request
                assert key is not None
                return await answer_duplicate(
                    context,
                    key,
                    chunks,
                    head,
                    limit_bytes=limit,
                    declared_size=reservation.size_bytes,
                )
        finally:
            reservations.take(reservation.job_id)  # whatever became of it: one body only
    return accepted_answer(reservation.job_id, staged=stages_in_s3(context))

"""Where a job's bytes come from: an S3 object or a web upload (a Slack file: bot.slack.files),
as async chunks.

Every source streams: nothing is held whole in memory or written to disk. `limit_size`
stops any of them once it passes MAX_FILE_SIZE_MB, whatever size was announced.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import structlog

from bot.aws import s3
from bot.errors import (
    FileTooLargeError,
    S3Error,
    S3ObjectMissingError,
    SourceError,
)
from bot.words import STAGED_GONE, STAGED_UNREADABLE

log = structlog.get_logger("bot.sources")

SourceKind = Literal["slack", "s3", "upload"]


@dataclass(frozen=True, slots=True, kw_only=True)
class SourceInfo:
    kind: SourceKind
    name: str  # the file name people know it by
    label: str  # what the job API shows: "events.csv (Slack F0123)", "s3://b/k", ...
    size_bytes: int | None = None
    requested_by: str | None = None  # a Slack user id, when a person in Slack asked
    via_command: bool = False  # asked for with /process-events rather than shared
    # Where to read it again (a restart, another worker): Slack's file id and download
    # address, or an S3 bucket, key and ETag. Empty for a streamed upload, which cannot be.
    locator: Mapping[str, str] = field(default_factory=dict)


class Source(Protocol):
    info: SourceInfo

    def chunks(self) -> AsyncIterator[bytes]: ...


def is_csv_name(name: str, filetype: str | None = None) -> bool:
    return (filetype or "").lower() == "csv" or name.lower().endswith(".csv")


async def limit_size(chunks: AsyncIterator[bytes], limit_bytes: int) -> AsyncIterator[bytes]:
    seen = 0
    async with contextlib.aclosing(chunks):  # type: ignore[type-var]
        async for chunk in chunks:
            seen += len(chunk)
            if seen > limit_bytes:
                raise FileTooLargeError(None, limit_bytes)
            yield chunk


class UploadSource:
    """A web upload: the request handler pushes the body in; the job pulls it out.

    The queue is small, so a job that is not reading yet slows the upload down instead of
    buffering it (TCP backpressure): memory stays at a few chunks. The job can ask whether
    the next chunk is there (`arrived`) and wait for it without taking it (`arrival`), so
    that it holds no job slot while the client is slow.
    """

    def __init__(self, info: SourceInfo, depth: int = 4) -> None:
        self.info = info
        self._queue: asyncio.Queue[bytes | BaseException | None] = asyncio.Queue(depth)
        self._arrived = asyncio.Event()

    async def put(self, chunk: bytes) -> None:
        await self._queue.put(chunk)
        self._arrived.set()

    async def finish(self, error: BaseException | None = None) -> None:
        await self._queue.put(error)
        self._arrived.set()

    def arrived(self) -> bool:
        """Whether the next chunk (or the end) is there to take."""
        return not self._queue.empty()

    async def arrival(self) -> None:
        await self._arrived.wait()

    async def chunks(self) -> AsyncIterator[bytes]:
        while True:
            item = await self._queue.get()
            if self._queue.empty():
                self._arrived.clear()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item


@dataclass(slots=True)
class CallbackSource:
    """Chunks from any async generator factory (S3 objects, tests)."""

    info: SourceInfo
    open: Callable[[], AsyncIterator[bytes]]

    def chunks(self) -> AsyncIterator[bytes]:
        return self.open()


async def _chunks_of(opened: s3.S3Object) -> AsyncIterator[bytes]:
    pieces = opened.chunks()
    try:
        while (chunk := await asyncio.to_thread(next, pieces, None)) is not None:
            yield chunk
    finally:
        await asyncio.to_thread(opened.close)


async def s3_object_chunks(
    client: Any,
    location: s3.S3Location,
    *,
    allowed_buckets: frozenset[str],
    max_size_bytes: int,
    etag: str | None = None,
) -> AsyncIterator[bytes]:
    """An object's bytes, opened only when first read: a queued job holds no S3 connection.
    With `etag`, the version the job was given, or an error saying it was replaced."""
    opened = await asyncio.to_thread(
        s3.open_object,
        client,
        location,
        allowed_buckets=allowed_buckets,
        max_size_bytes=max_size_bytes,
        etag=etag,
    )
    async for chunk in _chunks_of(opened):
        yield chunk


def s3_source(
    client: Any, info: SourceInfo, *, allowed_buckets: frozenset[str], max_size_bytes: int
) -> CallbackSource:
    """The S3 object `info.locator` names (bucket, key, ETag), opened when the job reads it."""
    location = s3.S3Location(info.locator["bucket"], info.locator["key"])
    return CallbackSource(
        info,
        lambda: s3_object_chunks(
            client,
            location,
            allowed_buckets=allowed_buckets,
            max_size_bytes=max_size_bytes,
            etag=info.locator.get("etag") or None,
        ),
    )


def staged_upload_source(client: Any, info: SourceInfo, *, max_size_bytes: int) -> CallbackSource:
    """A web upload staged in S3 (its locator names the object): read like any S3 object,
    but its failures say nothing of the internal bucket or key, which are the operator's
    business (logged for them), not the person's who uploaded."""
    location = s3.S3Location(info.locator["bucket"], info.locator["key"])

    async def chunks() -> AsyncIterator[bytes]:
        try:
            async for chunk in s3_object_chunks(
                client,
                location,
                allowed_buckets=frozenset({location.bucket}),
                max_size_bytes=max_size_bytes,
            ):
                yield chunk
        except S3ObjectMissingError as error:
            log.warning("upload.staged_missing", error=str(error))  # bucket and key, for them
            raise SourceError(STAGED_GONE) from None
        except S3Error as error:
            log.warning("upload.staged_unreadable", error=str(error))
            raise SourceError(STAGED_UNREADABLE) from None

    return CallbackSource(info, chunks)


class S3Reader:
    """s3:// sources for jobs: allowed buckets only, size and version known up front, the
    object itself opened only when the job starts reading."""

    def __init__(
        self, client: Any, *, allowed_buckets: frozenset[str], max_size_bytes: int
    ) -> None:
        self._client = client
        self.allowed_buckets = allowed_buckets
        self._max_size_bytes = max_size_bytes

    async def open(self, url: str, *, requested_by: str | None = None) -> CallbackSource:
        location = s3.parse_s3_url(url)
        described = await asyncio.to_thread(
            s3.describe_object,
            self._client,
            location,
            allowed_buckets=self.allowed_buckets,
            max_size_bytes=self._max_size_bytes,
        )
        info = SourceInfo(
            kind="s3",
            name=location.key.rsplit("/", 1)[-1] or location.key,
            label=location.url,
            size_bytes=described.size_bytes,
            requested_by=requested_by,
            via_command=requested_by is not None,
            locator={"bucket": location.bucket, "key": location.key, "etag": described.etag},
        )
        return self.source(info)

    def source(self, info: SourceInfo) -> CallbackSource:
        return s3_source(
            self._client,
            info,
            allowed_buckets=self.allowed_buckets,
            max_size_bytes=self._max_size_bytes,
        )

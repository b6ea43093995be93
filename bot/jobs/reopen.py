"""A job from its record: the source and the thread it had, so that a restart or another
worker runs it again from the start and tells the same people in the same place."""

from __future__ import annotations

import asyncio
from typing import Any, TextIO

import structlog
from slack_sdk.web.async_client import AsyncWebClient

from bot.aws import s3
from bot.errors import S3Error
from bot.jobs.job import Replier
from bot.jobs.replies import ConsoleReplier, SilentReplier
from bot.slack.files import SlackDownloader, SlackFileSource
from bot.slack.replier import SlackReplier
from bot.sources import (
    Source,
    SourceInfo,
    s3_source,
    staged_upload_source,
)
from bot.store import ReplySpec

log = structlog.get_logger("bot.reopen")


class Reopener:
    def __init__(
        self,
        *,
        currency: str,
        max_file_size_bytes: int,
        slack_client: AsyncWebClient | None = None,
        downloader: SlackDownloader | None = None,
        s3_client: Any | None = None,
        allowed_buckets: frozenset[str] = frozenset(),
        keep_uploads: bool = False,
        console: TextIO | None = None,
    ) -> None:
        self._currency = currency
        self._max_bytes = max_file_size_bytes
        self._slack = slack_client
        self._downloader = downloader
        self._s3 = s3_client
        self._allowed = allowed_buckets
        self._keep_uploads = keep_uploads
        self._console = console

    def source(self, info: SourceInfo) -> Source | None:
        locator = info.locator
        if info.kind == "slack" and self._downloader is not None:
            return SlackFileSource.again(info, self._downloader)
        if self._s3 is None or "bucket" not in locator:
            return None  # a streamed upload, or nothing here can read it
        if info.kind == "s3":
            return s3_source(
                self._s3, info, allowed_buckets=self._allowed, max_size_bytes=self._max_bytes
            )
        if info.kind == "upload" and locator.get("staged") == "true":
            return staged_upload_source(self._s3, info, max_size_bytes=self._max_bytes)
        return None  # an upload whose staging never finished

    def replier(self, reply: ReplySpec) -> Replier:
        if reply.kind == "slack" and self._slack is not None and reply.channel:
            return SlackReplier(
                self._slack,
                reply.channel,
                currency=self._currency,
                start_ts=reply.start_ts,
                progress_ts=reply.progress_ts,
            )
        if reply.kind == "console" and self._console is not None:
            return ConsoleReplier(self._currency, self._console)
        return SilentReplier()

    async def finished(self, info: SourceInfo) -> None:
        """A staged upload is deleted once its job has ended (unless S3_KEEP_UPLOADS)."""
        locator = info.locator
        if self._keep_uploads or self._s3 is None or locator.get("staged") != "true":
            return
        location = s3.S3Location(locator["bucket"], locator["key"])
        try:
            await asyncio.to_thread(s3.delete_object, self._s3, location)
        except S3Error as error:
            # A lifecycle rule on uploads/ is the backstop (README).
            log.warning("upload.delete_failed", error=str(error))

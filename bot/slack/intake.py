"""From a Slack share or /process-events to a queued job, with an answer for every problem.

Shares are processed once per (file, channel): Slack sends two events per upload and may
redeliver either. An explicit command always starts a new job. Problems with a command go
back to the person who typed it, ephemerally; nothing lands in the channel.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.errors import (
    CommandError,
    FileTooLargeError,
    NotAcceptingError,
    SourceError,
    StoreError,
    StoreFullError,
    UnsupportedSourceError,
)
from bot.jobs.runner import JobRunner
from bot.slack import blocks
from bot.slack.files import SlackDownloader, SlackFileSource, parse_file_reference
from bot.slack.replier import SlackReplier
from bot.sources import S3Reader, Source, is_csv_name
from bot.store import Duplicate
from bot.words import (
    DISK_LOW,
    HELP,
    NOT_IN_CHANNEL,
    SHUTTING_DOWN,
    SLACK_REFUSED,
    STORE_AWAY,
    cannot_process,
)
from processing.words import sentence

log = structlog.get_logger("bot.slack")

SHARES_REMEMBERED = 10_000
HISTORY_PAGES = 5
HISTORY_PAGE_SIZE = 200
Respond = Callable[[str], Awaitable[Any]]


@dataclass(frozen=True, slots=True, kw_only=True)
class SlackContext:
    bot_user_id: str | None
    bot_id: str | None


class SlackJobs:
    def __init__(
        self,
        *,
        client: AsyncWebClient,
        downloader: SlackDownloader,
        jobs: JobRunner,
        currency: str,
        max_file_size_bytes: int,
        s3_reader: S3Reader | None = None,
    ) -> None:
        self._client = client
        self._downloader = downloader
        self._jobs = jobs
        self._currency = currency
        self._max_bytes = max_file_size_bytes
        self._s3 = s3_reader
        self._shares_seen: OrderedDict[tuple[str, str], None] = OrderedDict()

    def replier(self, channel: str) -> SlackReplier:
        return SlackReplier(self._client, channel, currency=self._currency)

    # -- shares ---------------------------------------------------------------------------

    def _claim_share(self, file_id: str, channel: str) -> bool:
        key = (file_id, channel)
        if key in self._shares_seen:
            return False
        self._shares_seen[key] = None
        if len(self._shares_seen) > SHARES_REMEMBERED:
            self._shares_seen.popitem(last=False)
        return True

    async def on_share(
        self,
        *,
        file_id: str,
        channel: str,
        user: str | None,
        context: SlackContext,
        file: dict[str, Any] | None = None,
    ) -> None:
        """A file appeared in a channel. CSVs become jobs; everything else is ignored."""
        if user is not None and user == context.bot_user_id:
            return
        if (
            file is not None
            and file.get("name")
            and not is_csv_name(file["name"], file.get("filetype"))
        ):
            return
        if not self._claim_share(file_id, channel):
            return  # the other event of the same upload, or a redelivery
        try:
            info = await self._file_info(file_id)
        except CommandError:
            # Let the upload's other event, or Slack's redelivery, try again.
            self._shares_seen.pop((file_id, channel), None)
            log.info("share.file_unavailable")
            return
        if info.get("user") == context.bot_user_id or not is_csv_name(
            str(info.get("name", "")), info.get("filetype")
        ):
            return
        if (info.get("size") or 0) > self._max_bytes:
            await self._tell_sharer(
                channel, user, str(FileTooLargeError(info["size"], self._max_bytes))
            )
            return
        await self._submit_share(info, file_id=file_id, channel=channel, user=user)

    async def _submit_share(
        self, info: dict[str, Any], *, file_id: str, channel: str, user: str | None
    ) -> None:
        source = SlackFileSource.from_file(info, self._downloader, requested_by=user)
        try:
            # The key makes it one job across restarts and `serve` instances too.
            await self._jobs.submit(
                source, self.replier(channel), idempotency_key=f"share:{file_id}:{channel}"
            )
        except Duplicate as duplicate:
            log.info("share.duplicate", existing_job_id=duplicate.job_id)
        except NotAcceptingError:
            await self._tell_sharer(channel, user, SHUTTING_DOWN)
        except StoreFullError:
            await self._tell_sharer(channel, user, sentence(DISK_LOW))
        except StoreError as error:
            log.warning("store.unavailable", error=type(error).__name__)
            await self._tell_sharer(channel, user, STORE_AWAY)
        except SlackApiError as error:
            log.warning("share.not_announced", error=error.response.get("error"))

    async def _tell_sharer(self, channel: str, user: str | None, text: str) -> None:
        if user is None:
            return
        try:
            await self._client.chat_postEphemeral(channel=channel, user=user, text=text)
        except SlackApiError as error:
            log.warning(
                "slack.api_error", method="chat.postEphemeral", error=error.response.get("error")
            )

    # -- /process-events --------------------------------------------------------------------

    async def on_command(
        self, *, text: str, channel: str, user: str, context: SlackContext, respond: Respond
    ) -> None:
        argument = text.strip()
        if argument.lower() in ("help", "-h", "--help", "?"):
            await respond(HELP)
            return
        try:
            source = await self._command_source(argument, channel, user, context)
            await self._jobs.submit(source, self.replier(channel))
        except CommandError as problem:
            await respond(str(problem))
        except SourceError as error:
            await respond(cannot_process(blocks.outside_text(str(error))))
        except NotAcceptingError:
            await respond(SHUTTING_DOWN)
        except StoreFullError:
            await respond(sentence(DISK_LOW))
        except StoreError as error:
            log.warning("store.unavailable", error=type(error).__name__)
            await respond(STORE_AWAY)
        except SlackApiError as error:
            if error.response.get("error") in ("not_in_channel", "channel_not_found"):
                await respond(NOT_IN_CHANNEL)
            else:
                log.warning("command.slack_error", error=error.response.get("error"))
                await respond(SLACK_REFUSED)

    async def _command_source(
        self, argument: str, channel: str, user: str, context: SlackContext
    ) -> Source:
        if argument.lower().startswith(("s3://", "<s3://")):
            if self._s3 is None:
                raise UnsupportedSourceError(
                    "reading from S3 is not set up here (an admin sets S3_BUCKET or S3_ALLOWED_BUCKETS)"
                )
            return await self._s3.open(argument.strip("<>").split("|", 1)[0], requested_by=user)
        if argument:
            file_id = parse_file_reference(argument)
            if file_id is None:
                raise CommandError(
                    "That doesn't look like a Slack file. Use `/process-events &lt;file link&gt;` "
                    "(file menu → *Copy link*), `/process-events` for the latest CSV here, "
                    "or `/process-events help`."
                )
            file = await self._file_info(file_id)
        else:
            file = await self._latest_csv(channel, context)
        name = str(file.get("name") or file.get("id", "file"))
        if not is_csv_name(name, file.get("filetype")):
            raise CommandError(
                f"{blocks.outside_text(name)} is not a CSV file. Export the events as .csv and share that."
            )
        size = file.get("size")
        if size is not None and size > self._max_bytes:
            raise CommandError(
                f"I can't process {blocks.outside_text(name)}: {FileTooLargeError(size, self._max_bytes)}."
            )
        return SlackFileSource.from_file(
            file, self._downloader, requested_by=user, via_command=True
        )

    async def _file_info(self, file_id: str) -> dict[str, Any]:
        try:
            response = await self._client.files_info(file=file_id)
        except SlackApiError as error:
            code = error.response.get("error")
            if code in ("file_not_found", "file_deleted", "invalid_arguments"):
                raise CommandError(
                    "I can't find that file. It may have been deleted, or shared somewhere I can't see: "
                    "share it in this channel and try again."
                ) from None
            raise CommandError(
                f"Slack would not tell me about that file ({code}). Please try again."
            ) from None
        return dict(response["file"])

    async def _latest_csv(self, channel: str, context: SlackContext) -> dict[str, Any]:
        cursor: str | None = None
        for _ in range(HISTORY_PAGES):
            try:
                response = await self._client.conversations_history(
                    channel=channel, limit=HISTORY_PAGE_SIZE, cursor=cursor
                )
            except SlackApiError as error:
                if error.response.get("error") in ("not_in_channel", "channel_not_found"):
                    raise CommandError(NOT_IN_CHANNEL) from None
                raise
            messages: list[dict[str, Any]] = response.get("messages") or []
            for message in messages:
                if message.get("user") == context.bot_user_id or (
                    context.bot_id and message.get("bot_id") == context.bot_id
                ):
                    continue
                for file in message.get("files", []):
                    if is_csv_name(str(file.get("name", "")), file.get("filetype")):
                        return await self._file_info(file["id"])
            cursor = (response.get("response_metadata") or {}).get("next_cursor") or None
            if not cursor:
                break
        raise CommandError(
            "I found no CSV shared in this channel recently. Share the export here, "
            "or use `/process-events &lt;file link&gt;`."
        )

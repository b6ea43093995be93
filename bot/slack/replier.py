"""What people see of a job in Slack.

SlackReplier: a start message in the channel, the progress message as the first reply in its
thread (edited with chat.update, never re-posted), then the summary (the headline, then the
weeks), the chart and the CSVs in the thread, and the start message rewritten to the outcome.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import structlog
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from bot.jobs.job import Job
from bot.report.artifacts import ReportFile
from bot.slack import blocks
from bot.store import MAX_ATTEMPTS, ReplySpec
from bot.words import not_drawn
from processing import Progress, WeeklyReport

log = structlog.get_logger("bot.replies")
T = TypeVar("T")


class SlackReplier:
    def __init__(
        self,
        client: AsyncWebClient,
        channel: str,
        *,
        currency: str,
        start_ts: str | None = None,
        progress_ts: str | None = None,
    ) -> None:
        """`start_ts`, `progress_ts`: the thread of a job announced before (a restart, or
        another process), whose messages are edited rather than posted again."""
        self._client = client
        self.channel = channel
        self._currency = currency
        self.start_ts = start_ts
        self.progress_ts = progress_ts
        self._queued = False
        self._outcome: blocks.Message | None = None

    def spec(self) -> ReplySpec:
        return ReplySpec(
            kind="slack",
            channel=self.channel,
            start_ts=self.start_ts,
            progress_ts=self.progress_ts,
        )

    async def _call(self, method: str, call: Callable[[], Awaitable[T]]) -> T:
        try:
            return await call()
        except SlackApiError as error:
            log.warning("slack.api_error", method=method, error=error.response.get("error"))
            raise
        except Exception as error:
            log.warning("slack.api_error", method=method, error=type(error).__name__)
            raise

    async def _post(self, message: blocks.Message, thread_ts: str | None = None) -> str:
        response: AsyncSlackResponse = await self._call(
            "chat.postMessage",
            lambda: self._client.chat_postMessage(
                channel=self.channel,
                text=message["text"],
                blocks=message["blocks"],
                thread_ts=thread_ts,
                unfurl_links=False,
                unfurl_media=False,
            ),
        )
        return str(response["ts"])

    async def _update(self, ts: str | None, message: blocks.Message) -> None:
        if ts is None:
            return
        await self._call(
            "chat.update",
            lambda: self._client.chat_update(
                channel=self.channel, ts=ts, text=message["text"], blocks=message["blocks"]
            ),
        )

    async def announce(self, job: Job, queue_position: int | None) -> None:
        self._queued = queue_position is not None
        self.start_ts = await self._post(_start(job, queue_position))
        self.progress_ts = await self._post(
            blocks.waiting_message(queue_position=queue_position), thread_ts=self.start_ts
        )

    async def running(self, job: Job) -> None:
        if self.start_ts is None:  # its thread never made it to the store: open one now
            await self.announce(job, None)
            return
        if job.attempt > 1:  # taken up again after a restart or a worker that died
            await self._update(self.start_ts, _start(job, queue_position=None))
            await self._update(
                self.progress_ts,
                blocks.restarted_message(attempt=job.attempt, attempts=MAX_ATTEMPTS),
            )
        elif self._queued:  # otherwise it already says "Processing": no edit that changes nothing
            await self._update(self.start_ts, _start(job, queue_position=None))

    async def paused(self, job: Job) -> None:
        await self._update(self.progress_ts, blocks.paused_message())

    async def progress(self, job: Job, progress: Progress) -> None:
        await self._update(
            self.progress_ts,
            blocks.progress_message(
                progress,
                total_bytes=job.source.size_bytes,
                elapsed_s=job.duration_s or 0.0,
                currency=self._currency,
            ),
        )

    async def succeeded(self, job: Job, report: WeeklyReport, *, post_summary: bool) -> None:
        """The done edit always (edits say the same however often they are made); the
        summary only when `post_summary`, so that a job finished twice (a worker that died
        after posting) is summed up once. The outcome waits for files_ready()."""
        # Drawn in a worker thread: a long report (thousands of weeks) must not hold up
        # Socket Mode or the web server. If drawing fails, the thread still ends.
        try:
            final = await asyncio.to_thread(self._final_replies, job, report)
        except Exception:
            log.exception("slack.render_failed")
            await self.failed(job, not_drawn(job.id))
            return
        self._outcome = final.outcome
        # Each step on its own: a summary Slack refuses must not hide the files or the outcome.
        steps = [self._update(self.progress_ts, final.done)]
        if post_summary:
            steps.append(self._post_summary(final.summary))
        await _each(*steps)

    async def files_ready(self, job: Job, files: list[ReportFile], *, post_files: bool) -> None:
        """The chart and the CSVs in the thread, then the start message rewritten to the
        outcome: "see thread" once everything is there."""
        if self._outcome is None:  # succeeded() could not draw its messages and said so
            return
        steps: list[Awaitable[Any]] = [self._upload_files(files)] if post_files else []
        if post_files and job.files_missing:
            steps.append(self._post(blocks.files_missing_message(job.files_missing), self.start_ts))
        steps.append(self._update(self.start_ts, self._outcome))
        await _each(*steps)

    def _final_replies(self, job: Job, report: WeeklyReport) -> _FinalReplies:
        return _FinalReplies(
            done=blocks.done_message(
                report, elapsed_s=job.duration_s or 0.0, currency=self._currency
            ),
            summary=blocks.summary_messages(
                report, file_name=job.source.name, currency=self._currency
            ),
            outcome=blocks.outcome_message(
                report, file_name=job.source.name, job_id=job.id, currency=self._currency
            ),
        )

    async def _post_summary(self, summary: list[blocks.Message]) -> None:
        for message in summary:
            fallback = message.get("fallback")
            try:
                await self._post(message, thread_ts=self.start_ts)
            except SlackApiError as error:
                if fallback is None or error.response.get("error") != "invalid_blocks":
                    raise
                log.info("slack.table_refused")  # an older workspace, or no table blocks
                await self._post(fallback, thread_ts=self.start_ts)

    async def _upload_files(self, files: list[ReportFile]) -> None:
        if not files:
            return
        uploads = [{"content": f.content, "filename": f.name, "title": f.title} for f in files]
        await self._call(
            "files.upload",
            lambda: self._client.files_upload_v2(
                channel=self.channel, thread_ts=self.start_ts, file_uploads=uploads
            ),
        )

    async def failed(self, job: Job, reason: str) -> None:
        await _each(
            self._update(self.progress_ts, blocks.failed_message(reason, job_id=job.id)),
            self._update(
                self.start_ts,
                blocks.failed_outcome_message(reason, file_name=job.source.name, job_id=job.id),
            ),
        )


@dataclass(frozen=True, slots=True)
class _FinalReplies:
    done: blocks.Message
    summary: list[blocks.Message]
    outcome: blocks.Message


def _start(job: Job, queue_position: int | None) -> blocks.Message:
    return blocks.start_message(
        job_id=job.id,
        file_name=job.source.name,
        size_bytes=job.source.size_bytes,
        requested_by=job.source.requested_by,
        via_command=job.source.via_command,
        queue_position=queue_position,
    )


async def _each(*steps: Awaitable[Any]) -> None:
    """Run every step even when one fails: a failed upload must not hide the outcome."""
    for step in steps:
        try:
            await step
        except Exception as error:
            log.warning("slack.reply_step_failed", error=type(error).__name__)

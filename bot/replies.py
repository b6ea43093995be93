"""Repliers: what people see of a job. Slack (a thread updated in place), the console, or
only the job API (SilentReplier).

SlackReplier: a start message in the channel, the progress message as the first reply in its
thread (edited with chat.update, never re-posted), then the summary (the headline, then the
weeks), the chart and the CSVs in the thread, and the start message rewritten to the outcome.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TextIO, TypeVar

import structlog
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from bot import blocks
from bot.artifacts import ReportFile
from bot.currency import format_money
from bot.jobs import Job
from bot.store import MAX_ATTEMPTS, ReplySpec
from processing import Progress, WeeklyReport, to_text
from processing.report import estimate
from processing.schema import REASONS
from processing.text import displayable
from processing.words import INVALID_ROWS, reason_words

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
            await self.failed(
                job,
                f"the report was computed but could not be drawn (job {job.id}); please try again",
            )
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


class ConsoleReplier:
    """Local mode: the same sequence as in Slack, as lines on a terminal."""

    def __init__(self, currency: str, out: TextIO | None = None) -> None:
        self._currency = currency
        self._out = out if out is not None else sys.stdout

    def spec(self) -> ReplySpec:
        return ReplySpec(kind="console")

    def _say(self, job: Job, text: str) -> None:
        self._out.write(f"[job {job.id}] {text}\n")
        self._out.flush()

    async def announce(self, job: Job, queue_position: int | None) -> None:
        size = f" ({job.source.size_bytes / 1e6:,.1f} MB)" if job.source.size_bytes else ""
        queued = f", waiting for a free slot (position {queue_position})" if queue_position else ""
        self._say(job, f"processing {displayable(job.source.name)}{size}{queued}")

    async def running(self, job: Job) -> None:
        again = f" again (attempt {job.attempt} of {MAX_ATTEMPTS})" if job.attempt > 1 else ""
        self._say(job, f"started{again}")

    async def paused(self, job: Job) -> None:
        self._say(job, "paused: the service is stopping; it runs again when it is back")

    async def progress(self, job: Job, progress: Progress) -> None:
        self._say(job, progress_line(progress, job.source.size_bytes, self._currency))

    async def succeeded(self, job: Job, report: WeeklyReport, *, post_summary: bool) -> None:
        text = await asyncio.to_thread(to_text, report, job.source.name, self._currency)
        self._say(job, f"done in {job.duration_s or 0:,.1f}s")
        self._out.write(text)
        self._out.flush()

    async def files_ready(self, job: Job, files: list[ReportFile], *, post_files: bool) -> None:
        # The console shows the report as text; the files are in the job API, if kept.
        if job.files_missing:
            self._say(job, job.files_missing)

    async def failed(self, job: Job, reason: str) -> None:
        self._say(job, f"failed: {displayable(reason)}")


def progress_line(progress: Progress, total_bytes: int | None, currency: str) -> str:
    parts = [
        f"{progress.rows_total:,} rows",
        f"{progress.rows_valid:,} valid",
        f"{progress.rows_invalid:,} invalid",
        f"revenue {format_money(progress.revenue_cents, currency)}",
    ]
    percent = estimate(progress.bytes_read, total_bytes, 0.0).percent
    if percent is not None:
        parts.insert(0, f"{percent}%")
    errors = [
        f"{reason_words(reason)} {progress.invalid_by_reason[reason]:,}"
        for reason in REASONS
        if progress.invalid_by_reason.get(reason)
    ]
    if errors:
        parts.append(f"{INVALID_ROWS} by reason: " + ", ".join(errors))
    return ", ".join(parts)


class SilentReplier:
    """A job only the job API shows (a web upload when no Slack channel is set)."""

    def spec(self) -> ReplySpec:
        return ReplySpec(kind="silent")

    async def paused(self, job: Job) -> None:
        pass

    async def announce(self, job: Job, queue_position: int | None) -> None:
        pass

    async def running(self, job: Job) -> None:
        pass

    async def progress(self, job: Job, progress: Progress) -> None:
        pass

    async def succeeded(self, job: Job, report: WeeklyReport, *, post_summary: bool) -> None:
        pass

    async def files_ready(self, job: Job, files: list[ReportFile], *, post_files: bool) -> None:
        pass

    async def failed(self, job: Job, reason: str) -> None:
        pass

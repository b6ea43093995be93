"""The job API: status and report as JSON, the chart and the CSVs, the page and its config.

Everything comes from the job store: a job's record (this process's own live copy while it
runs here) and the artifacts rendered once when it finished. So reports survive a restart,
and any `serve` instance answers for a job any worker ran.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
from typing import Any

from aiohttp import web

from bot import words
from bot.errors import too_large
from bot.jobs.job import Job
from bot.jobs.runner import JobRunner
from bot.report.artifacts import (
    CHART_FAILED,
    CHART_PNG_NAME,
    CLINIC_CSV_NAME,
    INVALID_ROWS_CSV_NAME,
    REPORT_CSV_NAME,
    current_display,
)
from bot.store import REPORT_JSON, JobRecord, JobStatus
from bot.web.context import CONTEXT, STATIC_DIR, authorized, error_response, unauthorized
from bot.web.reservations import RESERVATIONS, lapsed_answer
from processing import amount, estimate, iso_utc
from processing.words import REASON_WORDS, file_size, queue_words, sentence, time_left

JOBS_LISTED = 100
MAX_WAIT_S = 25.0  # a long poll stays under common proxies' idle timeouts
FILES_WAIT_S = 30.0  # files this instance is making are waited for, up to this long
FILES_RETRY_AFTER_S = 1
NOT_THERE = {INVALID_ROWS_CSV_NAME: words.EVERY_ROW_VALID}


def job_json(job: JobRecord, jobs: JobRunner) -> dict[str, Any]:
    """A job's status and progress, without its report (get_job adds that)."""
    progress = job.progress
    size = job.source.size_bytes
    progress_json = None
    if progress is not None:
        elapsed_s = job.duration_s or 0.0
        guess = estimate(
            progress.bytes_read, size, elapsed_s, finished=job.status is JobStatus.SUCCEEDED
        )
        progress_json = {
            "rows": progress.rows_total,
            "valid": progress.rows_valid,
            "invalid": progress.rows_invalid,
            "revenue": amount(progress.revenue_cents),
            "bytes": progress.bytes_read,
            "percent": guess.percent,
            "elapsed_s": round(elapsed_s, 1),
            "left_s": None if guess.left_s is None else round(guess.left_s, 1),
            "time_left": None if job.finished or guess.percent is None else time_left(guess.left_s),
        }
    duration_s = job.duration_s
    queue_position = jobs.queue_position(job)
    return {
        "id": job.id,
        "status": job.status.value,
        "source": {
            "kind": job.source.kind,
            "name": job.source.name,
            "label": job.source.label,
            "size_bytes": size,
        },
        "created_at": iso_utc(job.created_at),
        "queue_position": queue_position,
        "queue_words": queue_words(queue_position) if job.status is JobStatus.QUEUED else None,
        "duration_s": None if duration_s is None else round(duration_s, 3),
        "progress": progress_json,
        "error": job.error if job.status is JobStatus.FAILED else None,
    }


async def _job_or_404(request: web.Request) -> JobRecord | web.Response:
    context = request.app[CONTEXT]
    if not authorized(request, context.settings.upload_token):
        return unauthorized()
    job_id = request.match_info["job_id"]
    reservations = request.app[RESERVATIONS]
    reserved = reservations.waiting.get(job_id)
    if reserved is not None:
        return reserved.as_job()
    if reservations.lapsed(job_id):
        return lapsed_answer(context.settings.upload_idle_timeout_s).response()
    job = await context.jobs.lookup(job_id)
    if job is None or not _web_job(job):
        return error_response(404, words.no_such_job(context.settings.job_retention_s))
    return job


def _web_job(job: JobRecord) -> bool:
    """Jobs that came in through the web API. A Slack channel's jobs stay in Slack."""
    return job.source.kind == "upload"


async def get_job(request: web.Request) -> web.Response:
    """One job. With `?seen=<status>&wait_s=<seconds>` (the page's way), a job this instance
    runs and still has that status is answered once its status changes, or after wait_s:
    the page learns of a finished report at once instead of on its next poll."""
    job = await _job_or_404(request)
    if isinstance(job, web.Response):
        return job
    waiting = _long_poll(request)
    if isinstance(waiting, web.Response):
        return waiting
    context = request.app[CONTEXT]
    if waiting is not None and isinstance(job, Job):
        seen, wait_s = waiting
        with contextlib.suppress(TimeoutError):
            await context.jobs.wait_until(lambda: job.status.value != seen, wait_s)
    head = json.dumps(job_json(job, context.jobs))
    if job.status is not JobStatus.SUCCEEDED:
        return web.Response(text=head[:-1] + ', "report": null}', content_type="application/json")
    stored = await context.jobs.store.artifact(job.id, REPORT_JSON)
    if stored is None:
        return error_response(404, words.REPORT_GONE)
    if not current_display(stored):
        # Stored by an earlier version: its figures stand, its words are not the page's.
        return await asyncio.to_thread(_with_words_of_an_earlier_version, head, stored)
    # The report was encoded once, when the job finished: here its object is only spliced
    # in, so a report of thousands of weeks costs the event loop a copy, not an encoding.
    body = head[:-1].encode() + b"," + stored[1:]
    return web.Response(body=body, content_type="application/json")


def _with_words_of_an_earlier_version(head: str, stored: bytes) -> web.Response:
    """The job with its report's figures, no `display`, and a `display_notice` saying why:
    the page shows the notice rather than a report it cannot word."""
    body = json.loads(stored)
    body["display"] = None
    body["display_notice_title"] = words.REPORT_NOT_SHOWN
    body["display_notice"] = words.REPORT_FROM_AN_EARLIER_VERSION
    job = json.loads(head)
    return web.json_response({**job, **body})


def _long_poll(request: web.Request) -> tuple[str, float] | web.Response | None:
    """(seen, wait_s) from the query, None without them, or a 400 that says what is wrong."""
    seen, wait = request.query.get("seen"), request.query.get("wait_s")
    if seen is None and wait is None:
        return None
    statuses = [status.value for status in JobStatus]
    try:
        wait_s = float(wait or "")
    except ValueError:
        wait_s = math.nan
    if seen not in statuses or not 0 < wait_s <= MAX_WAIT_S:
        return error_response(400, words.how_to_wait(statuses, MAX_WAIT_S))
    return seen, wait_s


async def list_jobs(request: web.Request) -> web.Response:
    context = request.app[CONTEXT]
    if not authorized(request, context.settings.upload_token):
        return unauthorized()
    records = await context.jobs.listed("upload", JOBS_LISTED)
    return web.json_response({"jobs": [job_json(job, context.jobs) for job in records]})


async def _finished_file(request: web.Request, name: str, not_ready: str) -> bytes | web.Response:
    """A finished job's file, made just after its report (bot/artifacts.py): one this instance
    is still making is waited for, one another instance is making is a 503 with Retry-After.
    A 404 when the job has not succeeded or the file is not there."""
    job = await _job_or_404(request)
    if isinstance(job, web.Response):
        return job
    if job.status is not JobStatus.SUCCEEDED:
        return error_response(404, not_ready)
    jobs = request.app[CONTEXT].jobs
    # lookup() gives a live Job only where this process runs it (JobRunner._live).
    made_here = job.files_stored if isinstance(job, Job) else None
    if made_here is not None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(FILES_WAIT_S):
                await made_here.wait()
    data = await jobs.store.artifact(job.id, name)
    if data is not None:
        return data
    if job.files_missing:  # not "every row was valid", nor "no longer kept": the truth
        return error_response(404, sentence(job.files_missing))
    if (
        made_here is None
        and await jobs.store.artifact(job.id, CHART_PNG_NAME) is None  # stored last
        and await jobs.store.artifact(job.id, REPORT_JSON) is not None
    ):
        return error_response(
            503,
            words.FILES_BEING_MADE,
            headers={"Retry-After": str(FILES_RETRY_AFTER_S)},
        )
    return error_response(404, NOT_THERE.get(name, words.FILES_GONE))


async def _download(request: web.Request, name: str, not_ready: str) -> web.Response:
    data = await _finished_file(request, name, not_ready)
    if isinstance(data, web.Response):
        return data
    return web.Response(
        body=data,
        content_type="text/csv",
        charset="utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "private, max-age=3600",
        },
    )


async def get_chart(request: web.Request) -> web.Response:
    data = await _finished_file(request, CHART_PNG_NAME, words.CHART_NOT_YET)
    if isinstance(data, web.Response):
        return data
    if data == CHART_FAILED:
        return error_response(404, words.CHART_NOT_DRAWN)
    return web.Response(
        body=data, content_type="image/png", headers={"Cache-Control": "private, max-age=3600"}
    )


async def get_report_csv(request: web.Request) -> web.Response:
    """weekly-report.csv: exactly `clinic-events report --format csv`, as posted in Slack."""
    return await _download(request, REPORT_CSV_NAME, words.WEEKLY_CSV_NOT_YET)


async def get_clinic_csv(request: web.Request) -> web.Response:
    """clinic-weekly.csv: `report --format csv --by clinic`, as posted in Slack."""
    return await _download(request, CLINIC_CSV_NAME, words.CLINIC_CSV_NOT_YET)


async def get_invalid_rows_csv(request: web.Request) -> web.Response:
    """invalid-rows.csv: every invalid row with its reason (`report --invalid-rows`)."""
    return await _download(request, INVALID_ROWS_CSV_NAME, words.INVALID_ROWS_NOT_YET)


async def get_config(request: web.Request) -> web.Response:
    settings = request.app[CONTEXT].settings
    return web.json_response(
        {
            "auth_required": settings.upload_token is not None,
            "max_file_size_bytes": settings.max_file_size_bytes,
            "max_file_size": file_size(settings.max_file_size_bytes),
            # The page's own refusals, before a byte is sent: the server's sentences, with
            # {name} and {size} for the page to fill in.
            "refusals": {
                "not_csv": words.not_csv("{name}"),
                "too_large": sentence(too_large("{size}", file_size(settings.max_file_size_bytes))),
            },
            "currency": settings.currency,
            "reasons": REASON_WORDS,
        }
    )


async def index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})

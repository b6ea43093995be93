"""The job API: status and report as JSON, the chart, the page and its config."""

from __future__ import annotations

import asyncio
import json
from collections import OrderedDict
from collections.abc import Iterator
from datetime import UTC
from typing import Any

from aiohttp import web

from bot.blocks import CLINIC_CSV_NAME, INVALID_ROWS_CSV_NAME, REPORT_CSV_NAME
from bot.chart import revenue_chart_png
from bot.jobs import Job, JobRunner, JobStatus
from bot.web.context import CONTEXT, STATIC_DIR, authorized, error_response, unauthorized
from processing.render import amount, to_clinic_csv, to_csv, to_dict
from processing.report import estimate
from processing.words import REASON_WORDS, display_words, time_left

CHARTS_CACHED = 16
JSON_PIECE_DEPTH = 3  # the body, the report, its lists, then each week or clinic whole


class ChartCache:
    """The last few charts drawn. A finished report never changes, and drawing costs CPU."""

    def __init__(self, size: int = CHARTS_CACHED) -> None:
        self._size = size
        self._charts: OrderedDict[str, asyncio.Task[bytes]] = OrderedDict()

    async def get(self, job: Job, currency: str) -> bytes:
        task = self._charts.get(job.id)
        if task is None or (task.done() and (task.cancelled() or task.exception() is not None)):
            assert job.report is not None
            task = asyncio.create_task(
                asyncio.to_thread(revenue_chart_png, job.report, currency=currency)
            )
            self._charts[job.id] = task
            while len(self._charts) > self._size:
                self._charts.popitem(last=False)
        self._charts.move_to_end(job.id)
        # Shielded: a client that goes away must not cancel a drawing others may wait for.
        return await asyncio.shield(task)


CHARTS = web.AppKey("charts", ChartCache)


def job_json(job: Job, jobs: JobRunner) -> dict[str, Any]:
    """A job's status and progress, without its report (get_job adds that, off the loop)."""
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
    body: dict[str, Any] = {
        "id": job.id,
        "status": job.status.value,
        "source": {
            "kind": job.source.kind,
            "name": job.source.name,
            "label": job.source.label,
            "size_bytes": size,
        },
        "created_at": job.created_at.astimezone(UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z"),
        "queue_position": jobs.queue_position(job),
        "duration_s": None if duration_s is None else round(duration_s, 3),
        "progress": progress_json,
        "error": job.error if job.status is JobStatus.FAILED else None,
    }
    return body


def json_pieces(value: Any, depth: int = 0) -> Iterator[str]:
    """JSON text in pieces: json.dumps per week or clinic rather than one call for the
    whole report. Each C call holds the GIL for microseconds; one call over a 10 MB report
    held it for 80 ms, and the pure-Python encoder took 75 MB of small strings."""
    if depth < JSON_PIECE_DEPTH and isinstance(value, dict):
        yield "{"
        for index, (key, item) in enumerate(value.items()):
            yield ("," if index else "") + json.dumps(key) + ":"
            yield from json_pieces(item, depth + 1)
        yield "}"
    elif depth < JSON_PIECE_DEPTH and isinstance(value, list):
        yield "["
        for index, item in enumerate(value):
            yield ("," if index else "") + json.dumps(item)
        yield "]"
    else:
        yield json.dumps(value)


def _job_or_404(request: web.Request) -> Job | web.Response:
    context = request.app[CONTEXT]
    if not authorized(request, context.settings.upload_token):
        return unauthorized()
    job = context.jobs.get(request.match_info["job_id"])
    if job is None or not _web_job(job):
        kept_min = context.settings.job_retention_s / 60
        return error_response(
            404,
            f"No such job: finished jobs are kept for {kept_min:g} minutes, or the link is wrong.",
        )
    return job


def _web_job(job: Job) -> bool:
    """Jobs that came in through the web API. A Slack channel's jobs stay in Slack."""
    return job.source.kind == "upload"


async def get_job(request: web.Request) -> web.Response:
    job = _job_or_404(request)
    if isinstance(job, web.Response):
        return job
    context = request.app[CONTEXT]
    currency = context.settings.currency
    body = job_json(job, context.jobs)
    report = job.report if job.status is JobStatus.SUCCEEDED else None

    def encoded() -> bytes:
        # A report of thousands of weeks takes a while to turn into JSON: not on the loop.
        body["report"] = None if report is None else to_dict(report, job.source.name, currency)
        if report is not None:  # the words the page shows: it formats, never derives
            display = display_words(report)
            body["treatment_names"] = display["treatment_names"]
            body["display"] = display
        return "".join(json_pieces(body)).encode("ascii")  # json.dumps escapes to ASCII

    return web.Response(body=await asyncio.to_thread(encoded), content_type="application/json")


async def list_jobs(request: web.Request) -> web.Response:
    context = request.app[CONTEXT]
    if not authorized(request, context.settings.upload_token):
        return unauthorized()
    jobs = [job_json(job, context.jobs) for job in context.jobs.recent() if _web_job(job)]
    return web.json_response({"jobs": jobs})


async def get_chart(request: web.Request) -> web.Response:
    job = _job_or_404(request)
    if isinstance(job, web.Response):
        return job
    if job.status is not JobStatus.SUCCEEDED:
        return error_response(404, "The chart is ready once the report is finished.")
    context = request.app[CONTEXT]
    png = await request.app[CHARTS].get(job, context.settings.currency)
    return web.Response(
        body=png,
        content_type="image/png",
        headers={"Cache-Control": "private, max-age=3600"},
    )


def _csv_download(text: str, name: str) -> web.Response:
    return web.Response(
        text=text,
        content_type="text/csv",
        charset="utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "private, max-age=3600",
        },
    )


def _succeeded_job(request: web.Request, not_ready: str) -> Job | web.Response:
    """The job behind a download route, or the answer to give instead."""
    job = _job_or_404(request)
    if isinstance(job, web.Response):
        return job
    if job.status is not JobStatus.SUCCEEDED or job.report is None:
        return error_response(404, not_ready)
    return job


async def get_report_csv(request: web.Request) -> web.Response:
    """weekly-report.csv: exactly `clinic-events report --format csv`, as posted in Slack."""
    job = _succeeded_job(request, "The weekly CSV is ready once the report is finished.")
    if isinstance(job, web.Response):
        return job
    assert job.report is not None
    return _csv_download(await asyncio.to_thread(to_csv, job.report), REPORT_CSV_NAME)


async def get_clinic_csv(request: web.Request) -> web.Response:
    """clinic-weekly.csv: `report --format csv --by clinic`, as posted in Slack."""
    job = _succeeded_job(request, "The clinic CSV is ready once the report is finished.")
    if isinstance(job, web.Response):
        return job
    assert job.report is not None
    return _csv_download(await asyncio.to_thread(to_clinic_csv, job.report), CLINIC_CSV_NAME)


async def get_invalid_rows_csv(request: web.Request) -> web.Response:
    """invalid-rows.csv: every invalid row with its reason (`report --invalid-rows`)."""
    job = _succeeded_job(request, "The invalid rows are listed once the report is finished.")
    if isinstance(job, web.Response):
        return job
    if job.invalid_rows_csv is None:
        return error_response(404, "Every row of this file was valid: there is nothing to list.")
    return _csv_download(job.invalid_rows_csv, INVALID_ROWS_CSV_NAME)


async def get_config(request: web.Request) -> web.Response:
    settings = request.app[CONTEXT].settings
    return web.json_response(
        {
            "auth_required": settings.upload_token is not None,
            "max_file_size_bytes": settings.max_file_size_bytes,
            "currency": settings.currency,
            "reasons": REASON_WORDS,
        }
    )


async def index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})

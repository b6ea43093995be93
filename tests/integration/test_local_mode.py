"""Local mode: no Slack tokens, and the whole flow still works, reported on the console."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import aiohttp

from bot.app import running
from bot.config import Settings
from bot.jobs.job import Job
from bot.jobs.replies import ConsoleReplier, progress_line
from bot.sources import SourceInfo
from processing import Progress
from tests.integration.helpers import SAMPLE


async def test_a_web_upload_reports_start_progress_and_summary_to_the_console() -> None:
    """Start line, then the summary table; the same sequence Slack users see."""
    console = io.StringIO()
    async with (
        running(Settings(port=0, progress_interval_s=0.05), console=console) as service,
        aiohttp.ClientSession() as http,
    ):
        form = aiohttp.FormData()
        form.add_field("file", SAMPLE, filename="events-sample.csv", content_type="text/csv")
        async with http.post(f"http://127.0.0.1:{service.port}/api/upload", data=form) as response:
            assert response.status == 202
            job_id = (await response.json())["job_id"]
        job = service.jobs.get(job_id)
        assert job is not None
        await service.jobs.wait_until(lambda: job.done.is_set(), 30)
        assert await service.slack_state() == "disabled"

    lines = console.getvalue().splitlines()
    assert lines[0].startswith(f"[job {job_id}] processing events-sample.csv")
    assert any(line.startswith(f"[job {job_id}] done in") for line in lines)
    text = console.getvalue()
    assert "Rows:     3,000 total, 2,990 valid, 10 invalid" in text
    assert "Total revenue: 305,272.95 USD over 53 weeks" in text
    patient_ids = {line.split(b",")[2] for line in SAMPLE.splitlines()[1:] if line.count(b",") > 3}
    assert not [pid for pid in patient_ids if pid and pid.decode() in text]


def test_console_progress_lines_say_percent_rows_revenue_and_reasons() -> None:
    """What a progress line shows, in the report currency."""
    progress = Progress(
        rows_total=120_000,
        rows_valid=119_990,
        revenue_cents=1_234_567,
        bytes_read=50,
        invalid_by_reason={"invalid_timestamp": 10, "malformed_row": 0},
    )
    line = progress_line(progress, 200, "EUR")
    assert line == (
        "25%, 120,000 rows, 119,990 valid, 10 invalid, revenue €12,345.67, "
        "invalid rows by reason: bad date 10"
    )
    assert progress_line(progress, None, "USD").startswith("120,000 rows")


async def test_console_lines_strip_control_characters() -> None:
    """Local mode: a file name with an ESC sequence never reaches the terminal raw."""
    out = io.StringIO()
    replier = ConsoleReplier("USD", out)
    job = Job(
        id="j1",
        source=SourceInfo(kind="upload", name="ev\x1b[2Jil\u202e.csv", label="x"),
        reply=replier.spec(),
        created_at=datetime.now(UTC),
    )
    await replier.announce(job, None)
    await replier.failed(job, "broken \x1b]0;t\x07 here")
    assert "\x1b" not in out.getvalue()
    assert "\u202e" not in out.getvalue()
    assert "processing ev [2Jil .csv" in out.getvalue()

"""An export without its header row: each place a user looks says the header seems missing,
and no cell of the file is shown, logged or stored anywhere.

The engine reads the first line as the header. When none of it looks like a column name, the
error names the columns it wanted and says nothing of what it found: that line is a patient's
event. The page's half of this is tests/web/test_headerless_page.py; the file, the words and
`cells_in` are in tests/helpers.py, for both.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import structlog

from bot import logs
from bot.app import Service, running
from bot.config import Settings, SlackTokens
from tests.helpers import HEADERLESS, MISSING_HEADER, cells_in, cli
from tests.integration.helpers import CHANNEL, finished_jobs, share, start_and_thread
from tests.standin.slack import APP_TOKEN, BOT_TOKEN, SlackStandIn

JOB_TIMEOUT_S = 30.0


def data_dir_text(data_dir: Path) -> str:
    """Every byte of every file under the data directory (jobs.sqlite3, -wal, -shm)."""
    files = sorted(path for path in data_dir.rglob("*") if path.is_file())
    assert any(path.name == "jobs.sqlite3" for path in files), files
    return "".join(path.read_bytes().decode("latin-1") for path in files)


@pytest.fixture
def rendered_logs() -> Iterator[io.StringIO]:
    """The service's log output as `clinic-events serve` writes it (bot.logs, JSON lines, at
    debug level): structlog events and library warnings, tracebacks rendered. Restores the
    logging set-up afterwards, pytest's own handlers included."""
    out = io.StringIO()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    libraries = {name: logging.getLogger(name).level for name in logs.LIBRARY_LOGGERS}
    configured = structlog.get_config() if structlog.is_configured() else None
    logs.configure(level="debug", log_format="json", stream=out)
    root.handlers[:] = [*handlers, *root.handlers]  # pytest's, then bot.logs' own
    try:
        yield out
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        for name, library_level in libraries.items():
            logging.getLogger(name).setLevel(library_level)
        if configured is None:
            structlog.reset_defaults()
        else:
            structlog.configure(**configured)


def log_lines(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines() if line.strip()]


def assert_logs_tell_without_cells(out: io.StringIO) -> None:
    """No cell in any log line; the job's end is logged with the header-missing reason."""
    assert cells_in(out.getvalue()) == [], out.getvalue()
    finished = [line for line in log_lines(out) if line["event"] == "job.finished"]
    assert [(line["status"], line["error"]) for line in finished] == [("failed", MISSING_HEADER)]


@contextlib.asynccontextmanager
async def service(data_dir: Path, console: io.StringIO, **fields: Any) -> AsyncIterator[Service]:
    """The real service on a loopback port, its job store in `data_dir`."""
    settings = Settings(
        port=0, data_dir=data_dir, progress_interval_s=0.2, shutdown_grace_s=5.0, **fields
    )
    async with running(settings, console=console) as started:
        yield started


async def test_a_headerless_file_shared_in_slack_says_so_and_no_cell_leaves_it(
    slack: SlackStandIn, tmp_path: Path, rendered_logs: io.StringIO
) -> None:
    """A headerless share is told so in Slack; no call, log line or stored byte holds a cell."""
    data_dir, console = tmp_path / "data", io.StringIO()
    slack.add_file("F0NOHEAD01", "events.csv", HEADERLESS)
    tokens = SlackTokens(bot_token=BOT_TOKEN, app_token=APP_TOKEN)
    async with service(data_dir, console, slack=tokens, slack_api_url=slack.base_url) as bot:
        await slack.wait_for_connection()
        await share(slack, "F0NOHEAD01")
        [job] = await finished_jobs(bot, timeout=JOB_TIMEOUT_S)
        assert job.status == "failed"
        assert job.error == MISSING_HEADER

        start, [progress] = start_and_thread(slack, "events.csv")
        assert MISSING_HEADER in start["text"], start["text"]
        assert MISSING_HEADER in json.dumps(start["blocks"])
        assert progress["text"] == f"The file could not be processed: {MISSING_HEADER}"
        assert MISSING_HEADER in json.dumps(progress["blocks"])
        assert not slack.uploads
        assert not slack.calls_to("files.getUploadURLExternal")
        seen_by_slack = json.dumps(
            {
                "calls": [call.args for call in slack.calls],  # posts, updates, every request
                "messages": [slack.messages(CHANNEL), slack.thread(CHANNEL, start["ts"])],
                "uploads": [u["content"].decode("latin-1") for u in slack.uploads.values()],
                "ephemerals": slack.ephemerals,
                "responses": slack.responses,
            },
            ensure_ascii=False,
        )
        assert cells_in(seen_by_slack) == [], seen_by_slack

        stored = data_dir_text(data_dir)
        assert MISSING_HEADER in stored, "the job's record is in the bytes read"
        assert cells_in(stored) == []

    stored = data_dir_text(data_dir)
    assert MISSING_HEADER in stored
    assert cells_in(stored) == []
    assert_logs_tell_without_cells(rendered_logs)
    assert cells_in(console.getvalue()) == []


async def test_a_headerless_upload_is_told_so_by_the_job_api_and_no_cell_leaves_it(
    tmp_path: Path, rendered_logs: io.StringIO
) -> None:
    """A headerless upload is told so by the job API; no answer, log or stored byte has a cell."""
    data_dir, console = tmp_path / "data", io.StringIO()
    async with (
        service(data_dir, console) as web,
        aiohttp.ClientSession(base_url=f"http://127.0.0.1:{web.port}") as http,
    ):
        answers: list[str] = []

        async def get(path: str, status: int = 200) -> Any:
            async with http.get(path) as response:
                body = await response.text()
                answers.append(body)
                assert response.status == status, body
                return json.loads(body) if response.content_type == "application/json" else body

        form = aiohttp.FormData()
        form.add_field("file", HEADERLESS, filename="events.csv", content_type="text/csv")
        async with http.post("/api/upload", data=form) as response:
            answers.append(await response.text())
            assert response.status == 202, answers[-1]
            job_id = (await response.json())["job_id"]
        live = web.jobs.get(job_id)
        assert live is not None
        await web.jobs.wait_until(live.done.is_set, JOB_TIMEOUT_S)

        job = await get(f"/api/jobs/{job_id}")
        assert (job["status"], job["error"], job["report"]) == ("failed", MISSING_HEADER, None)
        [listed] = (await get("/api/jobs"))["jobs"]
        assert (listed["id"], listed["error"]) == (job_id, MISSING_HEADER)
        for name in ("chart.png", "weekly-report.csv", "clinic-weekly.csv", "invalid-rows.csv"):
            await get(f"/api/jobs/{job_id}/{name}", status=404)
        await get("/metrics")
        assert cells_in("\n".join(answers)) == [], answers

        stored = data_dir_text(data_dir)
        assert MISSING_HEADER in stored, "the job's record is in the bytes read"
        assert cells_in(stored) == []

    stored = data_dir_text(data_dir)
    assert MISSING_HEADER in stored
    assert cells_in(stored) == []
    assert_logs_tell_without_cells(rendered_logs)
    assert f"failed: {MISSING_HEADER}" in console.getvalue()  # local mode tells the console
    assert cells_in(console.getvalue()) == [], console.getvalue()


@pytest.mark.parametrize("output", ["text", "json", "csv"])
def test_the_cli_says_the_header_is_missing_and_prints_no_cell(tmp_path: Path, output: str) -> None:
    """`clinic-events report` fails with the reason on stderr and no cell in any output."""
    source, invalid_rows = tmp_path / "events.csv", tmp_path / "invalid-rows.csv"
    source.write_bytes(HEADERLESS)
    result = cli(
        "report",
        str(source),
        "--format",
        output,
        "--progress",
        "--invalid-rows",
        str(invalid_rows),
    )
    assert result.returncode != 0
    assert MISSING_HEADER in result.stderr, result.stderr
    assert cells_in(result.stderr) == [], result.stderr
    assert cells_in(result.stdout) == [], result.stdout
    if invalid_rows.exists():
        assert cells_in(invalid_rows.read_text(encoding="latin-1")) == []

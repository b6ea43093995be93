"""The job store on a small, real volume (a tmpfs mounted for the test): a disk nearly full
stops new jobs, saying why; a disk that fills while a job's files are stored leaves its
report, and says exactly what is missing."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from bot.app import running
from bot.config import Settings
from bot.web.ops import STORE_CHECK
from tests.helpers import FORM_TYPE, TWO_WEEKS, UPLOAD_HEADER, form_head, form_tail
from tests.integration.helpers import CHANNEL, StartBot, finished_jobs, share
from tests.standin.slack import SlackStandIn

JOB_TIMEOUT_S = 30.0
NOT_KEPT = "The files of this report could not be kept (disk full)."


@pytest.fixture
def small_volume(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB file system of its own, so that filling it fills nothing else."""
    mount_point = tmp_path / "volume"
    mount_point.mkdir()
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
    )
    if made.returncode != 0:
        pytest.skip(
            "mounting a small tmpfs needs root or CAP_SYS_ADMIN, which this run lacks "
            f"({made.stderr.strip() or made.returncode})"
        )
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def fill(volume: Path, leave_bytes: int) -> None:
    """Take all but `leave_bytes` of the volume's free space."""
    free = os.statvfs(volume).f_bavail * os.statvfs(volume).f_frsize
    with (volume / "filler").open("wb") as filler:
        filler.write(b"\0" * max(free - leave_bytes, 0))


def many_bad_dates(rows: int) -> bytes:
    """A file whose invalid-rows.csv is large: every other row has a bad date."""
    lines = [UPLOAD_HEADER]
    for n in range(rows):
        date = "2024-01-02T10:00:00Z" if n % 2 else "not-a-date"
        lines.append(f"e{n},C{n % 9},P{n},TREATMENT_COMPLETED,{date},10.00,cleaning")
    return ("\n".join(lines) + "\n").encode()


async def test_a_nearly_full_disk_stops_new_jobs_saying_why(small_volume: Path) -> None:
    """Free space under STORE_MIN_FREE_MB: /health 503 "low on disk", an upload 507 in
    words; freed again, both come back."""
    settings = Settings(
        port=0,
        data_dir=small_volume / "data",
        store_min_free_bytes=8 * 1_048_576,  # more than the whole volume
        progress_interval_s=60.0,
    )
    async with (
        running(settings, console=io.StringIO()) as service,
        aiohttp.ClientSession(base_url=f"http://127.0.0.1:{service.port}") as http,
    ):
        async with http.get("/health") as response:
            health = (response.status, await response.json())
        async with http.post(
            "/api/upload",
            data=form_head("events.csv") + TWO_WEEKS + form_tail(),
            headers={"Content-Type": FORM_TYPE},
        ) as response:
            refused = (response.status, await response.json())
        store = service.jobs.store
        store.min_free_bytes = 0  # type: ignore[attr-defined]
        store._room_checked_at = float("-inf")  # type: ignore[attr-defined]
        await service.web_runner.app[STORE_CHECK].probe(store)
        async with http.get("/health") as response:
            assert response.status == 200
    assert health == (503, {"status": "degraded", "slack": "disabled", "store": "low on disk"})
    assert refused[0] == 507
    assert refused[1]["error"].startswith("The service's disk is nearly full, so it takes no")
    assert service.jobs.recent() == []


async def test_a_share_on_a_nearly_full_disk_is_told_to_the_sharer(
    small_volume: Path, slack: SlackStandIn, start_bot: StartBot
) -> None:
    """In Slack the person who shared the file is told, and nothing starts."""
    bot = await start_bot(data_dir=small_volume / "data", store_min_free_bytes=8 * 1_048_576)
    slack.add_file("F0FULL0001", "events.csv", TWO_WEEKS)
    await share(slack, "F0FULL0001")
    await slack.wait_for_call("chat.postEphemeral")
    [told] = slack.ephemerals
    assert told["channel"] == CHANNEL
    assert "disk is nearly full" in told["text"]
    assert bot.jobs.recent() == []


async def test_files_that_do_not_fit_leave_the_report_and_say_so(small_volume: Path) -> None:
    """The disk fills while a job's CSVs and chart are stored (the guard off): the job
    succeeds with its report, and every download says the files could not be kept, not
    that every row was valid or that the report is gone."""
    settings = Settings(
        port=0,
        data_dir=small_volume / "data",
        store_min_free_bytes=0,
        progress_interval_s=60.0,
    )
    data = many_bad_dates(150_000)
    async with (
        running(settings, console=io.StringIO()) as service,
        aiohttp.ClientSession(base_url=f"http://127.0.0.1:{service.port}") as http,
    ):
        fill(small_volume, leave_bytes=160 * 1024)
        async with http.post(
            "/api/upload",
            data=form_head("events.csv") + data + form_tail(),
            headers={"Content-Type": FORM_TYPE},
        ) as response:
            job_id = (await response.json())["job_id"]
        job = service.jobs.get(job_id)
        assert job is not None
        await asyncio.wait_for(job.done.wait(), JOB_TIMEOUT_S)
        async with http.get(f"/api/jobs/{job_id}") as response:
            answer = await response.json()
        downloads = {}
        for name in ("invalid-rows.csv", "weekly-report.csv", "chart.png"):
            async with http.get(f"/api/jobs/{job_id}/{name}") as response:
                downloads[name] = (response.status, (await response.json())["error"])
        with contextlib.suppress(FileNotFoundError):
            (small_volume / "filler").unlink()
    assert answer["status"] == "succeeded"
    assert answer["report"]["rows"]["invalid"] == 75_000
    assert downloads == {name: (404, NOT_KEPT) for name in downloads}


async def test_in_slack_the_summary_is_followed_by_what_could_not_be_kept(
    small_volume: Path, slack: SlackStandIn, start_bot: StartBot
) -> None:
    """The summary is posted, then one line in the thread that the files could not be kept;
    no file is uploaded."""
    bot = await start_bot(data_dir=small_volume / "data", store_min_free_bytes=0)
    slack.add_file("F0FULL0002", "events.csv", many_bad_dates(150_000))
    fill(small_volume, leave_bytes=160 * 1024)
    await share(slack, "F0FULL0002")
    [job] = await finished_jobs(bot)
    assert job.status == "succeeded"
    assert job.files_missing is not None
    start = next(m for m in slack.messages(CHANNEL) if "events.csv" in m["text"])
    thread = [m["text"] for m in slack.thread(CHANNEL, start["ts"])]
    assert thread[-1] == NOT_KEPT
    assert not slack.uploads

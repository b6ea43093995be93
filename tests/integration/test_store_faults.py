"""The embedded job store when its file or folder goes wrong, with real files: garbage,
a truncated or text file, flipped pages, a record this version cannot read, a newer schema,
a folder that cannot be written, and two serves on one DATA_DIR."""

from __future__ import annotations

import asyncio
import io
import json
import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from bot.app import running
from bot.config import Settings
from bot.store.sqlite import DB_FILE
from bot.web.ops import STORE_CHECK
from tests.helpers import FORM_TYPE, ROOT, TWO_WEEKS, form_head, form_tail
from tests.processes import serve_process

JOB_TIMEOUT_S = 30.0


def serve_once(data_dir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """`clinic-events serve` that is expected to stop by itself at start."""
    return subprocess.run(
        [sys.executable, "-m", "bot", "serve"],
        cwd=ROOT,
        env={"PATH": os.environ.get("PATH", ""), "PORT": "0", "DATA_DIR": str(data_dir), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def store_command(data_dir: Path, action: str) -> subprocess.CompletedProcess[str]:
    """`clinic-events store <action>`, reading DATA_DIR as serve does."""
    return subprocess.run(
        [sys.executable, "-m", "bot", "store", action],
        cwd=ROOT,
        env={"PATH": os.environ.get("PATH", ""), "DATA_DIR": str(data_dir)},
        capture_output=True,
        text=True,
        timeout=60,
    )


async def store_with_jobs(data_dir: Path, count: int) -> list[str]:
    """A DATA_DIR whose store holds `count` finished web jobs, made by the service itself."""
    settings = Settings(
        port=0, data_dir=data_dir, progress_interval_s=60.0, uploads_per_minute=1000
    )
    async with running(settings, console=io.StringIO()) as service:
        async with aiohttp.ClientSession(base_url=f"http://127.0.0.1:{service.port}") as http:
            ids = []
            for n in range(count):
                async with http.post(
                    "/api/upload",
                    data=form_head(f"events-{n}.csv") + TWO_WEEKS + form_tail(),
                    headers={"Content-Type": FORM_TYPE},
                ) as response:
                    ids.append((await response.json())["job_id"])
        for job_id in ids:
            job = service.jobs.get(job_id)
            assert job is not None
            await asyncio.wait_for(job.done.wait(), JOB_TIMEOUT_S)
    return ids


def one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith("clinic-events:")]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr, stderr
    return lines[0]


@pytest.mark.parametrize(
    "damage",
    ["garbage", "truncated", "text", "flipped pages"],
)
async def test_a_damaged_store_stops_the_start_with_one_line(tmp_path: Path, damage: str) -> None:
    """Whatever the damage, serve exits 1 with one line naming the file and what to do; no
    traceback; `store check` says it is damaged, `store quarantine` sets it aside and the
    next serve starts empty."""
    data_dir = tmp_path / "data"
    await store_with_jobs(data_dir, 20)
    path = data_dir / DB_FILE
    content = path.read_bytes()
    if damage == "garbage":
        path.write_bytes(os.urandom(len(content)))
    elif damage == "truncated":
        path.write_bytes(content[: len(content) // 3])
    elif damage == "text":
        path.write_text("event_id,clinic_id\nnot a database\n")
    else:
        page = 4096
        path.write_bytes(content[:page] + os.urandom(2 * page) + content[3 * page :])

    failed = serve_once(data_dir)
    assert failed.returncode == 1
    line = one_line(failed.stderr)
    assert str(path) in line
    assert "damaged" in line
    assert "store quarantine" in line

    check = store_command(data_dir, "check")
    assert check.returncode == 1
    assert "damaged" in check.stdout
    quarantine = store_command(data_dir, "quarantine")
    assert quarantine.returncode == 0
    kept = [p.name for p in data_dir.iterdir() if ".damaged-" in p.name]
    assert kept
    assert all(name.startswith(DB_FILE) for name in kept)
    async with serve_process({}, data_dir=data_dir) as started:
        assert started.events("service.started")


async def test_pages_damaged_while_running_make_health_say_so(tmp_path: Path) -> None:
    """A page corrupted under a running serve: reads answer 503 with Retry-After, not 500,
    and /health turns 503 "damaged"."""
    data_dir = tmp_path / "data"
    await store_with_jobs(data_dir, 30)
    settings = Settings(port=0, data_dir=data_dir, progress_interval_s=60.0)
    async with running(settings, console=io.StringIO()) as service:
        store = service.jobs.store

        def checkpoint() -> None:
            db = store._conn  # type: ignore[attr-defined]
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

        await store._run(checkpoint)  # type: ignore[attr-defined]
        path = data_dir / DB_FILE
        content = bytearray(path.read_bytes())
        content[4096 : 3 * 4096] = os.urandom(2 * 4096)
        with path.open("r+b") as raw:
            raw.write(content)
        await store._run(lambda: store._conn.execute("PRAGMA shrink_memory"))  # type: ignore[attr-defined]
        async with aiohttp.ClientSession(base_url=f"http://127.0.0.1:{service.port}") as http:
            async with http.get("/api/jobs") as response:
                listed = (response.status, response.headers.get("Retry-After"))
            check = service.web_runner.app[STORE_CHECK]
            await check.probe(store)
            async with http.get("/health") as response:
                health = (response.status, await response.json())
    assert listed == (503, "60")
    assert health[0] == 503
    assert health[1]["store"] == "damaged"


async def test_a_record_this_version_cannot_read_is_skipped_and_counted(tmp_path: Path) -> None:
    """An unknown status or a garbled record, even one left unfinished: the start goes on,
    /api/jobs lists the others, the metric counts the ones left out."""
    data_dir = tmp_path / "data"
    ids = await store_with_jobs(data_dir, 3)
    with sqlite3.connect(data_dir / DB_FILE) as db:
        db.execute("UPDATE jobs SET status = 'paused' WHERE id = ?", (ids[0],))
        db.execute(
            "UPDATE jobs SET status = 'running', record = '{\"id\": 1}' WHERE id = ?", (ids[1],)
        )
    settings = Settings(port=0, data_dir=data_dir, progress_interval_s=60.0)
    async with (
        running(settings, console=io.StringIO()) as service,
        aiohttp.ClientSession(base_url=f"http://127.0.0.1:{service.port}") as http,
    ):
        async with http.get("/api/jobs") as response:
            assert response.status == 200
            listed = [job["id"] for job in (await response.json())["jobs"]]
        async with http.get("/metrics") as response:
            metrics = await response.text()
    assert listed == [ids[2]]
    skipped = [
        line
        for line in metrics.splitlines()
        if line.startswith("clinic_events_store_records_skipped_total")
    ]
    assert skipped
    assert float(skipped[0].split()[-1]) >= 2


async def test_a_store_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    """A schema newer than the code: one line, exit 1, the file untouched."""
    data_dir = tmp_path / "data"
    await store_with_jobs(data_dir, 1)
    with sqlite3.connect(data_dir / DB_FILE) as db:
        db.execute("PRAGMA user_version = 99")
    failed = serve_once(data_dir)
    assert failed.returncode == 1
    assert "written by a newer clinic-events (schema 99" in one_line(failed.stderr)


async def test_a_data_dir_that_cannot_be_made_is_named(tmp_path: Path) -> None:
    """DATA_DIR under a plain file: one line naming the folder."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    failed = serve_once(blocker / "data")
    assert failed.returncode == 1
    line = one_line(failed.stderr)
    assert str(blocker / "data") in line


async def test_data_dir_and_its_files_are_private(tmp_path: Path) -> None:
    """DATA_DIR 0700, the database and its lock 0600."""
    data_dir = tmp_path / "data"
    await store_with_jobs(data_dir, 1)
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    for path in data_dir.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name


async def test_a_second_serve_on_one_data_dir_waits_then_stops_or_takes_over(
    tmp_path: Path,
) -> None:
    """While one serve holds DATA_DIR, a second stops after STORE_LOCK_WAIT_SECONDS saying
    who holds it; started while the first stops (a rolling restart), it waits and takes
    over."""
    data_dir = tmp_path / "data"
    async with serve_process({}, data_dir=data_dir) as first:
        refused = serve_once(data_dir, STORE_LOCK_WAIT_SECONDS="0.5")
        assert refused.returncode == 1
        line = one_line(refused.stderr)
        assert f"(pid {first.process.pid} on " in line
        assert "DATA_DIR is in use by another clinic-events serve" in line
        assert "scale-out mode" in line
        second = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "serve",
            cwd=ROOT,
            env={
                "PATH": os.environ.get("PATH", ""),
                "PORT": "0",
                "LOG_FORMAT": "json",
                "DATA_DIR": str(data_dir),
                "STORE_LOCK_WAIT_SECONDS": "30",
            },
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            assert (await next_event(second))["event"] == "store.waiting_for_lock"
            assert await first.stop() == 0
            assert (await next_event(second))["event"] == "service.started"
        finally:
            second.kill()
            await second.wait()


async def next_event(process: asyncio.subprocess.Process) -> dict[str, object]:
    assert process.stderr is not None
    while True:
        line = await asyncio.wait_for(process.stderr.readline(), 30)
        assert line, "the process ended"
        if line.startswith(b"{"):
            return json.loads(line)

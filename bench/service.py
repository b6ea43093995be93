"""The service end to end: a job through Slack (stand-in) and through the web upload.

Starts `clinic-events serve` as its own process, feeds it one file each way, and measures:
wall time from trigger to finished job, the server's peak RSS (VmHWM), and how long /health
takes to answer while the job runs (the event loop must stay free while the engine parses).
The baseline is the CLI engine on the same file, measured in this same run.

    python bench/service.py bench/.data/events-1000000.csv
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from tests.standin.slack import APP_TOKEN, BOT_TOKEN, SlackStandIn  # noqa: E402

HEALTH_EVERY_S = 0.1
POLL_EVERY_S = 0.1


async def start_serve(env: dict[str, str]) -> tuple[asyncio.subprocess.Process, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "serve",
        cwd=ROOT,
        env={
            "PATH": os.environ.get("PATH", ""),
            "PORT": "0",
            "LOG_FORMAT": "json",
            "LOG_LEVEL": "warning",
            "MAX_FILE_SIZE_MB": "4096",
            **env,
        },
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    # LOG_LEVEL=warning hides service.started, so find the port from /proc instead.
    url = await _listening_url(process.pid)
    return process, url


async def _listening_url(pid: int) -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        inodes = set()
        if not os.path.exists(f"/proc/{pid}/fd"):
            raise SystemExit("serve exited early")
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except FileNotFoundError:  # closed meanwhile
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # LISTEN
                return f"http://127.0.0.1:{int(fields[1].split(':')[1], 16)}"
        await asyncio.sleep(0.05)
    raise SystemExit("serve did not start listening")


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def watch_health(http: aiohttp.ClientSession, url: str, stop: asyncio.Event) -> list[float]:
    latencies = []
    while not stop.is_set():
        started = time.perf_counter()
        async with http.get(url + "/health") as response:
            await response.read()
        latencies.append(time.perf_counter() - started)
        await asyncio.sleep(HEALTH_EVERY_S)
    return latencies


async def wait_for_job(http: aiohttp.ClientSession, url: str, job_id: str | None) -> dict:
    while True:
        if job_id is None:
            async with http.get(url + "/api/jobs") as response:
                jobs = (await response.json())["jobs"]
            job_id = jobs[0]["id"] if jobs else None
        if job_id is not None:
            async with http.get(f"{url}/api/jobs/{job_id}") as response:
                job = await response.json()
            if job["status"] in ("succeeded", "failed"):
                return job
        await asyncio.sleep(POLL_EVERY_S)


async def timed_job(
    name: str,
    process: asyncio.subprocess.Process,
    url: str,
    trigger: Callable[[], Awaitable[str | None]],
) -> dict:
    """Run trigger() (it returns the job id when it knows it), wait for the job to finish,
    and watch /health meanwhile."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None)) as http:
        stop = asyncio.Event()
        health = asyncio.create_task(watch_health(http, url, stop))
        started = time.perf_counter()
        job = await wait_for_job(http, url, await trigger())
        wall = time.perf_counter() - started
        stop.set()
        latencies = await health
    return summary(name, job, wall, peak_rss_mib(process.pid), latencies)


async def via_upload(path: Path) -> dict:
    process, url = await start_serve({})

    async def upload() -> str:
        # curl streams the file from disk, as a browser would; the server never sees it whole
        curl = await asyncio.create_subprocess_exec(
            "curl",
            "-sS",
            "-F",
            f"file=@{path};type=text/csv",
            url + "/api/upload",
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await curl.communicate()
        return str(json.loads(out)["job_id"])

    try:
        return await timed_job("web upload", process, url, upload)
    finally:
        process.terminate()
        await process.wait()


async def via_slack(path: Path) -> dict:
    async with SlackStandIn() as slack:
        slack.add_file("F0BENCH01", path.name, path.read_bytes(), chunk_size=1 << 20)
        env = {
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_APP_TOKEN": APP_TOKEN,
            "SLACK_API_URL": slack.base_url,
        }
        process, url = await start_serve(env)

        async def share() -> None:
            await slack.send_event(slack.file_shared_event("F0BENCH01"))

        try:
            await slack.wait_for_connection(timeout=30)
            return await timed_job("Slack share", process, url, share)
        finally:
            process.terminate()
            await process.wait()


def summary(name: str, job: dict, wall_s: float, rss_mib: float, latencies: list[float]) -> dict:
    if job["status"] != "succeeded":
        raise SystemExit(f"{name}: job failed: {job['error']}")
    ordered = sorted(latencies)
    return {
        "name": name,
        "wall_s": wall_s,
        "peak_rss_mib": rss_mib,
        "health_p50_ms": statistics.median(ordered) * 1000,
        "health_max_ms": ordered[-1] * 1000,
        "health_samples": len(ordered),
        "report": job["report"],
    }


def engine_baseline(path: Path) -> tuple[float, dict]:
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "bot", "report", str(path), "--format", "json"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout
    return time.perf_counter() - started, json.loads(out)


def comparable(report: dict) -> dict:
    return {key: value for key, value in report.items() if key not in ("source", "currency")}


async def run(path: Path) -> int:
    size_mb = path.stat().st_size / 1e6
    print(f"\n== service end to end: {path.name}, {size_mb:,.0f} MB ==", flush=True)
    engine_s, engine_report = engine_baseline(path)
    print(f"{'CLI engine (baseline)':22s} {engine_s:7.2f} s")
    results = [await via_upload(path), await via_slack(path)]
    agree = True
    for result in results:
        same = comparable(result["report"]) == comparable(engine_report)
        agree &= same
        print(
            f"{result['name']:22s} {result['wall_s']:7.2f} s  {result['peak_rss_mib']:6.0f} MiB peak  "
            f"{result['wall_s'] / engine_s:4.2f}x the CLI  /health p50 {result['health_p50_ms']:.1f} ms, "
            f"max {result['health_max_ms']:.1f} ms over {result['health_samples']} requests  "
            f"report identical: {same}"
        )
    return 0 if agree else 1


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("file", type=Path)
    return asyncio.run(run(parser.parse_args().file))


if __name__ == "__main__":
    sys.exit(main())

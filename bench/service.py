"""The service end to end: a job through Slack (stand-in) and through the web upload, both
the page's way (reserve, then PUT the bytes) and as a multipart form.

Starts `clinic-events serve` as its own process for each job, feeds it the file each way, and
measures: wall time from trigger to the report (the job API says succeeded, or the summary is
in the Slack thread; the chart and the files follow it), the server's peak RSS (VmHWM), and
how long /health takes to answer while the job runs (the event loop must stay free while the
engine parses). The baseline is the CLI engine on the same file, run once per round just
before that round's service runs; each way's ratio is the median of its rounds' ratios.

    python -m bench.service bench/.data/events-1000000.csv [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp

from tests.standin.slack import APP_TOKEN, BOT_TOKEN, SlackStandIn

ROOT = Path(__file__).resolve().parent.parent

HEALTH_EVERY_S = 0.02
POLL_EVERY_S = 0.02  # until the job is listed
LONG_POLL_S = 5  # then each request waits for the job's status to change
SLACK_JOB_TIMEOUT_S = 1800
ROUNDS = 3


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
            "JOB_API_PER_MINUTE": "1000000",  # the bench polls the job API
            "DATA_DIR": tempfile.mkdtemp(prefix="clinic-events-bench-"),
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
        port = await asyncio.to_thread(_listening_port, pid)
        if port is not None:
            return f"http://127.0.0.1:{port}"
        await asyncio.sleep(0.05)  # polled: at LOG_LEVEL=warning no log line says it listens
    raise SystemExit("serve did not start listening")


def _listening_port(pid: int) -> int | None:
    """The port a socket of the process listens on, from /proc; None while there is none."""
    if not os.path.exists(f"/proc/{pid}/fd"):
        raise SystemExit("serve exited early")
    inodes = set()
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
            return int(fields[1].split(":")[1], 16)
    return None


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def probe_health(url: str) -> int:
    """Runs in a process of its own (`service.py --probe URL`): GET /health every
    HEALTH_EVERY_S until standard input closes, then print the latencies as JSON. Measured
    from outside, the bench's own work (parsing a 10 MB report, serving the Slack stand-in)
    cannot slow the figures down. It says "ready" once its first request is answered: its
    own start-up (an interpreter, on the same 2 cores) must not fall inside the time measured.
    """
    import http.client
    import select
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)
    connection.request("GET", "/health")
    connection.getresponse().read()
    print("ready", flush=True)
    latencies = []
    while not select.select([sys.stdin], [], [], HEALTH_EVERY_S)[0]:
        started = time.perf_counter()
        connection.request("GET", "/health")
        connection.getresponse().read()
        latencies.append(time.perf_counter() - started)
    json.dump(latencies, sys.stdout)
    return 0


@contextlib.asynccontextmanager
async def health_watched(url: str) -> AsyncIterator[list[float]]:
    """/health latencies while the body runs, in the list it yields (filled when the body ends)."""
    probe = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.service",
        "--probe",
        url,
        cwd=ROOT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert probe.stdout is not None
    if await probe.stdout.readline() != b"ready\n":
        raise SystemExit("the /health probe did not start")
    latencies: list[float] = []
    try:
        yield latencies
    finally:
        out, _ = await probe.communicate(b"stop")
        latencies += [float(latency) for latency in json.loads(out)]


async def wait_for_job(http: aiohttp.ClientSession, url: str, job_id: str | None) -> dict[str, Any]:
    """Follows the job as the page does: each request answered when its status changes."""
    seen = None
    while True:
        if job_id is None:
            async with http.get(url + "/api/jobs") as response:
                jobs = (await response.json())["jobs"]
            job_id = jobs[0]["id"] if jobs else None
        if job_id is not None:
            waiting: dict[str, str] = {"seen": seen, "wait_s": str(LONG_POLL_S)} if seen else {}
            async with http.get(f"{url}/api/jobs/{job_id}", params=waiting) as response:
                job: dict[str, Any] = await response.json()
            if job["status"] in ("succeeded", "failed"):
                return job
            seen = job["status"]
            continue
        await asyncio.sleep(POLL_EVERY_S)


async def timed_job(
    process: asyncio.subprocess.Process,
    url: str,
    job: Callable[[aiohttp.ClientSession], Awaitable[dict[str, Any]]],
) -> dict[str, Any]:
    """Run job() (it starts the job and returns once its result is out), watching /health
    meanwhile."""
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None)) as http,
        health_watched(url) as latencies,
    ):
        started = time.perf_counter()
        result = await job(http)
        wall = time.perf_counter() - started
    return {
        "wall_s": wall,
        "peak_rss_mib": peak_rss_mib(process.pid),
        "latencies": latencies,
        **result,
    }


async def via_upload(path: Path) -> dict[str, Any]:
    """A multipart form (`POST /api/upload`), as a script or a plain HTML form sends it."""
    process, url = await start_serve({})

    async def upload(http: aiohttp.ClientSession) -> dict[str, Any]:
        # curl streams the file from disk; the server never sees it whole
        return await finished_upload(
            http, url, ["-F", f"file=@{path};type=text/csv", url + "/api/upload"]
        )

    try:
        return await timed_job(process, url, upload)
    finally:
        process.terminate()
        await process.wait()


async def via_page(path: Path) -> dict[str, Any]:
    """The upload page's way: reserve a job (`POST /api/uploads`), then PUT the bytes, which
    the job reads as they arrive."""
    process, url = await start_serve({})
    size_bytes = (await asyncio.to_thread(path.stat)).st_size

    async def upload(http: aiohttp.ClientSession) -> dict[str, Any]:
        reservation = {"file_name": path.name, "size_bytes": size_bytes}
        async with http.post(url + "/api/uploads", json=reservation) as response:
            upload_url = (await response.json())["upload_url"]
        return await finished_upload(http, url, ["-T", str(path), url + upload_url])

    try:
        return await timed_job(process, url, upload)
    finally:
        process.terminate()
        await process.wait()


async def finished_upload(
    http: aiohttp.ClientSession, url: str, curl_args: list[str]
) -> dict[str, Any]:
    curl = await asyncio.create_subprocess_exec(
        "curl", "-sS", *curl_args, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await curl.communicate()
    job = await wait_for_job(http, url, str(json.loads(out)["job_id"]))
    if job["status"] != "succeeded":
        raise SystemExit(f"web upload: job failed: {job['error']}")
    return {"report": job["report"]}


async def via_slack(path: Path) -> dict[str, Any]:
    """A share, timed until the summary's weeks are in the thread (the chart and the files
    follow); compared by the weekly-report.csv posted after them (Slack jobs stay out of
    the job API)."""
    async with SlackStandIn() as slack:
        content = await asyncio.to_thread(path.read_bytes)
        slack.add_file("F0BENCH01", path.name, content, chunk_size=1 << 20)
        env = {
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_APP_TOKEN": APP_TOKEN,
            "SLACK_API_URL": slack.base_url,
        }
        process, url = await start_serve(env)

        async def share(http: aiohttp.ClientSession) -> dict[str, Any]:
            await slack.send_event(slack.file_shared_event("F0BENCH01"))
            await slack.wait_for_call(
                "chat.postMessage",
                lambda call: any(
                    block.get("type") == "table" for block in call.args.get("blocks") or []
                ),
                timeout=SLACK_JOB_TIMEOUT_S,
            )
            return {}

        try:
            await slack.wait_for_connection(timeout=30)
            result = await timed_job(process, url, share)
            # The files follow the summary (the chart is drawn after it); not timed.
            await slack.wait_for_call(
                "chat.update",
                lambda call: "see thread" in str(call.args.get("text", "")),
                timeout=SLACK_JOB_TIMEOUT_S,
            )
            [csv] = [
                upload["content"]
                for upload in slack.uploads.values()
                if upload["filename"] == "weekly-report.csv"
            ]
            return {**result, "csv": csv.decode()}
        finally:
            process.terminate()
            await process.wait()


def percentile(ordered: list[float], fraction: float) -> float:
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def cli_wall_s(path: Path) -> float:
    """The CLI's wall time on the file, whole process."""
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "bot", "report", str(path), "--format", "json"],
        cwd=ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


def cli_outputs(path: Path) -> tuple[dict[str, Any], str]:
    """The CLI's JSON report and CSV of the file (not timed): what every path must give."""
    command = [sys.executable, "-m", "bot", "report", str(path)]
    reports = [
        subprocess.run(
            [*command, "--format", form], cwd=ROOT, check=True, capture_output=True, text=True
        ).stdout
        for form in ("json", "csv")
    ]
    return json.loads(reports[0]), reports[1]


def comparable(report: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in report.items() if key not in ("source", "currency")}


WAYS: dict[str, Callable[[Path], Awaitable[dict[str, Any]]]] = {
    "web upload (page)": via_page,
    "web upload (form)": via_upload,
    "Slack share": via_slack,
}


async def run(path: Path, rounds: int, summary: Path | None = None) -> int:
    """`rounds` rounds, each the CLI once and then each way through the service once: a way's
    ratio in a round is against the CLI run just before it (the machine's speed drifts over
    minutes), and the ratio reported is the median of its rounds'."""
    size_mb = (await asyncio.to_thread(path.stat)).st_size / 1e6
    print(
        f"\n== service end to end: {path.name}, {size_mb:,.0f} MB, {rounds} rounds ==", flush=True
    )
    engine_report, engine_csv = cli_outputs(path)
    cli_walls: list[float] = []
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in WAYS}
    agree = True
    for _ in range(rounds):
        cli_walls.append(cli_wall_s(path))
        for name, way in WAYS.items():
            result = await way(path)
            if "report" in result:
                same = comparable(result["report"]) == comparable(engine_report)
            else:
                same = result["csv"] == engine_csv
            agree &= same
            results[name].append({**result, "ratio": result["wall_s"] / cli_walls[-1]})
    print(f"{'CLI engine (baseline)':22s} {statistics.median(cli_walls):7.2f} s")
    figures: dict[str, float] = {}  # for bench/run.py's check of the targets
    worst_p99 = 0.0
    for name, runs in results.items():
        latencies = sorted(latency for run in runs for latency in run["latencies"])
        ratios = [run["ratio"] for run in runs]
        ratio, p99 = statistics.median(ratios), percentile(latencies, 0.99)
        figures[f"{name} / CLI"] = ratio
        worst_p99 = max(worst_p99, p99)
        print(
            f"{name:22s} {statistics.median(run['wall_s'] for run in runs):7.2f} s  "
            f"{max(run['peak_rss_mib'] for run in runs):6.0f} MiB peak  "
            f"{ratio:4.2f}x the CLI (rounds {min(ratios):.2f}-{max(ratios):.2f})  "
            f"/health p50 {statistics.median(latencies) * 1000:.1f} ms, "
            f"p99 {p99 * 1000:.1f} ms, max {latencies[-1] * 1000:.1f} ms "
            f"over {len(latencies)} requests"
        )
    print(f"reports identical to the CLI's on every path and round: {agree}")
    if summary is not None:
        figures["/health p99 during the jobs, ms"] = worst_p99 * 1000
        await asyncio.to_thread(summary.write_text, json.dumps(figures))
    return 0 if agree else 1


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("file", type=Path, nargs="?")
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="default: %(default)s")
    parser.add_argument("--summary", type=Path, help="also write the ratios here, as JSON")
    parser.add_argument("--probe", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe:
        return probe_health(args.probe)
    if args.file is None:
        parser.error("give the CSV file to send through the service")
    return asyncio.run(run(args.file, args.rounds, args.summary))


if __name__ == "__main__":
    sys.exit(main())

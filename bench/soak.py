"""A short soak of scale-out: many shares through one `serve` and two `worker` processes over
SQS, DynamoDB and S3 (moto's server on loopback) and the Slack stand-in.

Measures jobs per minute, the time from each share to its summary (the start message
rewritten to "see thread": p50, p95, max), takeovers and failures. Every job must succeed.

    python -m bench.soak bench/.data/events-1000000.csv --jobs 50 --workers 2
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from moto.server import ThreadedMotoServer

from tests.aws import create_scale_out
from tests.processes import serve_process, wait_until
from tests.standin.slack import APP_TOKEN, BOT_TOKEN, SlackStandIn

SOAK_TIMEOUT_S = 3600


def aws_environment(endpoint: str, scratch: Path) -> None:
    """The standard AWS variables, pointing at moto, for boto3 here and in the processes."""
    os.environ.update(
        {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "soak",
            "AWS_SECRET_ACCESS_KEY": "soak",
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_CONFIG_FILE": str(scratch / "no-aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(scratch / "no-aws-credentials"),
            "AWS_EC2_METADATA_DISABLED": "true",
        }
    )


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


async def soak(path: Path, jobs: int, workers: int) -> int:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    content = await asyncio.to_thread(path.read_bytes)
    with tempfile.TemporaryDirectory() as scratch:
        aws_environment(f"http://{host}:{port}", Path(scratch))
        resources = create_scale_out(visibility_timeout_s=180)
        async with SlackStandIn() as slack:
            for n in range(jobs):
                slack.add_file(f"F0SOAK{n:04d}", f"soak-{n:03d}.csv", content, chunk_size=1 << 20)
            env = {
                **resources.env,
                "SLACK_BOT_TOKEN": BOT_TOKEN,
                "SLACK_APP_TOKEN": APP_TOKEN,
                "SLACK_API_URL": slack.base_url,
                "JOB_CONCURRENCY": "1",
                "MAX_FILE_SIZE_MB": "4096",
            }
            async with contextlib.AsyncExitStack() as stack:
                await stack.enter_async_context(serve_process(env))
                await slack.wait_for_connection()
                running = [
                    await stack.enter_async_context(serve_process(env, role="worker"))
                    for _ in range(workers)
                ]
                loop = asyncio.get_running_loop()
                shared_at = {}
                started = time.perf_counter()
                for n in range(jobs):
                    shared_at[f"soak-{n:03d}.csv"] = loop.time()
                    await slack.send_event(slack.file_shared_event(f"F0SOAK{n:04d}"))

                def ended() -> int:
                    return sum(len(worker.events("job.finished")) for worker in running)

                await wait_until(running, lambda: ended() >= jobs, SOAK_TIMEOUT_S)
                wall_s = time.perf_counter() - started
            finished = [line for worker in running for line in worker.events("job.finished")]
            takeovers = sum(len(worker.events("worker.took_over")) for worker in running)
            latencies = []
            for name, at in shared_at.items():
                outcome = next(
                    call.at
                    for call in slack.calls_to("chat.update")
                    if name in str(call.args.get("text", "")) and "see thread" in call.args["text"]
                )
                latencies.append(outcome - at)
    moto.stop()
    failed = [line for line in finished if line["status"] != "succeeded"]
    per_worker = [len(worker.events("job.finished")) for worker in running]
    size_mb = len(content) / 1e6
    print(f"\n== scale-out soak: {jobs} shares of {path.name} ({size_mb:,.0f} MB) ==")
    print(f"serve: 1, workers: {workers} x JOB_CONCURRENCY 1; jobs per worker {per_worker}")
    print(f"wall {wall_s:.1f} s, {jobs / wall_s * 60:.1f} jobs per minute")
    print(
        f"share to summary: p50 {statistics.median(latencies):.1f} s, "
        f"p95 {percentile(latencies, 0.95):.1f} s, max {max(latencies):.1f} s"
    )
    print(f"takeovers {takeovers}, failed {len(failed)}")
    return 1 if failed or len(finished) != jobs else 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("path", type=Path)
    parser.add_argument("--jobs", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    return asyncio.run(soak(args.path, args.jobs, args.workers))


if __name__ == "__main__":
    sys.exit(main())

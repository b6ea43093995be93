"""Jobs that survive restarts: `clinic-events serve` killed with SIGKILL and started again on
the same DATA_DIR, against the Slack stand-in."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp

from tests.helpers import TWO_WEEKS
from tests.integration.helpers import SAMPLE, share, slack_env, start_and_thread
from tests.processes import serve_process
from tests.standin.slack import SlackStandIn

# The sample in 8 KiB pieces 50 ms apart: it takes ~2 s to download.
SLOW_CHUNK_BYTES, SLOW_CHUNK_DELAY_S = 8 * 1024, 0.05


def edits_of(slack: SlackStandIn, ts: str) -> list[str]:
    return [
        call.args.get("text", "") for call in slack.calls_to("chat.update") if call.args["ts"] == ts
    ]


async def test_a_job_killed_mid_way_finishes_in_its_thread_after_a_restart(tmp_path: Path) -> None:
    """SIGKILL while the file downloads; started again, the job runs from the start in the
    same thread (attempt 2 of 3), with one summary and one set of files; Slack's
    redelivery of the share after the restart starts nothing."""
    async with SlackStandIn() as slack:
        slack.add_file(
            "F0RESTART1",
            "restart.csv",
            SAMPLE,
            chunk_size=SLOW_CHUNK_BYTES,
            chunk_delay_s=SLOW_CHUNK_DELAY_S,
        )
        async with serve_process(slack_env(slack), data_dir=tmp_path) as first:
            await slack.wait_for_connection()
            await share(slack, "F0RESTART1")
            await first.wait_event("job.started", attempt=1)
            await slack.wait_for_call("download")
            await first.kill()
        async with serve_process(slack_env(slack), data_dir=tmp_path) as second:
            await slack.wait_for_connection(count=2)
            recovered = await second.wait_event("job.recovered")
            finished = await second.wait_event("job.finished", timeout=60)
            assert finished["status"] == "succeeded"
            assert finished["attempt"] == 2
            assert recovered["job_id"] == finished["job_id"]
            retry = await slack.send_event(slack.file_shared_event("F0RESTART1"), retry_attempt=1)
            await slack.wait_ack(retry)
            await second.wait_event("share.duplicate")
            await slack.wait_for_call("files.completeUploadExternal")
            assert await second.stop() == 0

        start, thread = start_and_thread(slack, "restart.csv")
        progress, *replies = thread
        assert any("attempt 2 of 3" in text for text in edits_of(slack, progress["ts"]))
        assert "100%" in progress["text"]
        summaries = [m for m in replies if m.get("blocks")]
        files = [m for m in replies if m.get("files")]
        assert len(summaries) == 2
        assert len(files) == 1
        assert "see thread" in start["text"]
        assert len(slack.calls_to("download")) == 2  # read again from the start
        assert second.events("job.started")[0]["attempt"] == 2


async def test_a_job_killed_in_every_attempt_fails_after_three(tmp_path: Path) -> None:
    """Killed during each of its three attempts, the job fails at the next start, saying so
    in its thread."""
    async with SlackStandIn() as slack:
        slack.add_file("F0KILLED01", "killed.csv", SAMPLE, chunk_size=4 * 1024, chunk_delay_s=0.1)
        env = slack_env(slack)
        for attempt in (1, 2, 3):
            async with serve_process(env, data_dir=tmp_path) as service:
                await slack.wait_for_connection(count=attempt)
                if attempt == 1:
                    await share(slack, "F0KILLED01")
                await service.wait_event("job.started", attempt=attempt)
                await service.kill()
        async with serve_process(env, data_dir=tmp_path) as last:
            finished = await last.wait_event("job.finished")
            assert finished["status"] == "failed"
            assert "could not be finished after 3 attempts" in finished["error"]
            await last.stop()
        start, [progress, *_] = start_and_thread(slack, "killed.csv")
        assert "could not be finished after 3 attempts" in json.dumps(progress)
        assert "could not be processed" in start["text"]


async def test_the_job_api_answers_for_jobs_finished_before_a_restart(tmp_path: Path) -> None:
    """A web upload's report and chart are still there after SIGKILL and a restart; an upload
    cut off by the kill fails saying it must be sent again."""
    async with serve_process({}, data_dir=tmp_path) as first, aiohttp.ClientSession() as http:
        form = aiohttp.FormData()
        form.add_field("file", TWO_WEEKS, filename="kept.csv", content_type="text/csv")
        async with http.post(first.url + "api/upload", data=form) as response:
            job_id = (await response.json())["job_id"]
        await first.wait_event("job.finished", job_id=job_id)
        async with http.post(
            first.url + "api/uploads", json={"file_name": "cut.csv", "size_bytes": 10**6}
        ) as response:
            cut = await response.json()
        sending = asyncio.create_task(_trickle(http, first.url + cut["upload_url"][1:]))
        await first.wait_event("job.started", job_id=cut["job_id"])
        await first.kill()
        sending.cancel()

    async with serve_process({}, data_dir=tmp_path) as second, aiohttp.ClientSession() as http:
        async with http.get(f"{second.url}api/jobs/{job_id}") as response:
            kept = await response.json()
        assert kept["status"] == "succeeded"
        assert [week["revenue"] for week in kept["report"]["weeks"]] == ["100.50", "20.00"]
        assert kept["display"]["weeks"][0]["label"] == "1–7 Jan 2024"
        async with http.get(f"{second.url}api/jobs/{job_id}/chart.png") as response:
            assert response.status == 200
            assert (await response.read()).startswith(b"\x89PNG")
        await second.wait_event("job.finished", job_id=cut["job_id"])
        async with http.get(f"{second.url}api/jobs/{cut['job_id']}") as response:
            failed = await response.json()
        assert failed["status"] == "failed"
        assert failed["error"] == "interrupted by a restart; please upload the file again"


async def _trickle(http: aiohttp.ClientSession, url: str) -> None:
    """A body that never ends: the first rows, then nothing."""

    async def body() -> Any:
        yield TWO_WEEKS
        await asyncio.Event().wait()

    async with http.put(url, data=body()):
        pass

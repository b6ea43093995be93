"""`clinic-events serve` as a real process: starts, reports health, stops on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp

from tests.conftest import ROOT
from tests.standin.slack import APP_TOKEN, BOT_TOKEN, SlackStandIn

STARTUP_TIMEOUT_S = 30


@asynccontextmanager
async def serve(
    env: dict[str, str],
) -> AsyncIterator[tuple[asyncio.subprocess.Process, str, list[dict]]]:
    """The service in a subprocess on a free port; yields it, its URL and its log lines so far."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "serve",
        cwd=ROOT,
        env={"PATH": os.environ.get("PATH", ""), "PORT": "0", "LOG_FORMAT": "json", **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    lines: list[dict] = []
    try:
        async with asyncio.timeout(STARTUP_TIMEOUT_S):
            while True:
                raw = await process.stderr.readline()
                assert raw, f"serve exited early: {lines}"
                line = json.loads(raw)
                lines.append(line)
                if line["event"] == "service.started":
                    break
        yield process, line["url"], lines
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def stop(process: asyncio.subprocess.Process, lines: list[dict]) -> int:
    assert process.stderr is not None
    process.send_signal(signal.SIGTERM)
    async with asyncio.timeout(STARTUP_TIMEOUT_S):
        rest = await process.stderr.read()
        code = await process.wait()
    lines.extend(json.loads(raw) for raw in rest.splitlines() if raw.startswith(b"{"))
    return code


async def test_local_mode_serves_health_and_stops_cleanly_on_sigterm() -> None:
    """No tokens: the web server runs, /health says Slack is disabled, SIGTERM exits 0."""
    async with serve({}) as (process, url, lines), aiohttp.ClientSession() as http:
        assert lines[-1]["mode"] == "local"
        async with http.get(url + "health") as response:
            assert response.status == 200
            assert await response.json() == {"status": "ok", "slack": "disabled", "store": "ok"}
        assert await stop(process, lines) == 0
    assert lines[-1]["event"] == "service.stopped"


async def test_slack_mode_connects_through_slack_api_url() -> None:
    """With both tokens and SLACK_API_URL at the stand-in, the real socket connects."""
    async with SlackStandIn() as slack:
        env = {
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_APP_TOKEN": APP_TOKEN,
            "SLACK_API_URL": slack.base_url,
        }
        async with serve(env) as (process, url, lines), aiohttp.ClientSession() as http:
            await slack.wait_for_connection()
            async with http.get(url + "health") as response:
                assert await response.json() == {
                    "status": "ok",
                    "slack": "connected",
                    "store": "ok",
                }
            help_request = await slack.send_command("help")
            await slack.wait_ack(help_request)
            assert await stop(process, lines) == 0
        logged = json.dumps(lines)
        assert BOT_TOKEN not in logged and APP_TOKEN not in logged


async def test_a_bad_setting_stops_startup_with_a_message_naming_it() -> None:
    """Only one token: exit 2 and a one-line message that says which is missing."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "serve",
        cwd=ROOT,
        env={"PATH": os.environ.get("PATH", ""), "SLACK_BOT_TOKEN": BOT_TOKEN},
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(process.communicate(), STARTUP_TIMEOUT_S)
    assert process.returncode == 2
    assert b"SLACK_APP_TOKEN is missing" in stderr
    assert BOT_TOKEN.encode() not in stderr

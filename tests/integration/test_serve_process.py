"""`clinic-events serve` as a real process: starts, reports health, stops on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import aiohttp

from tests.helpers import ROOT
from tests.processes import STARTUP_TIMEOUT_S, serve_process
from tests.standin.slack import APP_TOKEN, BOT_TOKEN, SlackStandIn


async def test_local_mode_serves_health_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    """No tokens: the web server runs, /health says Slack is disabled, SIGTERM exits 0."""
    async with (
        serve_process({}, data_dir=tmp_path) as service,
        aiohttp.ClientSession() as http,
    ):
        assert service.lines[-1]["mode"] == "local"
        assert service.lines[-1]["event_loop"] == "uvloop"
        async with http.get(service.url + "health") as response:
            assert response.status == 200
            assert await response.json() == {"status": "ok", "slack": "disabled", "store": "ok"}
        assert await service.stop() == 0
    assert service.lines[-1]["event"] == "service.stopped"
    assert (tmp_path / "jobs.sqlite3").exists()


async def test_slack_mode_connects_through_slack_api_url(tmp_path: Path) -> None:
    """With both tokens and SLACK_API_URL at the stand-in, the real socket connects."""
    async with SlackStandIn() as slack:
        env = {
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_APP_TOKEN": APP_TOKEN,
            "SLACK_API_URL": slack.base_url,
        }
        async with (
            serve_process(env, data_dir=tmp_path) as service,
            aiohttp.ClientSession() as http,
        ):
            await slack.wait_for_connection()
            async with http.get(service.url + "health") as response:
                assert await response.json() == {
                    "status": "ok",
                    "slack": "connected",
                    "store": "ok",
                }
            help_request = await slack.send_command("help")
            await slack.wait_ack(help_request)
            assert await service.stop() == 0
        logged = json.dumps(service.lines)
        assert BOT_TOKEN not in logged
        assert APP_TOKEN not in logged


async def failed_start(env: dict[str, str]) -> tuple[int | None, bytes]:
    """`clinic-events serve` expected to stop during start-up: its exit code and stderr."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "serve",
        cwd=ROOT,
        env={"PATH": os.environ.get("PATH", ""), **env},
        stderr=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.DEVNULL,
    )
    _, stderr = await asyncio.wait_for(process.communicate(), STARTUP_TIMEOUT_S)
    return process.returncode, stderr


async def test_a_bad_setting_stops_startup_with_a_message_naming_it() -> None:
    """Only one token: exit 2 and a one-line message that says which is missing."""
    returncode, stderr = await failed_start({"SLACK_BOT_TOKEN": BOT_TOKEN})
    assert returncode == 2
    assert b"SLACK_APP_TOKEN is missing" in stderr
    assert BOT_TOKEN.encode() not in stderr


async def test_a_taken_port_stops_startup_with_one_clear_line(tmp_path: Path) -> None:
    """Another process holds the port: exit 1 and one line saying so, nothing after it (no
    session or store left open and complained about)."""
    holder = await asyncio.start_server(lambda reader, writer: None, "127.0.0.1", 0)
    port = holder.sockets[0].getsockname()[1]
    try:
        returncode, stderr = await failed_start(
            {"PORT": str(port), "HOST": "127.0.0.1", "DATA_DIR": str(tmp_path)}
        )
    finally:
        holder.close()
        await holder.wait_closed()
    assert returncode == 1
    lines = stderr.decode().strip().splitlines()
    assert lines[-1].startswith("clinic-events: cannot start:")
    assert "address already in use" in lines[-1]
    assert not any("Unclosed" in line or "Traceback" in line for line in lines)

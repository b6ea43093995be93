"""`clinic-events serve` and `clinic-events worker` as real processes, for tests and the bench.

Each runs on a free port with JSON logs on stderr, read continuously (a full pipe would
stall the process) into `lines`; a test waits for a log event rather than a clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
STARTUP_TIMEOUT_S = 30.0


@dataclass
class Process:
    process: asyncio.subprocess.Process
    lines: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""
    _changed: asyncio.Event = field(default_factory=asyncio.Event)
    _reader: asyncio.Task[None] | None = None

    async def _read(self) -> None:
        assert self.process.stderr is not None
        while raw := await self.process.stderr.readline():
            if raw.startswith(b"{"):
                self.lines.append(json.loads(raw))
                self._changed.set()
        self._changed.set()

    async def wait_for(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 30.0
    ) -> dict[str, Any]:
        """The first log line (from the start) for which predicate holds."""
        async with asyncio.timeout(timeout):
            while True:
                for line in self.lines:
                    if predicate(line):
                        return line
                if self._reader is not None and self._reader.done():
                    raise AssertionError(f"exited before that was logged: {self.lines[-5:]}")
                self._changed.clear()
                await self._changed.wait()

    async def wait_event(self, event: str, timeout: float = 30.0, **fields: Any) -> dict[str, Any]:
        return await self.wait_for(
            lambda line: (
                line.get("event") == event
                and all(line.get(key) == value for key, value in fields.items())
            ),
            timeout,
        )

    def events(self, event: str) -> list[dict[str, Any]]:
        return [line for line in self.lines if line.get("event") == event]

    async def kill(self) -> None:
        """SIGKILL: no shutdown, no goodbye; whatever was running stays as it was."""
        if self.process.returncode is None:
            self.process.kill()
        await self.process.wait()
        if self._reader is not None:
            await self._reader

    async def stop(self, timeout: float = STARTUP_TIMEOUT_S) -> int:
        """SIGTERM, and the exit code once it has shut down."""
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(timeout):
            code = await self.process.wait()
            if self._reader is not None:
                await self._reader
        return code


@contextlib.asynccontextmanager
async def serve_process(
    env: Mapping[str, str], *, role: str = "serve", data_dir: Path | None = None
) -> AsyncIterator[Process]:
    """The service (or a worker) in a subprocess; yields once it has logged service.started."""
    full_env = {
        "PATH": os.environ.get("PATH", ""),
        "PORT": "0",
        "LOG_FORMAT": "json",
        **({"DATA_DIR": str(data_dir)} if data_dir is not None else {}),
        **env,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        role,
        cwd=ROOT,
        env=full_env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    running = Process(process)
    running._reader = asyncio.create_task(running._read())
    try:
        started = await running.wait_event("service.started", STARTUP_TIMEOUT_S)
        running.url = started["url"]
        yield running
    finally:
        await running.kill()


async def wait_until(
    processes: list[Process], condition: Callable[[], bool], timeout: float = 60.0
) -> None:
    """Until condition() holds, re-checked whenever any of the processes logs a line."""
    async with asyncio.timeout(timeout):
        while True:
            for process in processes:
                process._changed.clear()
            if condition():
                return
            waits = [asyncio.ensure_future(process._changed.wait()) for process in processes]
            try:
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for wait in waits:
                    wait.cancel()

"""One `serve` per DATA_DIR: an exclusive lock on DATA_DIR/serve.lock for the process's life.

Two serves on one volume (a rolling deploy that starts the new one first) would each take up
the other's live jobs as "left by a restart". So a serve takes the lock before it reads the
store, waits up to STORE_LOCK_WAIT_SECONDS for an old one to let go, and otherwise stops
saying who holds it. The kernel drops an flock when its process ends, however it ends, so a
killed serve never leaves a stale lock. The file says who holds it (pid and host), for the
message only.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import socket
import time
from pathlib import Path

import structlog

from bot.errors import StoreInUseError, StoreUnwritableError

log = structlog.get_logger("bot.store")

LOCK_FILE = "serve.lock"
RETRY_EVERY_S = 0.25


class DataDirLock:
    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / LOCK_FILE
        self._fd: int | None = None

    async def acquire(self, wait_s: float) -> None:
        """Hold the lock, waiting up to wait_s for another serve to let go."""
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as error:
            raise StoreUnwritableError(
                f"DATA_DIR {self.path.parent} cannot be used: {error.strerror or error} (the "
                "service needs to create and write it)"
            ) from None
        deadline = time.monotonic() + wait_s
        waited = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not waited:
                    log.info("store.waiting_for_lock", holder=_holder(fd), wait_s=wait_s)
                    waited = True
                if time.monotonic() >= deadline:
                    holder = _holder(fd)
                    os.close(fd)
                    raise StoreInUseError(
                        f"DATA_DIR is in use by another clinic-events serve ({holder}); for "
                        "several instances use scale-out mode (README)"
                    ) from None
                await asyncio.sleep(RETRY_EVERY_S)  # the holder's exit is not announced
        with contextlib.suppress(OSError):  # who holds it is for messages only (a full disk)
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()} {socket.gethostname()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)  # closing drops the flock
            self._fd = None


def _holder(fd: int) -> str:
    try:
        pid, _, host = os.pread(fd, 300, 0).decode(errors="replace").strip().partition(" ")
    except OSError:
        return "its pid unknown"
    return f"pid {pid} on {host}" if pid else "its pid unknown"

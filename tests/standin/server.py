"""The stand-in's server and its record: one aiohttp app on 127.0.0.1, port 0, in the test's
own event loop, and every request it answers, kept as a `Call`.

Waiting is event-driven: `Recorder.changed()` wakes every waiter, which re-checks its
condition, under a timeout. Failures a test asks for (`fail_next`) are queued here too, by
the method they replace the answer of.
"""

from __future__ import annotations

import asyncio
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

Answer = tuple[dict[str, Any], int, dict[str, str]]  # JSON body, HTTP status, headers


@dataclass
class Call:
    """One request the stand-in received."""

    method: str  # Web API method ("chat.update"), or "download", "upload", "response_url"
    args: dict[str, Any]  # query + form + JSON body; JSON-string values (blocks, files) decoded
    status: int  # the HTTP status the stand-in answered
    authorization: str | None  # the Authorization header as received
    at: float  # loop.time() when received


@dataclass(frozen=True)
class Failure:
    status: int
    retry_after: int
    error: str

    def answer(self) -> Answer:
        """The failure as Slack sends it: 429s carry Retry-After."""
        headers = {"Retry-After": str(self.retry_after)} if self.status == 429 else {}
        return error(self.error), self.status, headers


def error(code: str, **extra: Any) -> dict[str, Any]:
    """A Web API refusal: {"ok": false, "error": code, ...}."""
    return {"ok": False, "error": code, **extra}


def bearer(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer ...` header."""
    if authorization and authorization[:7].lower() == "bearer ":
        return authorization[7:].strip()
    return None


def int_arg(args: Mapping[str, Any], key: str) -> int | None:
    try:
        return int(args[key])
    except (KeyError, TypeError, ValueError):
        return None


class Recorder:
    """Every call received, the failures still to be given, and the wake-up for waiters."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self._failures: dict[str, deque[Failure]] = {}
        # Replaced on every change: a waiter holds the current one and re-checks when it fires.
        # An Event (not a Condition) so plain, synchronous setters can wake waiters too.
        self._change = asyncio.Event()

    def record(self, call: Call) -> None:
        self.calls.append(call)
        self.changed()

    def changed(self) -> None:
        self._change.set()
        self._change = asyncio.Event()

    def calls_to(self, method: str) -> list[Call]:
        return [call for call in self.calls if call.method == method]

    async def wait_until(self, predicate: Callable[[], bool], timeout: float = 10) -> None:
        """Returns once predicate() is true; re-checked on every recorded call or state change."""
        try:
            async with asyncio.timeout(timeout):
                while not predicate():
                    await self._change.wait()
        except TimeoutError:
            raise TimeoutError(
                f"condition still false after {timeout}s; calls seen: {self.summary()}"
            ) from None

    async def wait_for_call(
        self,
        method: str,
        predicate: Callable[[Call], bool] | None = None,
        *,
        count: int = 1,
        timeout: float = 10,
    ) -> list[Call]:
        """Waits for at least `count` calls to `method` matching `predicate`, and returns them all."""

        def matching() -> list[Call]:
            return [c for c in self.calls_to(method) if predicate is None or predicate(c)]

        try:
            await self.wait_until(lambda: len(matching()) >= count, timeout)
        except TimeoutError:
            which = f"{method} matching the predicate" if predicate else method
            raise TimeoutError(
                f"wanted {count} call(s) to {which} within {timeout}s, got {len(matching())}; "
                f"calls seen: {self.summary()}"
            ) from None
        return matching()

    def summary(self) -> str:
        """The calls seen so far, counted by method and status, for a failure's message."""
        if not self.calls:
            return "none"
        counts = Counter(f"{c.method} {c.status}" for c in self.calls)
        return ", ".join(f"{what} ×{n}" if n > 1 else what for what, n in counts.items())

    def fail_next(
        self,
        method: str,
        *,
        status: int = 429,
        retry_after: int = 1,
        error: str = "ratelimited",
        count: int = 1,
    ) -> None:
        """The next `count` calls to `method` fail: HTTP `status` with {"ok": false, "error"}.

        429 answers carry a Retry-After header; status=200 is a Slack-style error answer.
        `method` may be a Web API method, "download" or "upload".
        """
        queue = self._failures.setdefault(method, deque())
        queue.extend([Failure(status, retry_after, error)] * count)

    def take_failure(self, method: str) -> Failure | None:
        queue = self._failures.get(method)
        return queue.popleft() if queue else None


class Server:
    """The aiohttp app on loopback: routes from each part of the stand-in, port 0."""

    def __init__(self) -> None:
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def start(self, routes: list[web.RouteDef]) -> None:
        app = web.Application(client_max_size=1 << 30)
        app.add_routes(routes)
        # A short shutdown timeout: a test that closes mid slow download should not wait 60 s.
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.25)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def now() -> float:
    """The loop's clock, which `Call.at` holds."""
    return asyncio.get_running_loop().time()

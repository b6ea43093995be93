"""How long an upload may take: three rules, counted in the client's time only.

A client that trickles a byte now and then must not keep a connection, an upload slot and a
half-read job open for hours. So an upload is closed (408) when, in the time the service
spends waiting for its bytes:

- nothing arrives for UPLOAD_IDLE_TIMEOUT_SECONDS (idle), or
- it has been sending for more than UPLOAD_MAX_SECONDS since its first byte (overall), or
- after its first UPLOAD_RATE_WINDOW_SECONDS, fewer than UPLOAD_MIN_BYTES_PER_SECOND arrived
  on average over the last window (rate; 0 turns this rule off).

The plan: the clock runs only while a read waits on the client. Time the service is not
reading (the job waits for a slot, S3 takes a part, the job's queue is full) stops it, so
the service's own slowness is never held against the client. Before each read the time
until the first rule would break if nothing more arrived is worked out exactly, and the read
waits that long at most: no timer ticks while bytes flow.

For the rate, the bytes are kept as (client time, bytes so far) samples no closer than 1/64
of the window (a new one moves the last one later, which errs towards the client), so a
fast upload keeps about 64 of them, whatever its size.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from bot import words
from bot.errors import TooSlowError

Read = Callable[[], Awaitable[bytes]]
Rule = Literal["idle", "overall", "rate"]
SAMPLES_PER_WINDOW = 64
_NO_LIMIT = float("inf")


@dataclass(frozen=True, slots=True, kw_only=True)
class PaceRules:
    idle_s: float = 30.0
    max_s: float = 3600.0
    min_bytes_per_s: int = 10240
    window_s: float = 60.0

    def stalled(self) -> str:
        return words.upload_stalled(self.idle_s)

    def took_too_long(self) -> str:
        return words.upload_took_too_long(self.max_s)

    def too_slow(self, received_bytes: int) -> str:
        return words.upload_too_slow(received_bytes, self.window_s, self.min_bytes_per_s)


class Pace:
    """One upload's clock and its bytes; `read` wraps every read of the body."""

    def __init__(self, rules: PaceRules, clock: Callable[[], float] = time.monotonic) -> None:
        self.rules = rules
        self._clock = clock
        self._waited_s = 0.0  # client time: the time spent inside reads so far
        self._last_arrival_s = 0.0
        self._first_byte_s: float | None = None
        self.received_bytes = 0
        self._samples: deque[tuple[float, int]] = deque()
        self._spacing_s = rules.window_s / SAMPLES_PER_WINDOW

    async def read(self, read: Read) -> bytes:
        """The next piece of the body (b"" at its end), or TooSlowError."""
        while True:
            allowed_s = self._allowed_s()
            started = self._clock()
            try:
                async with asyncio.timeout(None if allowed_s == _NO_LIMIT else allowed_s):
                    data = await read()
            except TimeoutError:
                self._waited_s += self._clock() - started
                broken = self._broken()
                if broken is not None:
                    raise broken from None
                continue  # woken a hair early: wait out the rest
            self._waited_s += self._clock() - started
            if data:
                self._arrived(len(data))
            return data

    def _arrived(self, size: int) -> None:
        now = self._waited_s
        self._last_arrival_s = now
        if self._first_byte_s is None:
            self._first_byte_s = now
        self.received_bytes += size
        samples = self._samples
        if len(samples) >= 2 and now - samples[-2][0] < self._spacing_s:
            samples[-1] = (now, self.received_bytes)
        else:
            samples.append((now, self.received_bytes))
        # One sample before the window is all that is needed of the past.
        cutoff = now - self.rules.window_s
        while len(samples) >= 2 and samples[1][0] <= cutoff:
            samples.popleft()

    def _deadlines(self) -> list[tuple[float, Rule]]:
        """When each rule breaks, in client time, if nothing more arrives."""
        rules = self.rules
        deadlines: list[tuple[float, Rule]] = [(self._last_arrival_s + rules.idle_s, "idle")]
        first = self._first_byte_s
        if first is None:
            return deadlines
        deadlines.append((first + rules.max_s, "overall"))
        if rules.min_bytes_per_s > 0:
            deadlines.append((self._rate_breaks_at(first), "rate"))
        return deadlines

    def _rate_breaks_at(self, first: float) -> float:
        """The window's bytes only fall while nothing arrives: they go below the minimum
        once the first sample holding more than (all bytes - the minimum) leaves it."""
        window_s = self.rules.window_s
        threshold = self.received_bytes - self.rules.min_bytes_per_s * window_s
        leaves_s = first  # nothing at all before the first byte
        if threshold >= 0:
            leaves_s = next(t for t, total in self._samples if total > threshold)
        return max(first, leaves_s) + window_s

    def _allowed_s(self) -> float:
        soonest, _ = min(self._deadlines())
        return max(soonest - self._waited_s, 0.0)

    def _broken(self) -> TooSlowError | None:
        soonest, rule = min(self._deadlines())
        if soonest > self._waited_s:
            return None
        if rule == "idle":
            return TooSlowError(rule, self.rules.stalled())
        if rule == "overall":
            return TooSlowError(rule, self.rules.took_too_long())
        return TooSlowError(rule, self.rules.too_slow(self._window_bytes()))

    def _window_bytes(self) -> int:
        cutoff = self._waited_s - self.rules.window_s
        before = [total for t, total in self._samples if t <= cutoff]
        return self.received_bytes - (before[-1] if before else 0)

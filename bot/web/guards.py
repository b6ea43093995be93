"""Per-client rate limiting for uploads."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

RATE_WINDOW_S = 60.0


class RateLimiter:
    """At most `limit` requests per client in any sliding window of `window_s` seconds.

    Every request counts, the ones turned away here too: a client that keeps knocking stays
    out. Retry-After is true for a client that waits as told. Only the last `limit` requests
    decide, so that is all each client's memory holds.
    """

    def __init__(
        self,
        limit: int,
        window_s: float = RATE_WINDOW_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window_s = window_s
        self._clock = clock
        self._hits: dict[str, deque[float]] = {}
        self._next_sweep = clock() + window_s

    def hit(self, client: str) -> float | None:
        """Count a request; None if allowed, else the seconds until the client may retry."""
        now = self._clock()
        self._sweep(now)
        hits = self._hits.setdefault(client, deque(maxlen=self.limit))
        allowed = len(hits) < self.limit or hits[0] <= now - self.window_s
        hits.append(now)
        if allowed:
            return None
        return hits[0] + self.window_s - now

    def _sweep(self, now: float) -> None:
        """Forget clients that have been quiet for a whole window, so memory stays bounded."""
        if now < self._next_sweep:
            return
        self._next_sweep = now + self.window_s
        for client, hits in list(self._hits.items()):
            if not hits or hits[-1] <= now - self.window_s:
                del self._hits[client]

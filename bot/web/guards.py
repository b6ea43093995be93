"""What stands between the network and the handlers: rate limits, uploads in flight per
client, and the browser boundary (Host and Origin) when no access code protects the API.

Without UPLOAD_TOKEN the service trusts whoever can reach it, which on loopback is the
machine's own user. Two browser tricks would widen that to any web page the user visits:
a cross-site form POST (CSRF) and DNS rebinding (a foreign name resolving to 127.0.0.1, so
the page may read the answers). Checking Origin stops the first, checking Host the second.
"""

from __future__ import annotations

import ipaddress
import time
from collections import deque
from collections.abc import Callable
from urllib.parse import urlsplit

from aiohttp import web

RATE_WINDOW_S = 60.0
MAX_UPLOADS_IN_FLIGHT = 2  # per client address


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


class InFlight:
    """How many uploads each client has open; a client at the limit waits for one to end."""

    def __init__(self, limit: int = MAX_UPLOADS_IN_FLIGHT) -> None:
        self.limit = limit
        self._open: dict[str, int] = {}

    def enter(self, client: str) -> bool:
        if self._open.get(client, 0) >= self.limit:
            return False
        self._open[client] = self._open.get(client, 0) + 1
        return True

    def leave(self, client: str) -> None:
        left = self._open.get(client, 0) - 1
        if left > 0:
            self._open[client] = left
        else:
            self._open.pop(client, None)


def client_of(request: web.Request) -> str:
    return request.remote or "unknown"


def host_allowed(request: web.Request, public_url: str | None) -> bool:
    """A loopback name or address, or PUBLIC_URL's host: never a name rebound to us."""
    host = _host_name(request.host)
    if public_url is not None and host == (urlsplit(public_url).hostname or "").lower():
        return True
    return is_loopback_host(host)


def is_loopback_host(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def origin_allowed(request: web.Request, public_url: str | None) -> bool:
    """No Origin (curl, scripts), or the service's own: the page itself or PUBLIC_URL."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    own = {f"http://{request.host}".lower(), f"https://{request.host}".lower()}
    if public_url is not None:
        parts = urlsplit(public_url)
        own.add(f"{parts.scheme}://{parts.netloc}".lower())
    return origin.lower().rstrip("/") in own


def _host_name(host: str) -> str:
    """'127.0.0.1:3000' -> '127.0.0.1', '[::1]:3000' -> '::1', lower-cased."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host

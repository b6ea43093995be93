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
from typing import Literal
from urllib.parse import urlsplit

from aiohttp import web
from multidict import MultiMapping

from bot.config import TrustedProxies

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
    """Uploads whose bodies are arriving: at most `per_client` from one client and `total`
    from all together. Each open upload holds a connection, a few MiB of buffers and, when
    it streams into its job, a paused analysis: this is what bounds them."""

    def __init__(self, total: int, per_client: int = MAX_UPLOADS_IN_FLIGHT) -> None:
        self.total = total
        self.per_client = per_client
        self._open: dict[str, int] = {}
        self.count = 0

    def enter(self, client: str) -> Literal["client", "total"] | None:
        """None when the upload may go on, else which limit it met."""
        if self._open.get(client, 0) >= self.per_client:
            return "client"
        if self.count >= self.total:
            return "total"
        self._open[client] = self._open.get(client, 0) + 1
        self.count += 1
        return None

    def leave(self, client: str) -> None:
        left = self._open.get(client, 0) - 1
        self.count -= 1
        if left > 0:
            self._open[client] = left
        else:
            self._open.pop(client, None)


PROXIES = web.AppKey("trusted_proxies", TrustedProxies)
_CLIENT = web.RequestKey("client", str)  # the request's client address, worked out once
MAX_CLIENT_CHARS = 64


def client_of(request: web.Request) -> str:
    """Who sent the request, for per-client limits: the peer's address, or, when the peer is
    a trusted proxy (FORWARDED_ALLOW_IPS), the client it names in X-Forwarded-For or
    Forwarded: the rightmost entry that is not itself a trusted proxy, since every proxy
    appends the address it saw and only the ones we trust can be believed."""
    known = request.get(_CLIENT)
    if isinstance(known, str):
        return known
    client = forwarded_client(
        request.remote, request.headers, request.app.get(PROXIES) or TrustedProxies()
    )
    request[_CLIENT] = client
    return client


def forwarded_client(peer: str | None, headers: MultiMapping[str], proxies: TrustedProxies) -> str:
    client = peer or "unknown"
    if proxies.trusts(client):
        chain = _x_forwarded_for(headers) or _forwarded_for(headers)
        for address in reversed(chain):
            if not proxies.trusts(address):
                client = address
                break
        else:
            client = chain[0] if chain else client
    return _as_client(client)


def _as_client(address: str) -> str:
    """One client, one key: an IPv4 address however written (`::ffff:192.0.2.7` too), and
    an IPv6 address by its /64, which one host or home network holds whole (counted one by
    one, each of its 2**64 addresses would be a new client)."""
    try:
        ip = ipaddress.ip_address(address.strip("[]").split("%", 1)[0])
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def _x_forwarded_for(headers: MultiMapping[str]) -> list[str]:
    values = headers.getall("X-Forwarded-For", [])
    return [_address(entry) for value in values for entry in value.split(",") if entry.strip()]


def _forwarded_for(headers: MultiMapping[str]) -> list[str]:
    """The `for=` of each element of RFC 7239's Forwarded headers, in order."""
    chain = []
    for value in headers.getall("Forwarded", []):
        for element in value.split(","):
            for pair in element.split(";"):
                name, _, given = pair.partition("=")
                if name.strip().lower() == "for" and given.strip():
                    chain.append(_address(given.strip().strip('"')))
    return chain


def _address(entry: str) -> str:
    """An address as written in a forwarding header, without its port, normalised."""
    entry = entry.strip()
    if entry.startswith("["):
        entry = entry[1:].split("]", 1)[0]
    elif entry.count(":") == 1:
        entry = entry.split(":", 1)[0]
    try:
        return str(ipaddress.ip_address(entry))
    except ValueError:
        return entry[:MAX_CLIENT_CHARS].lower()  # "unknown", an obfuscated "_hidden" name


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

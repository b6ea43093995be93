"""Below the handlers: connections and requests aiohttp answers by itself.

aiohttp answers a request it cannot parse (a bad request line, an oversized header,
Content-Length beside Transfer-Encoding, a bad chunk) before any middleware, in plain text
that quotes the offending bytes (an Authorization header among them), and logs them. Here
the answer is JSON in words, and the log line names the error's type only.

Each connection holds buffers for its request's head (up to MAX_HEADERS lines of 8 KiB)
while a client sends it, so connections are bounded: MAX_CONNECTIONS in all and
MAX_CONNECTIONS_PER_CLIENT from one address (a trusted proxy's are not counted by address:
its many clients share it). A connection past either is closed at once.
"""

from __future__ import annotations

import asyncio
from collections import Counter

import structlog
from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from bot import words
from bot.config import TrustedProxies
from bot.web.context import error_response

log = structlog.get_logger("bot.web")

MAX_HEADERS = 40  # aiohttp's default is 128; browsers send about 15
MAX_CONNECTIONS = 512
MAX_CONNECTIONS_PER_CLIENT = 32


class ConnectionLimits:
    def __init__(
        self,
        proxies: TrustedProxies,
        *,
        total: int = MAX_CONNECTIONS,
        per_client: int = MAX_CONNECTIONS_PER_CLIENT,
    ) -> None:
        self._proxies = proxies
        self.total = total
        self.per_client = per_client
        self._open: dict[RequestHandler, str] = {}
        self._by_client: Counter[str] = Counter()

    def admit(self, handler: RequestHandler, transport: asyncio.BaseTransport) -> bool:
        peer = transport.get_extra_info("peername")
        address = str(peer[0]) if isinstance(peer, tuple) and peer else "unknown"
        shared = self._proxies.trusts(address)  # its many clients share its address
        if len(self._open) >= self.total or (
            not shared and self._by_client[address] >= self.per_client
        ):
            return False
        self._open[handler] = address
        self._by_client[address] += 1
        return True

    @property
    def count(self) -> int:
        return len(self._open)

    def release(self, handler: RequestHandler) -> None:
        address = self._open.pop(handler, None)
        if address is None:
            return
        self._by_client[address] -= 1
        if self._by_client[address] <= 0:
            del self._by_client[address]


class _Protocol(RequestHandler):
    limits: ConnectionLimits | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        limits = self.limits
        if limits is not None and not limits.admit(self, transport):
            log.info("web.connection_refused", connections=limits.count)
            transport.close()

    def connection_lost(self, exc: BaseException | None) -> None:
        if self.limits is not None:
            self.limits.release(self)
        super().connection_lost(exc)

    async def finish_response(
        self, request: BaseRequest, resp: web.StreamResponse, start_time: float | None
    ) -> tuple[web.StreamResponse, bool]:
        # An HTTP error raised before any middleware (an Expect it does not know, say)
        # would go out as aiohttp's text, which may quote the request.
        if isinstance(resp, web.HTTPException) and resp.status >= 400:
            log.info("web.refused_early", status=resp.status)
            resp = error_response(resp.status, words.protocol_error(resp.status), close=True)
        return await super().finish_response(request, resp, start_time)

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if status >= 500:
            log.error("web.crashed", status=status, exc_info=exc)
        else:
            log.info("web.unreadable_request", status=status, error=type(exc).__name__)
        if request.writer.output_size > 0:
            raise ConnectionError("an answer was sent already")
        return error_response(status, words.protocol_error(status), close=True)


class _Server(web.Server):
    limits: ConnectionLimits | None = None

    def __call__(self) -> RequestHandler:
        handler = _Protocol(self, loop=self._loop, **self._kwargs)
        handler.limits = self.limits
        return handler


class Runner(web.AppRunner):
    """The app's runner, with our protocol: JSON for what aiohttp answers, bounded
    connections."""

    def __init__(self, app: web.Application, limits: ConnectionLimits, **kwargs: object) -> None:
        super().__init__(app, **kwargs)  # type: ignore[arg-type]
        self._limits = limits

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        # aiohttp has no setting for the protocol class: the server it built is made one
        # that builds ours (the same object, so every setting it was given stays).
        server.__class__ = _Server
        assert isinstance(server, _Server)
        server.limits = self._limits
        return server

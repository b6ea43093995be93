"""Socket Mode: apps.connections.open hands out a ticket for the /link websocket, which says
hello, then carries the envelopes a test sends (events, slash commands) and brings back the
client's acks. A slash command's response_url is a POST back to /respond/<n>."""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from tests.standin.files import Files
from tests.standin.server import Call, Recorder, Server, now
from tests.standin.workspace import (
    APP_ID,
    BOT_USER_ID,
    DEFAULT_CHANNEL,
    TEAM_DOMAIN,
    TEAM_ID,
    Workspace,
)


class SocketMode:
    """The app's websocket connections, what was sent down them and what came back."""

    def __init__(
        self, workspace: Workspace, recorder: Recorder, server: Server, files: Files
    ) -> None:
        self.acks: dict[str, dict[str, Any]] = {}
        self.envelopes: dict[str, dict[str, Any]] = {}  # envelope_id -> what was sent
        self.responses: list[dict[str, Any]] = []  # bodies POSTed to response_urls
        self.connections = 0  # accepted in all
        self._workspace = workspace
        self._recorder = recorder
        self._server = server
        self._files = files
        self._sockets: list[web.WebSocketResponse] = []
        self._tickets: set[str] = set()
        self._response_urls: set[str] = set()
        self._event_ids: dict[str, str] = {}

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/link", self._on_link), web.post("/respond/{n}", self._on_respond)]

    def apps_connections_open(self, args: dict[str, Any]) -> dict[str, Any]:
        ticket = str(self._workspace.next_serial())
        self._tickets.add(ticket)
        return {"ok": True, "url": f"ws://127.0.0.1:{self._server.port}/link?ticket={ticket}"}

    # -- waiting -----------------------------------------------------------------------------

    async def wait_for_connection(self, count: int = 1, timeout: float = 10) -> None:
        """Waits until `count` websocket connections have been accepted in all."""
        try:
            await self._recorder.wait_until(lambda: self.connections >= count, timeout)
        except TimeoutError:
            raise TimeoutError(
                f"wanted {count} socket mode connection(s) within {timeout}s, got "
                f"{self.connections}; calls seen: {self._recorder.summary()}"
            ) from None

    async def wait_ack(self, envelope_id: str, timeout: float = 10) -> dict[str, Any]:
        """The ack the client sent back for an envelope."""
        try:
            await self._recorder.wait_until(lambda: envelope_id in self.acks, timeout)
        except TimeoutError:
            raise TimeoutError(
                f"no ack for envelope {envelope_id} within {timeout}s; "
                f"acked: {list(self.acks)}; open sockets: {len(self._open_sockets())}"
            ) from None
        return self.acks[envelope_id]

    # -- envelopes ---------------------------------------------------------------------------

    async def send_envelope(
        self,
        type: str,
        payload: dict[str, Any],
        *,
        retry_attempt: int = 0,
        accepts_response_payload: bool = False,
        connection: int = -1,
    ) -> str:
        """Pushes an envelope to one open socket, the newest unless `connection` picks
        another (0 = the oldest still open), as Slack gives each envelope to one of an app's
        connections; returns its envelope_id."""
        sockets = self._open_sockets()
        if not sockets:
            raise RuntimeError(
                f"no open socket mode connection ({self.connections} accepted so far); "
                "await wait_for_connection() first"
            )
        envelope_id = str(uuid.uuid4())
        envelope = {
            "envelope_id": envelope_id,
            "type": type,
            "accepts_response_payload": accepts_response_payload,
            "retry_attempt": retry_attempt,
            "retry_reason": "timeout" if retry_attempt else "",
            "payload": payload,
        }
        self.envelopes[envelope_id] = envelope
        await sockets[connection].send_json(envelope)
        return envelope_id

    async def send_event(
        self,
        event: dict[str, Any],
        *,
        retry_attempt: int = 0,
        event_id: str | None = None,
        connection: int = -1,
    ) -> str:
        """Wraps `event` in an events_api envelope, as Slack does; returns the envelope_id.

        Sending the same event again (a redelivery, say with retry_attempt=1) reuses its
        event_id, like Slack's retries; the envelope_id is always new.
        """
        if event_id is None:
            key = hashlib.sha256(json.dumps(event, sort_keys=True).encode()).hexdigest()
            event_id = self._event_ids.setdefault(key, f"Ev{self._workspace.next_serial():08d}")
        payload = {
            "token": "verification-token",
            "team_id": TEAM_ID,
            "context_team_id": TEAM_ID,
            "context_enterprise_id": None,
            "api_app_id": APP_ID,
            "event": event,
            "type": "event_callback",
            "event_id": event_id,
            "event_time": int(time.time()),
            "authorizations": [
                {
                    "enterprise_id": None,
                    "team_id": TEAM_ID,
                    "user_id": BOT_USER_ID,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
            "is_ext_shared_channel": False,
            "event_context": f"4-{event_id}",
        }
        return await self.send_envelope(
            "events_api", payload, retry_attempt=retry_attempt, connection=connection
        )

    async def send_command(
        self,
        text: str = "",
        *,
        channel: str = DEFAULT_CHANNEL,
        user: str = "UALICE",
        command: str = "/process-events",
    ) -> str:
        """A slash command envelope with its own response_url; returns the envelope_id."""
        self._workspace.add_channel(channel)
        n = self._workspace.next_serial()
        self._response_urls.add(str(n))
        payload = {
            "token": "verification-token",
            "team_id": TEAM_ID,
            "team_domain": TEAM_DOMAIN,
            "channel_id": channel,
            "channel_name": self._workspace.channels[channel].name,
            "user_id": user,
            "user_name": user.lower(),
            "command": command,
            "text": text,
            "api_app_id": APP_ID,
            "is_enterprise_install": "false",
            "response_url": f"{self._server.root_url}/respond/{n}",
            "trigger_id": f"{n}.{TEAM_ID}.trigger",
        }
        return await self.send_envelope("slash_commands", payload, accepts_response_payload=True)

    def file_share_event(
        self, file_id: str, *, channel: str = DEFAULT_CHANNEL, user: str | None = None
    ) -> dict[str, Any]:
        """The `message` event (subtype file_share) for a file added with add_file.

        `user` defaults to the file's owner. Its ts is the share message's ts in `channel`
        (the history message add_file made there, or a new one), the same on every call.
        """
        file = self._workspace.files[file_id]
        user = user or file.user
        self._workspace.add_channel(channel)
        ts = self._workspace.share(file, channel)
        return {
            "type": "message",
            "subtype": "file_share",
            "text": "",
            "files": [self._files.file_object(file)],
            "upload": False,
            "user": user,
            "display_as_bot": False,
            "ts": ts,
            "channel": channel,
            "channel_type": "channel",
            "event_ts": ts,
        }

    def file_shared_event(
        self, file_id: str, *, channel: str = DEFAULT_CHANNEL, user: str | None = None
    ) -> dict[str, Any]:
        """The `file_shared` event: ids only, and no message ts.

        Its event_ts is not the share message's ts, as on Slack; calling this again for the
        same file and channel gives the same event (a redelivery).
        """
        file = self._workspace.files[file_id]
        user = user or file.user
        self._workspace.add_channel(channel)
        self._workspace.share(file, channel)
        if channel not in file.shared_event_ts:
            file.shared_event_ts[channel] = self._workspace.next_ts()
        return {
            "type": "file_shared",
            "file_id": file_id,
            "user_id": user,
            "file": {"id": file_id},
            "channel_id": channel,
            "event_ts": file.shared_event_ts[channel],
        }

    # -- the connections ---------------------------------------------------------------------

    async def disconnect(self, reason: str = "refresh_requested") -> None:
        """Asks the newest socket's client to reconnect, as Slack does every few hours."""
        sockets = self._open_sockets()
        if not sockets:
            raise RuntimeError("no open socket mode connection to disconnect")
        await sockets[-1].send_json(
            {
                "type": "disconnect",
                "reason": reason,
                "debug_info": {"host": "standin"},
            }
        )

    async def drop_connections(self) -> None:
        """Closes every open socket without warning, as a network outage would."""
        for ws in self._open_sockets():
            await ws.close(code=1011, message=b"standin outage")

    async def close(self) -> None:
        """Says goodbye on every socket, as the stand-in stops."""
        for ws in list(self._sockets):
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"stand-in closing")

    def _open_sockets(self) -> list[web.WebSocketResponse]:
        return [ws for ws in self._sockets if not ws.closed]

    async def _on_link(self, request: web.Request) -> web.StreamResponse:
        if request.query.get("ticket") not in self._tickets:
            return web.Response(status=401, text="invalid ticket")
        # autoping answers the client's pings; slack-sdk reconnects when pongs stop coming.
        ws = web.WebSocketResponse(autoping=True, timeout=2.0)
        await ws.prepare(request)
        await ws.send_json(
            {
                "type": "hello",
                "num_connections": 1,
                "debug_info": {
                    "host": "standin",
                    "build_number": 1,
                    "approximate_connection_time": 18060,
                },
                "connection_info": {"app_id": APP_ID},
            }
        )
        self._sockets.append(ws)
        self.connections += 1
        self._recorder.changed()
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    self._on_socket_message(msg.data)
        finally:
            self._sockets.remove(ws)
            self._recorder.changed()
        return ws

    def _on_socket_message(self, data: str) -> None:
        try:
            message = json.loads(data)
        except ValueError:
            return
        if isinstance(message, dict) and "envelope_id" in message:
            self.acks[str(message["envelope_id"])] = message
            self._recorder.changed()

    async def _on_respond(self, request: web.Request) -> web.Response:
        at = now()
        authorization = request.headers.get("Authorization")
        try:
            body = await request.json()
        except ValueError:
            body = None
        args = body if isinstance(body, dict) else {"raw": await request.text()}
        if request.match_info["n"] not in self._response_urls:
            status, text = 404, "no_service"
        elif body is None:
            status, text = 400, "invalid_payload"
        else:
            self.responses.append(args)
            status, text = 200, "ok"
        self._recorder.record(Call("response_url", args, status, authorization, at))
        return web.Response(status=status, text=text)

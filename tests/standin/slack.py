"""A local Slack for end-to-end tests: the Web API over HTTP and Socket Mode over WebSocket.

One aiohttp server on 127.0.0.1, port 0, running in the test's own event loop (no threads,
no fixed ports). Point the real clients at it and they cannot tell:

    async with SlackStandIn() as slack:
        web = AsyncWebClient(token=BOT_TOKEN, base_url=slack.base_url)
        socket = SocketModeClient(app_token=APP_TOKEN, web_client=AsyncWebClient(base_url=slack.base_url))

Routes:

    /api/<method>                               Web API (GET or POST; query, form or JSON)
    /link?ticket=<n>                            Socket Mode websocket, from apps.connections.open
    /files-pri/<team>-<file id>/download/<name> file downloads (url_private_download)
    /upload/<file id>                           the URL files.getUploadURLExternal hands out
    /respond/<n>                                a slash command's response_url

Every request is recorded as a `Call`. Tests wait for what they expect with `wait_for_call`,
`wait_until`, `wait_for_connection` and `wait_ack`: each re-checks its condition whenever the
stand-in records a call or changes state, under a timeout. Nothing here sleeps to synchronise;
the one sleep is `chunk_delay_s`, which simulates a slow download.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import hashlib
import json
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote

from aiohttp import WSCloseCode, WSMsgType, web

__all__ = [
    "APP_ID",
    "APP_TOKEN",
    "BOT_ID",
    "BOT_TOKEN",
    "BOT_USER_ID",
    "TEAM_ID",
    "Call",
    "SlackStandIn",
]

BOT_TOKEN = "xoxb-test-bot-token"
APP_TOKEN = "xapp-test-app-token"
BOT_USER_ID = "UBOT"
BOT_ID = "BBOT"
TEAM_ID = "T0TEAM"
APP_ID = "A0APP"
TEAM_DOMAIN = "clinic"
DEFAULT_CHANNEL = "C0CLINIC"

# Slack's documented limits, checked the way chat.postMessage / chat.update check them.
MAX_TEXT_CHARS = 40_000
MAX_BLOCKS = 50
MAX_SECTION_TEXT_CHARS = 3000
MAX_SECTION_FIELDS = 10
MAX_FIELD_CHARS = 2000
MAX_HEADER_CHARS = 150
MAX_CONTEXT_ELEMENTS = 10
MAX_BLOCK_ID_CHARS = 255
MAX_TABLE_ROWS = 100
MAX_TABLE_CELLS = 20

# Args that slack-sdk sends as JSON strings inside form or query data.
_JSON_ARGS = frozenset({"blocks", "attachments", "files", "metadata"})

_MIMETYPES = {
    "csv": ("text/csv", "CSV"),
    "text": ("text/plain", "Plain Text"),
    "json": ("application/json", "JSON"),
    "png": ("image/png", "PNG"),
    "pdf": ("application/pdf", "PDF"),
    "zip": ("application/zip", "Zip"),
    "gzip": ("application/gzip", "GZip"),
    "xlsx": (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "Excel Spreadsheet",
    ),
}

# What files.slack.com serves a client that has no (or the wrong) token: a 200 with HTML.
_LOGIN_PAGE = """<!DOCTYPE html>
<html lang="en-US">
<head><meta charset="utf-8"><title>Slack</title></head>
<body class="signin">
<h1>Sign in to Clinic</h1>
<form id="signin_form" action="/signin" method="post">
<input type="email" name="email" placeholder="name@work-email.com">
<button type="submit" id="signin_btn">Sign In</button>
</form>
</body>
</html>
"""

_NOT_FOUND_PAGE = (
    "<!DOCTYPE html><html><head><title>Not Found | Slack</title></head>"
    "<body><h1>This file was not found</h1></body></html>"
)


@dataclass
class Call:
    """One request the stand-in received."""

    method: str  # Web API method ("chat.update"), or "download", "upload", "response_url"
    args: dict[str, Any]  # query + form + JSON body; JSON-string values (blocks, files) decoded
    status: int  # the HTTP status the stand-in answered
    authorization: str | None  # the Authorization header as received
    at: float  # loop.time() when received


@dataclass
class _File:
    id: str
    name: str
    content: bytes
    filetype: str
    user: str
    channel: str | None
    size: int
    title: str
    created: int
    html: bool = False
    chunk_size: int = 65536
    chunk_delay_s: float = 0.0
    redirect_to: str | None = None
    thread_ts: str | None = None  # where the bot uploaded it
    # channel -> ts of the message that shared it there, once there is one
    shares: dict[str, str] = field(default_factory=dict)
    # channel -> event_ts of its file_shared event: stable, so a redelivery is identical
    shared_event_ts: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Failure:
    status: int
    retry_after: int
    error: str


@dataclass
class _Channel:
    name: str
    member: bool = True
    messages: list[dict[str, Any]] = field(default_factory=list)  # all of them, oldest first


class SlackStandIn:
    """Slack's Web API and Socket Mode on loopback, recording every call."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.ephemerals: list[dict[str, Any]] = []
        self.responses: list[dict[str, Any]] = []
        self.uploads: dict[str, dict[str, Any]] = {}
        self.acks: dict[str, dict[str, Any]] = {}
        self.envelopes: dict[str, dict[str, Any]] = {}  # envelope_id -> what was sent
        self.connections = 0
        # Set to answer invalid_blocks to any message with a table block, as a workspace
        # without table blocks does.
        self.refuse_tables = False

        self._runner: web.AppRunner | None = None
        self._port = 0
        self._files: dict[str, _File] = {}
        self._channels: dict[str, _Channel] = {DEFAULT_CHANNEL: _Channel("clinic")}
        self._failures: dict[str, deque[_Failure]] = {}
        self._sockets: list[web.WebSocketResponse] = []
        self._tickets: set[str] = set()
        self._response_urls: set[str] = set()
        self._event_ids: dict[str, str] = {}
        self._serial = 0
        self._ts_serial = 0
        # Replaced on every change: a waiter holds the current one and re-checks when it fires.
        # An Event (not a Condition) so plain, synchronous setters can wake waiters too.
        self._change = asyncio.Event()
        self._handlers: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "auth.test": self._auth_test,
            "apps.connections.open": self._apps_connections_open,
            "files.info": self._files_info,
            "conversations.history": self._conversations_history,
            "conversations.replies": self._conversations_replies,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "files.getUploadURLExternal": self._files_get_upload_url_external,
            "files.completeUploadExternal": self._files_complete_upload_external,
        }

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application(client_max_size=1 << 30)
        app.router.add_route("*", "/api/{method}", self._on_api)
        app.router.add_get("/link", self._on_link)
        app.router.add_get("/files-pri/{key}/download/{name}", self._on_download)
        app.router.add_get("/files-pri/{key}/{name}", self._on_download)
        app.router.add_post("/upload/{file_id}", self._on_upload)
        app.router.add_post("/respond/{n}", self._on_respond)
        # A short shutdown timeout: a test that closes mid slow download should not wait 60 s.
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.25)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self._port = self._runner.addresses[0][1]

    async def close(self) -> None:
        for ws in list(self._sockets):
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"stand-in closing")
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    @property
    def base_url(self) -> str:
        """The Web API root: what SLACK_API_URL / AsyncWebClient(base_url=...) is set to."""
        return f"{self.root_url}/api/"

    # -- waiting -----------------------------------------------------------------------------

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
                f"condition still false after {timeout}s; calls seen: {self._calls_summary()}"
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
                f"calls seen: {self._calls_summary()}"
            ) from None
        return matching()

    async def wait_for_connection(self, count: int = 1, timeout: float = 10) -> None:
        """Waits until `count` websocket connections have been accepted in all."""
        try:
            await self.wait_until(lambda: self.connections >= count, timeout)
        except TimeoutError:
            raise TimeoutError(
                f"wanted {count} socket mode connection(s) within {timeout}s, got "
                f"{self.connections}; calls seen: {self._calls_summary()}"
            ) from None

    async def wait_ack(self, envelope_id: str, timeout: float = 10) -> dict[str, Any]:
        """The ack the client sent back for an envelope."""
        try:
            await self.wait_until(lambda: envelope_id in self.acks, timeout)
        except TimeoutError:
            raise TimeoutError(
                f"no ack for envelope {envelope_id} within {timeout}s; "
                f"acked: {list(self.acks)}; open sockets: {len(self._open_sockets())}"
            ) from None
        return self.acks[envelope_id]

    def _changed(self) -> None:
        self._change.set()
        self._change = asyncio.Event()

    def _record(self, call: Call) -> None:
        self.calls.append(call)
        self._changed()

    def _calls_summary(self) -> str:
        if not self.calls:
            return "none"
        counts = Counter(f"{c.method} {c.status}" for c in self.calls)
        return ", ".join(f"{what} ×{n}" if n > 1 else what for what, n in counts.items())

    # -- files -------------------------------------------------------------------------------

    def add_file(
        self,
        file_id: str,
        name: str,
        content: bytes,
        *,
        filetype: str | None = None,
        user: str = "UALICE",
        channel: str = DEFAULT_CHANNEL,
        size: int | None = None,
        html: bool = False,
        chunk_size: int = 65536,
        chunk_delay_s: float = 0.0,
        redirect_to: str | None = None,
        in_history: bool = True,
    ) -> dict[str, Any]:
        """A file a user shared in `channel`; returns it as files.info gives it."""
        if filetype is None:
            filetype = "csv" if name.lower().endswith(".csv") else "text"
        self.add_channel(channel)
        file = _File(
            id=file_id,
            name=name,
            content=content,
            filetype=filetype,
            user=user,
            channel=channel,
            size=len(content) if size is None else size,
            title=name,
            created=int(time.time()),
            html=html,
            chunk_size=chunk_size,
            chunk_delay_s=chunk_delay_s,
            redirect_to=redirect_to,
        )
        self._files[file_id] = file
        if in_history:
            share_ts = self._share(file, channel)
            self._append_message(
                channel,
                {
                    "type": "message",
                    "subtype": "file_share",
                    "text": "",
                    "files": [self._file_object(file)],
                    "upload": False,
                    "user": user,
                    "display_as_bot": False,
                    "ts": share_ts,
                },
            )
        self._changed()
        return self._file_object(file)

    def file_url(self, file_id: str) -> str:
        """The file's url_private_download."""
        file = self._files[file_id]
        return f"{self.root_url}/files-pri/{TEAM_ID}-{file.id}/download/{quote(file.name)}"

    def _file_object(self, file: _File) -> dict[str, Any]:
        mimetype, pretty_type = _MIMETYPES.get(
            file.filetype, ("application/octet-stream", "Binary")
        )
        public: dict[str, list[dict[str, Any]]] = {}
        for channel, ts in file.shares.items():
            share: dict[str, Any] = {
                "ts": ts,
                "channel_name": self._channels[channel].name,
                "team_id": TEAM_ID,
                "share_user_id": file.user,
                "source": "UNKNOWN",
            }
            if file.thread_ts is not None:
                share["thread_ts"] = file.thread_ts
            public[channel] = [share]
        channels = list(file.shares) or ([file.channel] if file.channel else [])
        return {
            "id": file.id,
            "created": file.created,
            "timestamp": file.created,
            "name": file.name,
            "title": file.title,
            "mimetype": mimetype,
            "filetype": file.filetype,
            "pretty_type": pretty_type,
            "user": file.user,
            "user_team": TEAM_ID,
            "editable": False,
            "size": file.size,
            "mode": "hosted",
            "is_external": False,
            "external_type": "",
            "is_public": True,
            "public_url_shared": False,
            "display_as_bot": False,
            "username": "",
            "url_private": f"{self.root_url}/files-pri/{TEAM_ID}-{file.id}/{quote(file.name)}",
            "url_private_download": self.file_url(file.id),
            "permalink": f"https://{TEAM_DOMAIN}.slack.com/files/{file.user}/{file.id}/{file.name}",
            "permalink_public": f"https://slack-files.com/{TEAM_ID}-{file.id}-0000000000",
            "channels": channels,
            "groups": [],
            "ims": [],
            "shares": {"public": public} if public else {},
            "comments_count": 0,
            "has_rich_preview": False,
            "file_access": "visible",
        }

    # -- channels ----------------------------------------------------------------------------

    def add_channel(self, channel: str, name: str | None = None) -> None:
        """Makes a channel exist (C0CLINIC, "clinic", always does); the bot is a member."""
        if channel not in self._channels:
            self._channels[channel] = _Channel(name or channel.lower())
        elif name is not None:
            self._channels[channel].name = name

    def set_not_in_channel(self, channel: str) -> None:
        """conversations.history and chat.postMessage in `channel` answer not_in_channel."""
        self.add_channel(channel)
        self._channels[channel].member = False

    def post_user_message(self, channel: str, text: str, user: str = "UALICE") -> str:
        """A plain message from a person into the channel's history; returns its ts."""
        self.add_channel(channel)
        ts = self._next_ts()
        self._append_message(
            channel, {"type": "message", "user": user, "text": text, "ts": ts, "team": TEAM_ID}
        )
        self._changed()
        return ts

    def messages(self, channel: str) -> list[dict[str, Any]]:
        """Top-level messages (the bot's too), oldest first, as they read now."""
        return [copy.deepcopy(m) for m in self._all_messages(channel) if _is_top_level(m)]

    def thread(self, channel: str, ts: str) -> list[dict[str, Any]]:
        """Replies in the thread under `ts`, oldest first, without the parent."""
        return [
            copy.deepcopy(m)
            for m in self._all_messages(channel)
            if m.get("thread_ts") == ts and m["ts"] != ts
        ]

    def message(self, channel: str, ts: str) -> dict[str, Any]:
        found = self._find_message(channel, ts)
        if found is None:
            raise KeyError(f"no message {ts} in {channel}")
        return copy.deepcopy(found)

    def _all_messages(self, channel: str) -> list[dict[str, Any]]:
        known = self._channels.get(channel)
        return known.messages if known else []

    def _find_message(self, channel: str, ts: str) -> dict[str, Any] | None:
        return next((m for m in self._all_messages(channel) if m["ts"] == ts), None)

    def _append_message(self, channel: str, message: dict[str, Any]) -> None:
        """Stores a message; a reply also updates its parent the way Slack does."""
        messages = self._channels[channel].messages
        messages.append(message)
        thread_ts = message.get("thread_ts")
        parent = self._find_message(channel, thread_ts) if thread_ts else None
        if parent is not None and parent is not message:
            parent["thread_ts"] = thread_ts
            parent["reply_count"] = parent.get("reply_count", 0) + 1
            parent["latest_reply"] = message["ts"]
            users = parent.setdefault("reply_users", [])
            if message["user"] not in users:
                users.append(message["user"])
            parent["reply_users_count"] = len(users)

    def _share(self, file: _File, channel: str) -> str:
        """The ts of the file's share in `channel`, making one up the first time."""
        if channel not in file.shares:
            file.shares[channel] = self._next_ts()
        return file.shares[channel]

    def _known_channel(self, channel: str) -> _Channel | None:
        # Slack opens a DM when a bot posts to a user ID, so those always exist.
        if channel[:1] in ("D", "U", "W"):
            self.add_channel(channel)
        return self._channels.get(channel)

    def _next_ts(self) -> str:
        self._ts_serial += 1
        micros = 1_750_000_000_000_000 + self._ts_serial * 100
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    def _next_serial(self) -> int:
        self._serial += 1
        return self._serial

    # -- failure injection -------------------------------------------------------------------

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
        queue.extend([_Failure(status, retry_after, error)] * count)

    def _take_failure(self, method: str) -> _Failure | None:
        queue = self._failures.get(method)
        return queue.popleft() if queue else None

    # -- socket mode -------------------------------------------------------------------------

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
            event_id = self._event_ids.setdefault(key, f"Ev{self._next_serial():08d}")
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
        self.add_channel(channel)
        n = self._next_serial()
        self._response_urls.add(str(n))
        payload = {
            "token": "verification-token",
            "team_id": TEAM_ID,
            "team_domain": TEAM_DOMAIN,
            "channel_id": channel,
            "channel_name": self._channels[channel].name,
            "user_id": user,
            "user_name": user.lower(),
            "command": command,
            "text": text,
            "api_app_id": APP_ID,
            "is_enterprise_install": "false",
            "response_url": f"{self.root_url}/respond/{n}",
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
        file = self._files[file_id]
        user = user or file.user
        self.add_channel(channel)
        ts = self._share(file, channel)
        return {
            "type": "message",
            "subtype": "file_share",
            "text": "",
            "files": [self._file_object(file)],
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
        file = self._files[file_id]
        user = user or file.user
        self.add_channel(channel)
        self._share(file, channel)
        if channel not in file.shared_event_ts:
            file.shared_event_ts[channel] = self._next_ts()
        return {
            "type": "file_shared",
            "file_id": file_id,
            "user_id": user,
            "file": {"id": file_id},
            "channel_id": channel,
            "event_ts": file.shared_event_ts[channel],
        }

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

    def _open_sockets(self) -> list[web.WebSocketResponse]:
        return [ws for ws in self._sockets if not ws.closed]

    # -- HTTP: Web API -----------------------------------------------------------------------

    async def _on_api(self, request: web.Request) -> web.Response:
        at = asyncio.get_running_loop().time()
        method = request.match_info["method"]
        authorization = request.headers.get("Authorization")
        headers: dict[str, str] = {}
        status = 200
        try:
            args = await _read_args(request)
        except ValueError:
            args, body = {}, _error("invalid_json")
        else:
            body, status, headers = self._answer(method, args, authorization)
        self._record(Call(method, args, status, authorization, at))
        return web.json_response(body, status=status, headers=headers)

    def _answer(
        self, method: str, args: dict[str, Any], authorization: str | None
    ) -> tuple[dict[str, Any], int, dict[str, str]]:
        handler = self._handlers.get(method)
        if handler is None:
            return _error("unknown_method", req_method=method), 200, {}
        auth_error = _auth_error(method, authorization, args)
        if auth_error is not None:
            return _error(auth_error), 200, {}
        failure = self._take_failure(method)
        if failure is not None:
            return _failure_answer(failure)
        return handler(args), 200, {}

    def _auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "url": f"https://{TEAM_DOMAIN}.slack.com/",
            "team": "Clinic",
            "user": "clinic-events",
            "team_id": TEAM_ID,
            "user_id": BOT_USER_ID,
            "bot_id": BOT_ID,
            "is_enterprise_install": False,
        }

    def _apps_connections_open(self, args: dict[str, Any]) -> dict[str, Any]:
        ticket = str(self._next_serial())
        self._tickets.add(ticket)
        return {"ok": True, "url": f"ws://127.0.0.1:{self._port}/link?ticket={ticket}"}

    def _files_info(self, args: dict[str, Any]) -> dict[str, Any]:
        file = self._files.get(str(args.get("file", "")))
        if file is None:
            return _error("file_not_found")
        return {
            "ok": True,
            "file": self._file_object(file),
            "comments": [],
            "response_metadata": {"next_cursor": ""},
        }

    def _conversations_history(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._known_channel(str(args.get("channel", "")))
        if channel is None:
            return _error("channel_not_found")
        if not channel.member:
            return _error("not_in_channel")
        newest_first = [m for m in reversed(channel.messages) if _is_top_level(m)]
        if "latest" in args:
            newest_first = [m for m in newest_first if float(m["ts"]) < float(args["latest"])]
        if "oldest" in args:
            newest_first = [m for m in newest_first if float(m["ts"]) > float(args["oldest"])]
        return _page(newest_first, args, key="messages")

    def _conversations_replies(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._known_channel(str(args.get("channel", "")))
        if channel is None:
            return _error("channel_not_found")
        if not channel.member:
            return _error("not_in_channel")
        ts = str(args.get("ts", ""))
        parent = self._find_message(str(args["channel"]), ts)
        if parent is None:
            return _error("thread_not_found")
        oldest_first = [parent, *(m for m in channel.messages if _is_reply_to(m, ts))]
        return _page(oldest_first, args, key="messages")

    def _chat_post_message(self, args: dict[str, Any]) -> dict[str, Any]:
        channel_id = str(args.get("channel", ""))
        channel = self._known_channel(channel_id)
        if channel is None:
            return _error("channel_not_found")
        if not channel.member:
            return _error("not_in_channel")
        problem = _message_problem(args, require_content=True, tables=not self.refuse_tables)
        if problem is not None:
            return problem
        message: dict[str, Any] = {
            "type": "message",
            "user": BOT_USER_ID,
            "bot_id": BOT_ID,
            "app_id": APP_ID,
            "team": TEAM_ID,
            "text": args.get("text", ""),
            "ts": self._next_ts(),
        }
        for key in ("blocks", "attachments", "metadata"):
            if key in args:
                message[key] = args[key]
        if args.get("thread_ts"):
            message["thread_ts"] = self._thread_root(channel_id, str(args["thread_ts"]))
        self._append_message(channel_id, message)
        return {"ok": True, "channel": channel_id, "ts": message["ts"], "message": dict(message)}

    def _chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        channel_id = str(args.get("channel", ""))
        if self._known_channel(channel_id) is None:
            return _error("channel_not_found")
        message = self._find_message(channel_id, str(args.get("ts", "")))
        if message is None:
            return _error("message_not_found")
        if message.get("user") != BOT_USER_ID:
            return _error("cant_update_message")
        problem = _message_problem(args, require_content=False, tables=not self.refuse_tables)
        if problem is not None:
            return problem
        # Like Slack: fields left out keep their value; "blocks": [] removes the blocks.
        for key in ("text", "blocks", "attachments", "metadata"):
            if key in args:
                message[key] = args[key]
        message["edited"] = {"user": BOT_USER_ID, "ts": self._next_ts()}
        return {
            "ok": True,
            "channel": channel_id,
            "ts": message["ts"],
            "text": message.get("text", ""),
            "message": dict(message),
        }

    def _chat_post_ephemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._known_channel(str(args.get("channel", "")))
        if channel is None:
            return _error("channel_not_found")
        if not args.get("user"):
            return _error("user_not_found")
        problem = _message_problem(args, require_content=True)
        if problem is not None:
            return problem
        self.ephemerals.append(args)
        return {"ok": True, "message_ts": self._next_ts()}

    def _files_get_upload_url_external(self, args: dict[str, Any]) -> dict[str, Any]:
        filename = args.get("filename")
        length = _int_arg(args, "length")
        if not filename:
            return _error("invalid_arguments")
        if length is None or length < 1:
            return _error("invalid_length")
        file_id = f"F0UP{self._next_serial():06d}"
        self.uploads[file_id] = {
            "filename": filename,
            "content": b"",
            "title": None,
            "channel_id": None,
            "thread_ts": None,
            "completed": False,
            "length": length,  # what the client announced
            "uploaded": False,
        }
        return {"ok": True, "upload_url": f"{self.root_url}/upload/{file_id}", "file_id": file_id}

    def _files_complete_upload_external(self, args: dict[str, Any]) -> dict[str, Any]:
        files = args.get("files")
        if not isinstance(files, list) or not files:
            return _error("invalid_arguments")
        channel_id = args.get("channel_id") or str(args.get("channels", "")).split(",")[0] or None
        thread_ts = args.get("thread_ts") or None
        if channel_id is not None:
            channel = self._known_channel(channel_id)
            if channel is None:
                return _error("channel_not_found")
            if not channel.member:
                return _error("not_in_channel")
            if thread_ts is not None:
                thread_ts = self._thread_root(channel_id, thread_ts)
        done: list[_File] = []
        for item in files:
            upload = self.uploads.get(str(item.get("id")))
            if upload is None or not upload["uploaded"]:
                return _error("file_not_found")
            upload.update(
                title=item.get("title") or upload["filename"],
                channel_id=channel_id,
                thread_ts=thread_ts,
                completed=True,
            )
            done.append(
                _File(
                    id=item["id"],
                    name=upload["filename"],
                    content=upload["content"],
                    filetype="csv" if upload["filename"].lower().endswith(".csv") else "text",
                    user=BOT_USER_ID,
                    channel=channel_id,
                    size=len(upload["content"]),
                    title=upload["title"],
                    created=int(time.time()),
                    thread_ts=thread_ts,
                )
            )
        for file in done:
            self._files[file.id] = file
        if channel_id is not None:
            ts = self._next_ts()
            for file in done:
                file.shares[channel_id] = ts
            message: dict[str, Any] = {
                "type": "message",
                "subtype": "file_share",
                "text": args.get("initial_comment", ""),
                "files": [self._file_object(f) for f in done],
                "upload": True,
                "user": BOT_USER_ID,
                "bot_id": BOT_ID,
                "app_id": APP_ID,
                "display_as_bot": False,
                "ts": ts,
            }
            if thread_ts is not None:
                message["thread_ts"] = thread_ts
            self._append_message(channel_id, message)
        return {"ok": True, "files": [self._file_object(f) for f in done]}

    def _thread_root(self, channel: str, thread_ts: str) -> str:
        """Slack files a reply to a reply under the thread's parent."""
        target = self._find_message(channel, thread_ts)
        return str(target.get("thread_ts", thread_ts)) if target else thread_ts

    # -- HTTP: files, uploads, response_url ---------------------------------------------------

    async def _on_download(self, request: web.Request) -> web.StreamResponse:
        at = asyncio.get_running_loop().time()
        authorization = request.headers.get("Authorization")
        key = request.match_info["key"]
        file_id = key.removeprefix(f"{TEAM_ID}-")
        args = {**request.query, "file_id": file_id, "name": request.match_info["name"]}

        def answered(status: int) -> None:
            self._record(Call("download", args, status, authorization, at))

        file = self._files.get(file_id) if key.startswith(f"{TEAM_ID}-") else None
        failure = self._take_failure("download")
        if failure is not None:
            body, status, headers = _failure_answer(failure)
            answered(status)
            return web.json_response(body, status=status, headers=headers)
        if file is None:
            answered(404)
            return web.Response(status=404, text=_NOT_FOUND_PAGE, content_type="text/html")
        if _bearer(authorization) != BOT_TOKEN or file.html:
            answered(200)
            return web.Response(text=_LOGIN_PAGE, content_type="text/html")
        if file.redirect_to is not None:
            answered(302)
            raise web.HTTPFound(file.redirect_to)

        mimetype, _ = _MIMETYPES.get(file.filetype, ("application/octet-stream", ""))
        response = web.StreamResponse(
            headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(file.name)}"}
        )
        response.content_type = mimetype
        response.content_length = len(file.content)
        answered(200)
        await response.prepare(request)
        chunks = range(0, len(file.content), max(1, file.chunk_size))
        content = memoryview(file.content)  # slices without copies: a bench serves 600 MB
        try:
            for i, start in enumerate(chunks):
                if i and file.chunk_delay_s:
                    await asyncio.sleep(file.chunk_delay_s)  # behaviour (a slow link), not sync
                await response.write(content[start : start + file.chunk_size])
            await response.write_eof()
        except ConnectionResetError:
            pass  # the client gave up mid-download; that is its business
        return response

    async def _on_upload(self, request: web.Request) -> web.Response:
        at = asyncio.get_running_loop().time()
        authorization = request.headers.get("Authorization")
        file_id = request.match_info["file_id"]
        # slack-sdk posts the raw bytes (application/octet-stream); older clients and curl
        # examples send multipart with one file part, so take either.
        if request.content_type == "multipart/form-data":
            content = b""
            form = await request.post()
            for value in form.values():
                if isinstance(value, web.FileField):
                    content = value.file.read()
                    break
        else:
            content = await request.read()
        args = {"file_id": file_id, "length": len(content), "content_type": request.content_type}

        failure = self._take_failure("upload")
        upload = self.uploads.get(file_id)
        if failure is not None:
            status, text = failure.status, failure.error
        elif upload is None:
            status, text = 404, "file_not_found"
        else:
            upload["content"] = content
            upload["uploaded"] = True
            status, text = 200, f"OK - {len(content)}"
        self._record(Call("upload", args, status, authorization, at))
        return web.Response(status=status, text=text)

    async def _on_respond(self, request: web.Request) -> web.Response:
        at = asyncio.get_running_loop().time()
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
        self._record(Call("response_url", args, status, authorization, at))
        return web.Response(status=status, text=text)

    # -- WebSocket: Socket Mode --------------------------------------------------------------

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
        self._changed()
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    self._on_socket_message(msg.data)
        finally:
            self._sockets.remove(ws)
            self._changed()
        return ws

    def _on_socket_message(self, data: str) -> None:
        try:
            message = json.loads(data)
        except ValueError:
            return
        if isinstance(message, dict) and "envelope_id" in message:
            self.acks[str(message["envelope_id"])] = message
            self._changed()


# -- module helpers ------------------------------------------------------------------------------


async def _read_args(request: web.Request) -> dict[str, Any]:
    """Query + form + JSON body, as Slack merges them. Raises ValueError on a broken body."""
    args: dict[str, Any] = dict(request.query)
    if request.body_exists:
        if request.content_type == "application/json":
            body = await request.json()
            if not isinstance(body, dict):
                raise ValueError("the JSON body is not an object")
            args.update(body)
        elif request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            form = await request.post()
            args.update({k: v for k, v in form.items() if isinstance(v, str)})
    for key in _JSON_ARGS & args.keys():
        value = args[key]
        if isinstance(value, str) and value[:1] in ("[", "{"):
            # Broken JSON stays a string; the validators then answer invalid_blocks_format etc.
            with contextlib.suppress(ValueError):
                args[key] = json.loads(value)
    return args


def _bearer(authorization: str | None) -> str | None:
    if authorization and authorization[:7].lower() == "bearer ":
        return authorization[7:].strip()
    return None


def _auth_error(method: str, authorization: str | None, args: Mapping[str, Any]) -> str | None:
    """Slack's answer to a missing, unknown or wrong-kind token; None when it is right."""
    token = _bearer(authorization) or args.get("token")
    if not token:
        return "not_authed"
    expected = APP_TOKEN if method == "apps.connections.open" else BOT_TOKEN
    if token == expected:
        return None
    if token in (APP_TOKEN, BOT_TOKEN):
        return "not_allowed_token_type"
    return "invalid_auth"


def _error(code: str, **extra: Any) -> dict[str, Any]:
    return {"ok": False, "error": code, **extra}


def _failure_answer(failure: _Failure) -> tuple[dict[str, Any], int, dict[str, str]]:
    headers = {"Retry-After": str(failure.retry_after)} if failure.status == 429 else {}
    return _error(failure.error), failure.status, headers


def _int_arg(args: Mapping[str, Any], key: str) -> int | None:
    try:
        return int(args[key])
    except (KeyError, TypeError, ValueError):
        return None


def _page(items: list[dict[str, Any]], args: Mapping[str, Any], *, key: str) -> dict[str, Any]:
    """One page of `items` in cursor order, with Slack's opaque base64 next_cursor."""
    limit = _int_arg(args, "limit") or 100
    start = 0
    if args.get("cursor"):
        try:
            start = int(base64.b64decode(str(args["cursor"])).decode().removeprefix("next:"))
        except ValueError:
            return _error("invalid_cursor")
    page = items[start : start + limit]
    has_more = start + limit < len(items)
    next_cursor = base64.b64encode(f"next:{start + limit}".encode()).decode() if has_more else ""
    return {
        "ok": True,
        key: [copy.deepcopy(m) for m in page],
        "has_more": has_more,
        "pin_count": 0,
        "response_metadata": {"next_cursor": next_cursor},
    }


def _is_top_level(message: Mapping[str, Any]) -> bool:
    return message.get("thread_ts") in (None, message["ts"])


def _is_reply_to(message: Mapping[str, Any], ts: str) -> bool:
    return message.get("thread_ts") == ts and message["ts"] != ts


def _message_problem(
    args: Mapping[str, Any], *, require_content: bool, tables: bool = True
) -> dict[str, Any] | None:
    """Slack's error answer for a message it would refuse, or None."""
    text = args.get("text")
    if isinstance(text, str) and len(text) > MAX_TEXT_CHARS:
        return _error("msg_too_long")
    if "blocks" in args:
        blocks = args["blocks"]
        if not isinstance(blocks, list):
            return _error("invalid_blocks_format")
        errors = _block_errors(blocks, tables=tables)
        if errors:
            return _error(
                "invalid_blocks",
                errors=errors,
                response_metadata={"messages": [f"[ERROR] {e}" for e in errors]},
            )
    if require_content and not (text or args.get("blocks") or args.get("attachments")):
        return _error("no_text")
    return None


def _block_errors(blocks: list[Any], *, tables: bool = True) -> list[str]:
    """What Slack says about blocks it refuses, in its words; [] when they are fine."""
    errors: list[str] = []
    if len(blocks) > MAX_BLOCKS:
        errors.append(f"must be less than {MAX_BLOCKS + 1} items [json-pointer:/blocks]")
    seen_table = False
    block_ids: set[str] = set()
    for i, block in enumerate(blocks):
        at = f"/blocks/{i}"
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            errors.append(f"missing required field: type [json-pointer:{at}]")
            continue
        block_id = block.get("block_id")
        if isinstance(block_id, str):
            if len(block_id) > MAX_BLOCK_ID_CHARS:
                errors.append(
                    f"must be less than {MAX_BLOCK_ID_CHARS + 1} characters "
                    f"[json-pointer:{at}/block_id]"
                )
            if block_id in block_ids:
                errors.append(f"duplicate block_id [json-pointer:{at}/block_id]")
            block_ids.add(block_id)
        match block["type"]:
            case "section":
                text, fields = block.get("text"), block.get("fields")
                if text is None and not fields:
                    errors.append(f"must provide either text or fields [json-pointer:{at}]")
                if text is not None:
                    _check_text(text, MAX_SECTION_TEXT_CHARS, f"{at}/text", errors)
                if fields is not None:
                    if not isinstance(fields, list):
                        errors.append(f"must be an array [json-pointer:{at}/fields]")
                        continue
                    if len(fields) > MAX_SECTION_FIELDS:
                        errors.append(
                            f"must be less than {MAX_SECTION_FIELDS + 1} items "
                            f"[json-pointer:{at}/fields]"
                        )
                    for j, item in enumerate(fields):
                        _check_text(item, MAX_FIELD_CHARS, f"{at}/fields/{j}", errors)
            case "header":
                _check_text(
                    block.get("text"), MAX_HEADER_CHARS, f"{at}/text", errors, plain_only=True
                )
            case "context":
                elements = block.get("elements")
                if not isinstance(elements, list) or not elements:
                    errors.append(f"must provide elements [json-pointer:{at}/elements]")
                elif len(elements) > MAX_CONTEXT_ELEMENTS:
                    errors.append(
                        f"must be less than {MAX_CONTEXT_ELEMENTS + 1} items "
                        f"[json-pointer:{at}/elements]"
                    )
            case "table":
                if not tables:
                    errors.append(f"unsupported type: table [json-pointer:{at}]")
                    continue
                if seen_table:
                    errors.append(f"only one table is allowed per message [json-pointer:{at}]")
                seen_table = True
                _check_table(block, at, errors)
            case "divider":
                pass
            case other:
                errors.append(f"unsupported type: {other} [json-pointer:{at}]")
    return errors


def _check_table(block: Mapping[str, Any], at: str, errors: list[str]) -> None:
    rows = block.get("rows")
    if not isinstance(rows, list) or not rows:
        errors.append(f"must provide rows [json-pointer:{at}/rows]")
        return
    if len(rows) > MAX_TABLE_ROWS:
        errors.append(f"must be less than {MAX_TABLE_ROWS + 1} items [json-pointer:{at}/rows]")
    for i, row in enumerate(rows):
        if not isinstance(row, list) or not row or len(row) > MAX_TABLE_CELLS:
            errors.append(f"a row holds 1 to {MAX_TABLE_CELLS} cells [json-pointer:{at}/rows/{i}]")
            continue
        for j, cell in enumerate(row):
            if not isinstance(cell, dict) or cell.get("type") not in ("raw_text", "rich_text"):
                errors.append(f"unsupported cell type [json-pointer:{at}/rows/{i}/{j}]")
            elif cell["type"] == "raw_text" and not (
                isinstance(cell.get("text"), str) and cell["text"]
            ):
                errors.append(f"must be more than 0 characters [json-pointer:{at}/rows/{i}/{j}]")
    settings = block.get("column_settings", [])
    if not isinstance(settings, list) or len(settings) > MAX_TABLE_CELLS:
        errors.append(f"at most {MAX_TABLE_CELLS} column settings [json-pointer:{at}]")


def _check_text(
    obj: Any, limit: int, at: str, errors: list[str], *, plain_only: bool = False
) -> None:
    kinds = ("plain_text",) if plain_only else ("plain_text", "mrkdwn")
    if not isinstance(obj, dict) or obj.get("type") not in kinds:
        errors.append(f"must be a text object of type {' or '.join(kinds)} [json-pointer:{at}]")
        return
    text = obj.get("text")
    if not isinstance(text, str) or not text:
        errors.append(f"must be more than 0 characters [json-pointer:{at}/text]")
    elif len(text) > limit:
        errors.append(f"must be less than {limit + 1} characters [json-pointer:{at}/text]")

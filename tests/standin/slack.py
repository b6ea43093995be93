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

`SlackStandIn` is the one object tests hold; each concern is a module of its own:

    server.py       the aiohttp app, the record of calls, waiting, injected failures
    workspace.py    the bot's identity, channels, messages and threads, files, timestamps
    web_api.py      /api/<method>: arguments, tokens, the message and history methods
    blocks.py       Block Kit checked as Slack checks it
    files.py        files.info, downloads, and the bot's uploads
    socket_mode.py  the websocket, envelopes, acks, file events, slash commands' responses
"""

from __future__ import annotations

from types import TracebackType
from typing import Self

from tests.standin.files import Files
from tests.standin.server import Call, Recorder, Server
from tests.standin.socket_mode import SocketMode
from tests.standin.web_api import WebApi
from tests.standin.workspace import (
    APP_ID,
    APP_TOKEN,
    BOT_ID,
    BOT_TOKEN,
    BOT_USER_ID,
    TEAM_ID,
    Workspace,
)

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


class SlackStandIn:
    """Slack's Web API and Socket Mode on loopback, recording every call."""

    def __init__(self) -> None:
        self._server = Server()
        recorder = Recorder()
        workspace = Workspace(recorder)
        files = Files(workspace, recorder, self._server)
        self._socket_mode = SocketMode(workspace, recorder, self._server, files)
        self._web_api = WebApi(
            workspace,
            recorder,
            {
                **files.methods(),
                "apps.connections.open": self._socket_mode.apps_connections_open,
            },
        )
        self._routes = [*self._web_api.routes(), *self._socket_mode.routes(), *files.routes()]

        # What tests read: each the live record of the part that keeps it.
        self.calls = recorder.calls
        self.uploads = files.uploads
        self.ephemerals = self._web_api.ephemerals
        self.responses = self._socket_mode.responses
        self.acks = self._socket_mode.acks
        self.envelopes = self._socket_mode.envelopes

        # What tests do: each the method of the part that does it.
        self.calls_to = recorder.calls_to
        self.wait_until = recorder.wait_until
        self.wait_for_call = recorder.wait_for_call
        self.fail_next = recorder.fail_next
        self.add_channel = workspace.add_channel
        self.set_not_in_channel = workspace.set_not_in_channel
        self.post_user_message = workspace.post_user_message
        self.messages = workspace.messages
        self.thread = workspace.thread
        self.message = workspace.message
        self.add_file = files.add_file
        self.file_url = files.file_url
        self.wait_for_connection = self._socket_mode.wait_for_connection
        self.wait_ack = self._socket_mode.wait_ack
        self.send_envelope = self._socket_mode.send_envelope
        self.send_event = self._socket_mode.send_event
        self.send_command = self._socket_mode.send_command
        self.file_share_event = self._socket_mode.file_share_event
        self.file_shared_event = self._socket_mode.file_shared_event
        self.disconnect = self._socket_mode.disconnect
        self.drop_connections = self._socket_mode.drop_connections

    async def start(self) -> None:
        await self._server.start(self._routes)

    async def close(self) -> None:
        await self._socket_mode.close()
        await self._server.close()

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
        return self._server.root_url

    @property
    def base_url(self) -> str:
        """The Web API root: what SLACK_API_URL / AsyncWebClient(base_url=...) is set to."""
        return f"{self.root_url}/api/"

    @property
    def connections(self) -> int:
        """Socket Mode connections accepted in all."""
        return self._socket_mode.connections

    @property
    def refuse_tables(self) -> bool:
        """Set it to answer invalid_blocks to any message with a table block, as a workspace
        without table blocks does."""
        return self._web_api.refuse_tables

    @refuse_tables.setter
    def refuse_tables(self, refuse: bool) -> None:
        self._web_api.refuse_tables = refuse

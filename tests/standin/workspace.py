"""What the stand-in's Slack workspace holds: who the bot is, its channels and their
messages (threads as Slack files them), the files people shared, and the clock that stamps
each message's ts."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tests.standin.server import Recorder, error

BOT_TOKEN = "xoxb-test-bot-token"
APP_TOKEN = "xapp-test-app-token"
BOT_USER_ID = "UBOT"
BOT_ID = "BBOT"
TEAM_ID = "T0TEAM"
APP_ID = "A0APP"
TEAM_DOMAIN = "clinic"
DEFAULT_CHANNEL = "C0CLINIC"


@dataclass
class File:
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


@dataclass
class Channel:
    name: str
    member: bool = True
    messages: list[dict[str, Any]] = field(default_factory=list)  # all of them, oldest first


class Workspace:
    """Channels, messages and files; message timestamps and serial numbers."""

    def __init__(self, recorder: Recorder) -> None:
        self.files: dict[str, File] = {}
        self.channels: dict[str, Channel] = {DEFAULT_CHANNEL: Channel("clinic")}
        self._recorder = recorder
        self._serial = 0
        self._ts_serial = 0

    # -- what tests set up and read ----------------------------------------------------------

    def add_channel(self, channel: str, name: str | None = None) -> None:
        """Makes a channel exist (C0CLINIC, "clinic", always does); the bot is a member."""
        if channel not in self.channels:
            self.channels[channel] = Channel(name or channel.lower())
        elif name is not None:
            self.channels[channel].name = name

    def set_not_in_channel(self, channel: str) -> None:
        """conversations.history and chat.postMessage in `channel` answer not_in_channel."""
        self.add_channel(channel)
        self.channels[channel].member = False

    def post_user_message(self, channel: str, text: str, user: str = "UALICE") -> str:
        """A plain message from a person into the channel's history; returns its ts."""
        self.add_channel(channel)
        ts = self.next_ts()
        self.append_message(
            channel, {"type": "message", "user": user, "text": text, "ts": ts, "team": TEAM_ID}
        )
        self._recorder.changed()
        return ts

    def messages(self, channel: str) -> list[dict[str, Any]]:
        """Top-level messages (the bot's too), oldest first, as they read now."""
        return [copy.deepcopy(m) for m in self.all_messages(channel) if is_top_level(m)]

    def thread(self, channel: str, ts: str) -> list[dict[str, Any]]:
        """Replies in the thread under `ts`, oldest first, without the parent."""
        return [copy.deepcopy(m) for m in self.all_messages(channel) if is_reply_to(m, ts)]

    def message(self, channel: str, ts: str) -> dict[str, Any]:
        found = self.find_message(channel, ts)
        if found is None:
            raise KeyError(f"no message {ts} in {channel}")
        return copy.deepcopy(found)

    # -- what the Web API and the events build on --------------------------------------------

    def all_messages(self, channel: str) -> list[dict[str, Any]]:
        known = self.channels.get(channel)
        return known.messages if known else []

    def find_message(self, channel: str, ts: str) -> dict[str, Any] | None:
        return next((m for m in self.all_messages(channel) if m["ts"] == ts), None)

    def append_message(self, channel: str, message: dict[str, Any]) -> None:
        """Stores a message; a reply also updates its parent the way Slack does."""
        self.channels[channel].messages.append(message)
        thread_ts = message.get("thread_ts")
        parent = self.find_message(channel, thread_ts) if thread_ts else None
        if parent is not None and parent is not message:
            parent["thread_ts"] = thread_ts
            parent["reply_count"] = parent.get("reply_count", 0) + 1
            parent["latest_reply"] = message["ts"]
            users = parent.setdefault("reply_users", [])
            if message["user"] not in users:
                users.append(message["user"])
            parent["reply_users_count"] = len(users)

    def thread_root(self, channel: str, thread_ts: str) -> str:
        """Slack files a reply to a reply under the thread's parent."""
        target = self.find_message(channel, thread_ts)
        return str(target.get("thread_ts", thread_ts)) if target else thread_ts

    def known_channel(self, channel: str) -> Channel | None:
        # Slack opens a DM when a bot posts to a user ID, so those always exist.
        if channel[:1] in ("D", "U", "W"):
            self.add_channel(channel)
        return self.channels.get(channel)

    def share(self, file: File, channel: str) -> str:
        """The ts of the file's share in `channel`, making one up the first time."""
        if channel not in file.shares:
            file.shares[channel] = self.next_ts()
        return file.shares[channel]

    def next_ts(self) -> str:
        self._ts_serial += 1
        micros = 1_750_000_000_000_000 + self._ts_serial * 100
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    def next_serial(self) -> int:
        self._serial += 1
        return self._serial


def channel_refusal(channel: Channel | None) -> dict[str, Any]:
    """Slack's answer when the channel is unknown, or the bot is not in it."""
    return error("channel_not_found" if channel is None else "not_in_channel")


def is_top_level(message: Mapping[str, Any]) -> bool:
    return message.get("thread_ts") in (None, message["ts"])


def is_reply_to(message: Mapping[str, Any], ts: str) -> bool:
    return message.get("thread_ts") == ts and message["ts"] != ts

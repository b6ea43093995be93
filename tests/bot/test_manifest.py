"""manifest.yml and the code agree: events, command and scopes."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from bot.slack import listeners
from tests.helpers import ROOT

# The scope each Web API call and each event needs (https://api.slack.com/methods).
SCOPE_OF_CALL = {
    "chat_postMessage": "chat:write",
    "chat_update": "chat:write",
    "chat_postEphemeral": "chat:write",
    "files_info": "files:read",
    "files_upload_v2": "files:write",
    "conversations_history": {"channels:history", "groups:history"},
}
SCOPE_OF_EVENT = {
    "file_shared": "files:read",
    "message.channels": "channels:history",
    "message.groups": "groups:history",
}


def manifest() -> dict:
    return yaml.safe_load((ROOT / "manifest.yml").read_text())


def client_calls() -> set[str]:
    """Every Web API method the bot calls, read from its source."""
    calls: set[str] = set()
    for path in Path(ROOT / "bot").rglob("*.py"):
        if path.name == "s3.py":  # boto3's client, not Slack's
            continue
        calls |= set(re.findall(r"client\.(\w+)\(", path.read_text()))
    return calls - {"is_connected"}


def test_every_subscribed_event_has_a_listener_and_every_listener_is_subscribed() -> None:
    """The bot events in the manifest are exactly the ones the listeners handle."""
    assert set(manifest()["settings"]["event_subscriptions"]["bot_events"]) == set(
        listeners.HANDLED_EVENTS
    )


def test_the_slash_command_is_declared() -> None:
    """/process-events is in the manifest, as the listener expects."""
    declared = {c["command"] for c in manifest()["features"]["slash_commands"]}
    assert declared == set(listeners.COMMANDS)


def test_scopes_are_exactly_what_the_calls_and_events_need() -> None:
    """No scope missing for a call the code makes, and none the code never uses."""
    calls = client_calls()
    unknown = calls - set(SCOPE_OF_CALL)
    assert not unknown, f"add the scope for {unknown} to SCOPE_OF_CALL and the manifest"
    needed = {"commands"}
    for call in calls:
        scope = SCOPE_OF_CALL[call]
        needed |= set(scope) if isinstance(scope, set) else {str(scope)}
    for event in listeners.HANDLED_EVENTS:
        needed.add(SCOPE_OF_EVENT[event])
    assert set(manifest()["oauth_config"]["scopes"]["bot"]) == needed


def test_it_is_a_socket_mode_app() -> None:
    """Socket Mode on, no request URLs needed."""
    settings = manifest()["settings"]
    assert settings["socket_mode_enabled"] is True
    assert "request_url" not in settings["event_subscriptions"]

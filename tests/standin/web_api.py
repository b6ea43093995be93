"""The Web API at /api/<method>: arguments read as Slack merges them (query, form, JSON),
tokens checked by kind, injected failures given, then the method answers. The methods for
messages and history live here; files and Socket Mode bring their own."""

from __future__ import annotations

import base64
import contextlib
import copy
import json
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web

from tests.standin.blocks import message_problem
from tests.standin.server import Answer, Call, Recorder, bearer, error, int_arg, now
from tests.standin.workspace import (
    APP_ID,
    APP_TOKEN,
    BOT_ID,
    BOT_TOKEN,
    BOT_USER_ID,
    TEAM_DOMAIN,
    TEAM_ID,
    Workspace,
    channel_refusal,
    is_reply_to,
    is_top_level,
)

Method = Callable[[dict[str, Any]], dict[str, Any]]

# Args that slack-sdk sends as JSON strings inside form or query data.
_JSON_ARGS = frozenset({"blocks", "attachments", "files", "metadata"})


class WebApi:
    """Answers /api/<method> from its own methods and the ones it is given."""

    def __init__(
        self, workspace: Workspace, recorder: Recorder, methods: dict[str, Method]
    ) -> None:
        self.ephemerals: list[dict[str, Any]] = []
        # Set to answer invalid_blocks to any message with a table block, as a workspace
        # without table blocks does.
        self.refuse_tables = False
        self._workspace = workspace
        self._recorder = recorder
        self._methods: dict[str, Method] = {
            "auth.test": self._auth_test,
            "conversations.history": self._conversations_history,
            "conversations.replies": self._conversations_replies,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.postEphemeral": self._chat_post_ephemeral,
            **methods,
        }

    def routes(self) -> list[web.RouteDef]:
        return [web.route("*", "/api/{method}", self._on_api)]

    async def _on_api(self, request: web.Request) -> web.Response:
        at = now()
        method = request.match_info["method"]
        authorization = request.headers.get("Authorization")
        headers: dict[str, str] = {}
        status = 200
        try:
            args = await _read_args(request)
        except ValueError:
            args, body = {}, error("invalid_json")
        else:
            body, status, headers = self._answer(method, args, authorization)
        self._recorder.record(Call(method, args, status, authorization, at))
        return web.json_response(body, status=status, headers=headers)

    def _answer(self, method: str, args: dict[str, Any], authorization: str | None) -> Answer:
        handler = self._methods.get(method)
        if handler is None:
            return error("unknown_method", req_method=method), 200, {}
        auth_error = _auth_error(method, authorization, args)
        if auth_error is not None:
            return error(auth_error), 200, {}
        failure = self._recorder.take_failure(method)
        if failure is not None:
            return failure.answer()
        return handler(args), 200, {}

    # -- methods -----------------------------------------------------------------------------

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

    def _conversations_history(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._workspace.known_channel(str(args.get("channel", "")))
        if channel is None or not channel.member:
            return channel_refusal(channel)
        newest_first = [m for m in reversed(channel.messages) if is_top_level(m)]
        if "latest" in args:
            newest_first = [m for m in newest_first if float(m["ts"]) < float(args["latest"])]
        if "oldest" in args:
            newest_first = [m for m in newest_first if float(m["ts"]) > float(args["oldest"])]
        return _page(newest_first, args, key="messages")

    def _conversations_replies(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._workspace.known_channel(str(args.get("channel", "")))
        if channel is None or not channel.member:
            return channel_refusal(channel)
        ts = str(args.get("ts", ""))
        parent = self._workspace.find_message(str(args["channel"]), ts)
        if parent is None:
            return error("thread_not_found")
        oldest_first = [parent, *(m for m in channel.messages if is_reply_to(m, ts))]
        return _page(oldest_first, args, key="messages")

    def _chat_post_message(self, args: dict[str, Any]) -> dict[str, Any]:
        channel_id = str(args.get("channel", ""))
        channel = self._workspace.known_channel(channel_id)
        if channel is None or not channel.member:
            return channel_refusal(channel)
        problem = message_problem(args, require_content=True, tables=not self.refuse_tables)
        if problem is not None:
            return problem
        message: dict[str, Any] = {
            "type": "message",
            "user": BOT_USER_ID,
            "bot_id": BOT_ID,
            "app_id": APP_ID,
            "team": TEAM_ID,
            "text": args.get("text", ""),
            "ts": self._workspace.next_ts(),
        }
        for key in ("blocks", "attachments", "metadata"):
            if key in args:
                message[key] = args[key]
        if args.get("thread_ts"):
            message["thread_ts"] = self._workspace.thread_root(channel_id, str(args["thread_ts"]))
        self._workspace.append_message(channel_id, message)
        return {"ok": True, "channel": channel_id, "ts": message["ts"], "message": dict(message)}

    def _chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        channel_id = str(args.get("channel", ""))
        if self._workspace.known_channel(channel_id) is None:
            return error("channel_not_found")
        message = self._workspace.find_message(channel_id, str(args.get("ts", "")))
        if message is None:
            return error("message_not_found")
        if message.get("user") != BOT_USER_ID:
            return error("cant_update_message")
        problem = message_problem(args, require_content=False, tables=not self.refuse_tables)
        if problem is not None:
            return problem
        # Like Slack: fields left out keep their value; "blocks": [] removes the blocks.
        for key in ("text", "blocks", "attachments", "metadata"):
            if key in args:
                message[key] = args[key]
        message["edited"] = {"user": BOT_USER_ID, "ts": self._workspace.next_ts()}
        return {
            "ok": True,
            "channel": channel_id,
            "ts": message["ts"],
            "text": message.get("text", ""),
            "message": dict(message),
        }

    def _chat_post_ephemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._workspace.known_channel(str(args.get("channel", "")))
        if channel is None:
            return error("channel_not_found")
        if not args.get("user"):
            return error("user_not_found")
        problem = message_problem(args, require_content=True)
        if problem is not None:
            return problem
        self.ephemerals.append(args)
        return {"ok": True, "message_ts": self._workspace.next_ts()}


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


def _auth_error(method: str, authorization: str | None, args: Mapping[str, Any]) -> str | None:
    """Slack's answer to a missing, unknown or wrong-kind token; None when it is right."""
    token = bearer(authorization) or args.get("token")
    if not token:
        return "not_authed"
    expected = APP_TOKEN if method == "apps.connections.open" else BOT_TOKEN
    if token == expected:
        return None
    if token in (APP_TOKEN, BOT_TOKEN):
        return "not_allowed_token_type"
    return "invalid_auth"


def _page(items: list[dict[str, Any]], args: Mapping[str, Any], *, key: str) -> dict[str, Any]:
    """One page of `items` in cursor order, with Slack's opaque base64 next_cursor."""
    limit = int_arg(args, "limit") or 100
    start = 0
    if args.get("cursor"):
        try:
            start = int(base64.b64decode(str(args["cursor"])).decode().removeprefix("next:"))
        except ValueError:
            return error("invalid_cursor")
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

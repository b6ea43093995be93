"""The Slack stand-in speaks the real protocol: driven here by slack-sdk's own, unmodified clients."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.async_client import AsyncBaseSocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from tests.standin.slack import (
    APP_TOKEN,
    BOT_ID,
    BOT_TOKEN,
    BOT_USER_ID,
    TEAM_ID,
    SlackStandIn,
)

CSV = b"event_id,clinic_id\n1,c1\n2,c2\n"


@dataclass
class SocketApp:
    """A real Socket Mode client that acks every envelope and keeps what it received."""

    client: SocketModeClient
    requests: list[SocketModeRequest] = field(default_factory=list)
    received: asyncio.Event = field(default_factory=asyncio.Event)


@pytest.fixture
async def slack() -> AsyncIterator[SlackStandIn]:
    async with SlackStandIn() as standin:
        yield standin


@pytest.fixture
def web(slack: SlackStandIn) -> AsyncWebClient:
    return AsyncWebClient(token=BOT_TOKEN, base_url=slack.base_url)


@pytest.fixture
async def socket_app(slack: SlackStandIn) -> AsyncIterator[SocketApp]:
    client = SocketModeClient(
        app_token=APP_TOKEN, web_client=AsyncWebClient(base_url=slack.base_url)
    )
    app = SocketApp(client)

    async def on_request(client: AsyncBaseSocketModeClient, request: SocketModeRequest) -> None:
        app.requests.append(request)
        app.received.set()
        await client.send_socket_mode_response(SocketModeResponse(request.envelope_id))

    client.socket_mode_request_listeners.append(on_request)
    await client.connect()  # slack-sdk leaves it untyped
    await slack.wait_for_connection()
    yield app
    await client.close()


async def get(url: str, token: str | None = None) -> tuple[aiohttp.ClientResponse, bytes]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as response:
        return response, await response.read()


# -- Web API ---------------------------------------------------------------------------------------


async def test_auth_test_names_the_bot(slack: SlackStandIn, web: AsyncWebClient) -> None:
    """auth.test answers the bot's identity and the call is recorded with its bearer token."""
    response = await web.auth_test()

    assert (response["user_id"], response["bot_id"], response["team_id"]) == (
        BOT_USER_ID,
        BOT_ID,
        TEAM_ID,
    )
    assert response["is_enterprise_install"] is False
    [call] = slack.calls_to("auth.test")
    assert (call.status, call.authorization) == (200, f"Bearer {BOT_TOKEN}")


@pytest.mark.parametrize(
    ("token", "error"),
    [
        ("xoxb-someone-else", "invalid_auth"),
        (None, "not_authed"),
        (APP_TOKEN, "not_allowed_token_type"),
    ],
)
async def test_bad_tokens_are_refused(slack: SlackStandIn, token: str | None, error: str) -> None:
    """A wrong, missing or wrong-kind token gets Slack's error, with HTTP 200."""
    client = AsyncWebClient(token=token, base_url=slack.base_url)

    with pytest.raises(SlackApiError) as raised:
        await client.auth_test()

    assert raised.value.response["error"] == error
    assert raised.value.response.status_code == 200


async def test_unknown_method_is_refused(web: AsyncWebClient) -> None:
    """A method the stand-in does not know answers unknown_method."""
    with pytest.raises(SlackApiError, match="unknown_method"):
        await web.api_call("reactions.add", json={"name": "tada"})


async def test_files_info_gives_the_shared_file(slack: SlackStandIn, web: AsyncWebClient) -> None:
    """files.info answers the file object add_file returned, with a local download URL."""
    added = slack.add_file("F0CSV", "week 1.csv", CSV)

    response = await web.files_info(file="F0CSV")

    assert response["file"] == added
    assert (added["mimetype"], added["filetype"], added["size"]) == ("text/csv", "csv", len(CSV))
    assert added["url_private_download"] == (
        f"{slack.root_url}/files-pri/{TEAM_ID}-F0CSV/download/week%201.csv"
    )
    [share] = added["shares"]["public"]["C0CLINIC"]
    assert slack.messages("C0CLINIC")[0]["ts"] == share["ts"]


async def test_files_info_of_an_unknown_file_fails(web: AsyncWebClient) -> None:
    """files.info of an id nobody shared answers file_not_found."""
    with pytest.raises(SlackApiError) as raised:
        await web.files_info(file="F0NOPE")

    assert raised.value.response["error"] == "file_not_found"


async def test_posts_and_updates_show_in_channel_and_thread(
    slack: SlackStandIn, web: AsyncWebClient
) -> None:
    """chat.postMessage and chat.update land where a user would see them."""
    parent = slack.post_user_message("C0CLINIC", "here is the export")

    top = await web.chat_postMessage(channel="C0CLINIC", text="hello")
    reply = await web.chat_postMessage(channel="C0CLINIC", text="working…", thread_ts=parent)
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*done*"}}]
    await web.chat_update(channel="C0CLINIC", ts=reply["ts"], text="done", blocks=blocks)

    assert [m["text"] for m in slack.messages("C0CLINIC")] == ["here is the export", "hello"]
    assert top["message"]["user"] == BOT_USER_ID
    assert top["ts"] > parent
    [updated] = slack.thread("C0CLINIC", parent)
    assert (updated["text"], updated["blocks"], updated["bot_id"]) == ("done", blocks, BOT_ID)
    assert slack.message("C0CLINIC", parent)["reply_count"] == 1
    [call] = await slack.wait_for_call("chat.update")
    assert call.args["blocks"] == blocks


async def test_update_of_a_missing_message_fails(web: AsyncWebClient) -> None:
    """chat.update needs the ts of an existing message."""
    with pytest.raises(SlackApiError, match="message_not_found"):
        await web.chat_update(channel="C0CLINIC", ts="1.000000", text="x")


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text}


@pytest.mark.parametrize(
    "blocks",
    [
        [section("x")] * 51,
        [section("x" * 3001)],
        [{"type": "section", "fields": [plain("f")] * 11}],
        [{"type": "section", "fields": [plain("f" * 2001)]}],
        [{"type": "header", "text": plain("h" * 151)}],
        [{"type": "context", "elements": [plain("c")] * 11}],
    ],
    ids=["51-blocks", "section-text", "11-fields", "long-field", "header", "context"],
)
async def test_blocks_over_slack_limits_are_refused(
    slack: SlackStandIn, web: AsyncWebClient, blocks: list[dict[str, Any]]
) -> None:
    """Blocks Slack would refuse answer invalid_blocks, on post and on update alike."""
    posted = await web.chat_postMessage(channel="C0CLINIC", text="ok")

    with pytest.raises(SlackApiError) as on_post:
        await web.chat_postMessage(channel="C0CLINIC", text="t", blocks=blocks)
    with pytest.raises(SlackApiError) as on_update:
        await web.chat_update(channel="C0CLINIC", ts=posted["ts"], text="t", blocks=blocks)

    assert on_post.value.response["error"] == on_update.value.response["error"] == "invalid_blocks"
    assert slack.message("C0CLINIC", posted["ts"])["text"] == "ok"


async def test_blocks_at_slack_limits_are_accepted(web: AsyncWebClient) -> None:
    """Blocks exactly at every limit go through."""
    blocks = [
        {"type": "header", "text": plain("h" * 150)},
        section("x" * 3000),
        {"type": "section", "fields": [plain("f" * 2000)] * 10},
        {"type": "context", "elements": [plain("c")] * 10},
        *[section("x")] * 46,
    ]

    await web.chat_postMessage(channel="C0CLINIC", text="t" * 40_000, blocks=blocks)


async def test_overlong_text_is_refused(web: AsyncWebClient) -> None:
    """Text over 40,000 characters answers msg_too_long."""
    with pytest.raises(SlackApiError, match="msg_too_long"):
        await web.chat_postMessage(channel="C0CLINIC", text="t" * 40_001)


async def test_rate_limited_call_succeeds_with_the_retry_handler(slack: SlackStandIn) -> None:
    """A 429 carries Retry-After, and slack-sdk's rate-limit handler retries after it."""
    slack.fail_next("chat.postMessage", retry_after=0)
    client = AsyncWebClient(
        token=BOT_TOKEN,
        base_url=slack.base_url,
        retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=1)],
    )

    await client.chat_postMessage(channel="C0CLINIC", text="hi")

    assert [c.status for c in slack.calls_to("chat.postMessage")] == [429, 200]
    assert [m["text"] for m in slack.messages("C0CLINIC")] == ["hi"]


async def test_injected_failures_reach_the_caller(slack: SlackStandIn, web: AsyncWebClient) -> None:
    """Without a retry handler a 429 raises with its header; status=200 is a Slack-style error."""
    slack.fail_next("chat.update", retry_after=7)
    slack.fail_next("files.info", status=200, error="internal_error")

    with pytest.raises(SlackApiError) as limited:
        await web.chat_update(channel="C0CLINIC", ts="1.0", text="x")
    with pytest.raises(SlackApiError) as failed:
        await web.files_info(file="F0ANY")

    assert limited.value.response.status_code == 429
    assert limited.value.response.headers["Retry-After"] == "7"
    assert limited.value.response["error"] == "ratelimited"
    assert (failed.value.response.status_code, failed.value.response["error"]) == (
        200,
        "internal_error",
    )


async def test_files_upload_v2_lands_in_the_thread(
    slack: SlackStandIn, web: AsyncWebClient
) -> None:
    """files_upload_v2 with thread_ts stores the bytes and shows the file in that thread."""
    parent = slack.post_user_message("C0CLINIC", "the export")

    response = await web.files_upload_v2(
        channel="C0CLINIC",
        thread_ts=parent,
        content=b"week,revenue\n",
        filename="report.csv",
        title="Weekly report",
    )

    file_id = response["file"]["id"]
    upload = slack.uploads[file_id]
    assert (upload["content"], upload["title"], upload["thread_ts"], upload["completed"]) == (
        b"week,revenue\n",
        "Weekly report",
        parent,
        True,
    )
    [message] = slack.thread("C0CLINIC", parent)
    assert [f["id"] for f in message["files"]] == [file_id]
    assert [c.method for c in slack.calls] == [
        "files.getUploadURLExternal",
        "upload",
        "files.completeUploadExternal",
    ]
    # The upload URL is pre-signed: slack-sdk sends it raw bytes and no token.
    [upload_call] = slack.calls_to("upload")
    assert upload_call.authorization is None
    assert upload_call.args["content_type"] == "application/octet-stream"
    assert [m["ts"] for m in slack.messages("C0CLINIC")] == [parent]


async def test_download_needs_the_bot_token(slack: SlackStandIn) -> None:
    """With the bot token the file's bytes come back; without it, Slack's HTML login page."""
    url = slack.add_file("F0CSV", "events.csv", CSV)["url_private_download"]

    with_token, content = await get(url, BOT_TOKEN)
    without_token, page = await get(url)

    assert (with_token.status, with_token.content_type, content) == (200, "text/csv", CSV)
    assert (without_token.status, without_token.content_type) == (200, "text/html")
    assert b"Sign in" in page
    assert [c.authorization for c in slack.calls_to("download")] == [f"Bearer {BOT_TOKEN}", None]


async def test_download_streams_in_chunks(slack: SlackStandIn) -> None:
    """A slow file streams in chunk_size pieces with a Content-Length."""
    url = slack.add_file("F0SLOW", "slow.csv", CSV, chunk_size=8, chunk_delay_s=0.01)[
        "url_private_download"
    ]
    chunks: list[bytes] = []

    headers = {"Authorization": f"Bearer {BOT_TOKEN}"}
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as response:
        assert response.content_length == len(CSV)
        async for chunk in response.content.iter_any():
            chunks.append(chunk)

    assert b"".join(chunks) == CSV
    assert len(chunks) > 1


async def test_download_redirect_keeps_the_token_only_on_the_same_origin(
    slack: SlackStandIn,
) -> None:
    """aiohttp follows a 302 with the token to the same origin, and drops it across origins."""
    target = slack.add_file("F0REAL", "real.csv", CSV)["url_private_download"]
    elsewhere = target.replace("127.0.0.1", "localhost")
    same = slack.add_file("F0SAME", "same.csv", b"", redirect_to=target)
    cross = slack.add_file("F0CROSS", "cross.csv", b"", redirect_to=elsewhere)

    _, content = await get(same["url_private_download"], BOT_TOKEN)
    _, page = await get(cross["url_private_download"], BOT_TOKEN)

    assert content == CSV
    assert b"Sign in" in page
    assert [(c.status, c.authorization) for c in slack.calls_to("download")] == [
        (302, f"Bearer {BOT_TOKEN}"),
        (200, f"Bearer {BOT_TOKEN}"),
        (302, f"Bearer {BOT_TOKEN}"),
        (200, None),
    ]


async def test_html_file_answers_the_login_page(slack: SlackStandIn) -> None:
    """html=True makes even an authorised download answer HTML, as a missing scope does."""
    url = slack.add_file("F0HTML", "events.csv", CSV, html=True)["url_private_download"]

    response, page = await get(url, BOT_TOKEN)

    assert (response.status, response.content_type) == (200, "text/html")
    assert page.startswith(b"<!DOCTYPE html>")


async def test_history_pages_newest_first(slack: SlackStandIn, web: AsyncWebClient) -> None:
    """conversations.history pages newest first through next_cursor."""
    sent = [slack.post_user_message("C0CLINIC", f"m{i}") for i in range(5)]
    seen: list[str] = []
    cursor = None

    while True:
        page = await web.conversations_history(channel="C0CLINIC", limit=2, cursor=cursor)
        seen += [m["ts"] for m in page["messages"]]
        cursor = page["response_metadata"]["next_cursor"]
        if not cursor:
            break

    assert seen == sent[::-1]
    assert len(slack.calls_to("conversations.history")) == 3
    assert slack.calls_to("conversations.history")[0].args["limit"] == "2"


async def test_history_shows_file_shares(slack: SlackStandIn, web: AsyncWebClient) -> None:
    """A shared file appears in history as a file_share message carrying the file."""
    slack.add_file("F0CSV", "events.csv", CSV)

    [message] = (await web.conversations_history(channel="C0CLINIC"))["messages"]

    assert (message["subtype"], message["files"][0]["id"]) == ("file_share", "F0CSV")


async def test_channel_errors(slack: SlackStandIn, web: AsyncWebClient) -> None:
    """A channel the bot left answers not_in_channel; an unknown one channel_not_found."""
    slack.set_not_in_channel("C0LEFT")

    with pytest.raises(SlackApiError, match="not_in_channel"):
        await web.conversations_history(channel="C0LEFT")
    with pytest.raises(SlackApiError, match="not_in_channel"):
        await web.chat_postMessage(channel="C0LEFT", text="hi")
    with pytest.raises(SlackApiError, match="channel_not_found"):
        await web.conversations_history(channel="C0NOWHERE")


async def test_ephemeral_is_recorded(slack: SlackStandIn, web: AsyncWebClient) -> None:
    """chat.postEphemeral args are kept for assertions."""
    answer = await web.chat_postEphemeral(channel="C0CLINIC", user="UALICE", text="only you")

    assert answer["message_ts"]
    assert [(e["user"], e["text"]) for e in slack.ephemerals] == [("UALICE", "only you")]


async def test_wait_for_call_timeout_names_what_was_seen(
    slack: SlackStandIn, web: AsyncWebClient
) -> None:
    """A wait that times out says which calls did arrive."""
    await web.auth_test()

    with pytest.raises(TimeoutError, match=r"chat\.update.*auth\.test 200"):
        await slack.wait_for_call("chat.update", timeout=0.05)


# -- Socket Mode ------------------------------------------------------------------------------------


async def test_command_envelope_is_acked(slack: SlackStandIn, socket_app: SocketApp) -> None:
    """A real SocketModeClient gets a slash command envelope and its ack comes back."""
    envelope_id = await slack.send_command("s3://bucket/events.csv")

    ack = await slack.wait_ack(envelope_id)

    assert ack == {"envelope_id": envelope_id}
    [request] = socket_app.requests
    assert (request.type, request.accepts_response_payload) == ("slash_commands", True)
    assert request.payload["command"] == "/process-events"
    assert request.payload["text"] == "s3://bucket/events.csv"
    assert request.payload["response_url"].startswith(f"{slack.root_url}/respond/")
    assert [c.authorization for c in slack.calls_to("apps.connections.open")] == [
        f"Bearer {APP_TOKEN}"
    ]


async def test_response_url_posts_are_recorded(slack: SlackStandIn, socket_app: SocketApp) -> None:
    """What an app POSTs to a command's response_url shows up in responses."""
    await slack.wait_ack(await slack.send_command())
    response_url = socket_app.requests[0].payload["response_url"]

    sent = await AsyncWebhookClient(response_url).send(text="queued", response_type="ephemeral")

    assert sent.status_code == 200
    assert slack.responses == [{"text": "queued", "response_type": "ephemeral"}]
    assert slack.calls_to("response_url")[0].args == slack.responses[0]


async def test_event_envelopes_look_like_slack(slack: SlackStandIn, socket_app: SocketApp) -> None:
    """Events arrive as event_callback payloads; a redelivery keeps the event_id."""
    slack.add_file("F0CSV", "events.csv", CSV)
    event = slack.file_share_event("F0CSV")

    first = await slack.send_event(event)
    again = await slack.send_event(event, retry_attempt=1)
    await slack.wait_ack(first)
    await slack.wait_ack(again)

    original, retry = socket_app.requests
    assert original.type == "events_api"
    assert original.payload["event"]["files"][0]["id"] == "F0CSV"
    assert original.payload["event"]["ts"] == slack.messages("C0CLINIC")[0]["ts"]
    assert original.payload["authorizations"][0]["user_id"] == BOT_USER_ID
    assert original.payload["event_id"] == retry.payload["event_id"]
    assert (retry.retry_attempt, retry.retry_reason) == (1, "timeout")


async def test_file_events_are_stable_and_make_channels_exist(
    slack: SlackStandIn, web: AsyncWebClient
) -> None:
    """Building an event twice gives the same event; sharing elsewhere adds that channel."""
    slack.add_file("F0CSV", "events.csv", CSV, user="UBOB")

    shared = slack.file_shared_event("F0CSV")
    elsewhere = slack.file_share_event("F0CSV", channel="C0OTHER")

    assert shared == slack.file_shared_event("F0CSV")
    assert (shared["file_id"], shared["channel_id"], shared["user_id"]) == (
        "F0CSV",
        "C0CLINIC",
        "UBOB",
    )
    assert shared["event_ts"] != slack.messages("C0CLINIC")[0]["ts"]  # no message ts in it
    assert elsewhere == slack.file_share_event("F0CSV", channel="C0OTHER")
    info = (await web.files_info(file="F0CSV"))["file"]
    assert info["channels"] == ["C0CLINIC", "C0OTHER"]
    assert info["shares"]["public"]["C0OTHER"][0]["ts"] == elsewhere["ts"]
    await web.chat_postMessage(channel="C0OTHER", text="hi", thread_ts=elsewhere["ts"])


async def test_disconnect_makes_the_client_reconnect(
    slack: SlackStandIn, socket_app: SocketApp
) -> None:
    """After a disconnect message the client opens a fresh URL and new envelopes still arrive."""
    await slack.disconnect()

    await slack.wait_for_connection(2)
    envelope_id = await slack.send_command("again")
    await slack.wait_ack(envelope_id)

    assert len(slack.calls_to("apps.connections.open")) == 2


async def test_close_closes_open_sockets(slack: SlackStandIn) -> None:
    """Closing the stand-in sends a close frame to connected sockets after their hello."""
    web = AsyncWebClient(base_url=slack.base_url)
    opened = await web.apps_connections_open(app_token=APP_TOKEN)

    async with aiohttp.ClientSession() as session, session.ws_connect(opened["url"]) as ws:
        hello = await ws.receive_json()
        await slack.close()
        closing = await ws.receive()

    assert hello["type"] == "hello"
    assert closing.type == aiohttp.WSMsgType.CLOSE

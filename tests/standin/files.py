"""Files both ways: what people share (files.info, and the download from url_private_download,
with the login page a wrong token gets), and what the bot uploads (files.getUploadURLExternal,
the POST of the bytes, files.completeUploadExternal sharing them into a channel or thread)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from aiohttp import web

from tests.standin.server import Call, Recorder, Server, bearer, error, int_arg, now
from tests.standin.workspace import (
    APP_ID,
    BOT_ID,
    BOT_TOKEN,
    BOT_USER_ID,
    DEFAULT_CHANNEL,
    TEAM_DOMAIN,
    TEAM_ID,
    File,
    Workspace,
    channel_refusal,
)

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


class Files:
    """Shared files and the bot's uploads, over the Web API and their own URLs."""

    def __init__(self, workspace: Workspace, recorder: Recorder, server: Server) -> None:
        self.uploads: dict[str, dict[str, Any]] = {}  # file id -> what the bot uploaded
        self._workspace = workspace
        self._recorder = recorder
        self._server = server

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/files-pri/{key}/download/{name}", self._on_download),
            web.get("/files-pri/{key}/{name}", self._on_download),
            web.post("/upload/{file_id}", self._on_upload),
        ]

    def methods(self) -> dict[str, Callable[[dict[str, Any]], dict[str, Any]]]:
        return {
            "files.info": self._files_info,
            "files.getUploadURLExternal": self._files_get_upload_url_external,
            "files.completeUploadExternal": self._files_complete_upload_external,
        }

    # -- what tests set up -------------------------------------------------------------------

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
        self._workspace.add_channel(channel)
        file = File(
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
        self._workspace.files[file_id] = file
        if in_history:
            share_ts = self._workspace.share(file, channel)
            self._workspace.append_message(
                channel,
                {
                    "type": "message",
                    "subtype": "file_share",
                    "text": "",
                    "files": [self.file_object(file)],
                    "upload": False,
                    "user": user,
                    "display_as_bot": False,
                    "ts": share_ts,
                },
            )
        self._recorder.changed()
        return self.file_object(file)

    def file_url(self, file_id: str) -> str:
        """The file's url_private_download."""
        file = self._workspace.files[file_id]
        return f"{self._server.root_url}/files-pri/{TEAM_ID}-{file.id}/download/{quote(file.name)}"

    def file_object(self, file: File) -> dict[str, Any]:
        """The file as Slack shows it in files.info, events and messages."""
        mimetype, pretty_type = _MIMETYPES.get(
            file.filetype, ("application/octet-stream", "Binary")
        )
        public: dict[str, list[dict[str, Any]]] = {}
        for channel, ts in file.shares.items():
            share: dict[str, Any] = {
                "ts": ts,
                "channel_name": self._workspace.channels[channel].name,
                "team_id": TEAM_ID,
                "share_user_id": file.user,
                "source": "UNKNOWN",
            }
            if file.thread_ts is not None:
                share["thread_ts"] = file.thread_ts
            public[channel] = [share]
        channels = list(file.shares) or ([file.channel] if file.channel else [])
        root_url = self._server.root_url
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
            "url_private": f"{root_url}/files-pri/{TEAM_ID}-{file.id}/{quote(file.name)}",
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

    # -- Web API -----------------------------------------------------------------------------

    def _files_info(self, args: dict[str, Any]) -> dict[str, Any]:
        file = self._workspace.files.get(str(args.get("file", "")))
        if file is None:
            return error("file_not_found")
        return {
            "ok": True,
            "file": self.file_object(file),
            "comments": [],
            "response_metadata": {"next_cursor": ""},
        }

    def _files_get_upload_url_external(self, args: dict[str, Any]) -> dict[str, Any]:
        filename = args.get("filename")
        length = int_arg(args, "length")
        if not filename:
            return error("invalid_arguments")
        if length is None or length < 1:
            return error("invalid_length")
        file_id = f"F0UP{self._workspace.next_serial():06d}"
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
        return {
            "ok": True,
            "upload_url": f"{self._server.root_url}/upload/{file_id}",
            "file_id": file_id,
        }

    def _files_complete_upload_external(self, args: dict[str, Any]) -> dict[str, Any]:
        items = args.get("files")
        if not isinstance(items, list) or not items:
            return error("invalid_arguments")
        channel_id = args.get("channel_id") or str(args.get("channels", "")).split(",")[0] or None
        thread_ts = args.get("thread_ts") or None
        if channel_id is not None:
            channel = self._workspace.known_channel(channel_id)
            if channel is None or not channel.member:
                return channel_refusal(channel)
            if thread_ts is not None:
                thread_ts = self._workspace.thread_root(channel_id, thread_ts)
        done = self._complete(items, channel_id, thread_ts)
        if done is None:
            return error("file_not_found")
        if channel_id is not None:
            self._share_uploads(done, channel_id, thread_ts, args.get("initial_comment", ""))
        return {"ok": True, "files": [self.file_object(f) for f in done]}

    def _complete(
        self, items: list[Any], channel_id: str | None, thread_ts: str | None
    ) -> list[File] | None:
        """The uploads named in `items`, now files of the workspace; None (and nothing
        kept) when one of them was never uploaded."""
        done: list[File] = []
        for item in items:
            upload = self.uploads.get(str(item.get("id")))
            if upload is None or not upload["uploaded"]:
                return None
            upload.update(
                title=item.get("title") or upload["filename"],
                channel_id=channel_id,
                thread_ts=thread_ts,
                completed=True,
            )
            done.append(
                File(
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
            self._workspace.files[file.id] = file
        return done

    def _share_uploads(
        self, done: list[File], channel_id: str, thread_ts: str | None, comment: str
    ) -> None:
        """The bot's message that shares the uploaded files in the channel (or thread)."""
        ts = self._workspace.next_ts()
        for file in done:
            file.shares[channel_id] = ts
        message: dict[str, Any] = {
            "type": "message",
            "subtype": "file_share",
            "text": comment,
            "files": [self.file_object(f) for f in done],
            "upload": True,
            "user": BOT_USER_ID,
            "bot_id": BOT_ID,
            "app_id": APP_ID,
            "display_as_bot": False,
            "ts": ts,
        }
        if thread_ts is not None:
            message["thread_ts"] = thread_ts
        self._workspace.append_message(channel_id, message)

    # -- HTTP: downloads and uploads ---------------------------------------------------------

    async def _on_download(self, request: web.Request) -> web.StreamResponse:
        at = now()
        authorization = request.headers.get("Authorization")
        key = request.match_info["key"]
        file_id = key.removeprefix(f"{TEAM_ID}-")
        args = {**request.query, "file_id": file_id, "name": request.match_info["name"]}

        def answered(status: int) -> None:
            self._recorder.record(Call("download", args, status, authorization, at))

        file = self._workspace.files.get(file_id) if key.startswith(f"{TEAM_ID}-") else None
        failure = self._recorder.take_failure("download")
        if failure is not None:
            body, status, headers = failure.answer()
            answered(status)
            return web.json_response(body, status=status, headers=headers)
        if file is None:
            answered(404)
            return web.Response(status=404, text=_NOT_FOUND_PAGE, content_type="text/html")
        if bearer(authorization) != BOT_TOKEN or file.html:
            answered(200)
            return web.Response(text=_LOGIN_PAGE, content_type="text/html")
        if file.redirect_to is not None:
            answered(302)
            raise web.HTTPFound(file.redirect_to)
        answered(200)
        return await _stream(request, file)

    async def _on_upload(self, request: web.Request) -> web.Response:
        at = now()
        authorization = request.headers.get("Authorization")
        file_id = request.match_info["file_id"]
        content = await _uploaded_bytes(request)
        args = {"file_id": file_id, "length": len(content), "content_type": request.content_type}

        failure = self._recorder.take_failure("upload")
        upload = self.uploads.get(file_id)
        if failure is not None:
            status, text = failure.status, failure.error
        elif upload is None:
            status, text = 404, "file_not_found"
        else:
            upload["content"] = content
            upload["uploaded"] = True
            status, text = 200, f"OK - {len(content)}"
        self._recorder.record(Call("upload", args, status, authorization, at))
        return web.Response(status=status, text=text)


async def _stream(request: web.Request, file: File) -> web.StreamResponse:
    """The file's bytes in its chunk size, `chunk_delay_s` apart (a slow link)."""
    mimetype, _ = _MIMETYPES.get(file.filetype, ("application/octet-stream", ""))
    response = web.StreamResponse(
        headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(file.name)}"}
    )
    response.content_type = mimetype
    response.content_length = len(file.content)
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


async def _uploaded_bytes(request: web.Request) -> bytes:
    # slack-sdk posts the raw bytes (application/octet-stream); older clients and curl
    # examples send multipart with one file part, so take either.
    if request.content_type != "multipart/form-data":
        return await request.read()
    form = await request.post()
    for value in form.values():
        if isinstance(value, web.FileField):
            return value.file.read()
    return b""

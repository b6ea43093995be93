"""Slack files: a file shared or named in Slack, streamed from Slack's hosts with the bot
token (and only to them), as a job's source."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import aiohttp

from bot.errors import DownloadError, NotCsvFileError, UnsupportedSourceError
from bot.sources import SourceInfo, is_csv_name
from bot.words import HTML_ANSWER

DOWNLOAD_CHUNK_BYTES = 1 << 20
MAX_REDIRECTS = 5
HTML_PREFIXES = (b"<!doctype html", b"<html", b"<head", b"<!--")
FILE_ID = re.compile(r"\bF[A-Z0-9]{6,}\b")
DOWNLOAD_TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=120)


class TokenHosts:
    """The hosts the bot token may be sent to: SLACK_API_URL's host and its siblings.

    For slack.com that is slack.com and any *.slack.com (files.slack.com serves downloads);
    for api.example.com it is example.com and *.example.com; an IP address is only itself.
    """

    def __init__(self, api_url: str) -> None:
        parts = urlsplit(api_url)
        self.scheme = parts.scheme
        host = (parts.hostname or "").lower()
        self.port = parts.port
        self.exact_only = _is_ip(host) or "." not in host
        labels = host.split(".")
        self.base = host if self.exact_only or len(labels) <= 2 else ".".join(labels[1:])

    def allows(self, url: str) -> bool:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        if parts.scheme not in ("https", self.scheme):
            return False
        if self.exact_only:
            return host == self.base and parts.port == self.port
        return host == self.base or host.endswith("." + self.base)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def parse_file_reference(text: str) -> str | None:
    """A Slack file ID from a bare ID, a file link, or Slack's `<link|label>` form."""
    text = text.strip().strip("<>").split("|", 1)[0]
    if re.fullmatch(r"F[A-Z0-9]{6,}", text):
        return text
    if not text.startswith(("http://", "https://")):
        return None
    match = FILE_ID.search(urlsplit(text).path)
    return match.group(0) if match else None


class SlackDownloader:
    """Streams `url_private_download` with the bot token, to Slack's hosts only."""

    def __init__(self, session: aiohttp.ClientSession, bot_token: str, api_url: str) -> None:
        self._session = session
        self._token = bot_token
        self._hosts = TokenHosts(api_url)

    async def stream(self, url: str) -> AsyncIterator[bytes]:
        for _ in range(MAX_REDIRECTS + 1):
            if not self._hosts.allows(url):
                raise DownloadError(
                    "the file's download address is not on Slack, so the Slack token was not sent there"
                )
            async with self._session.get(
                url,
                headers={"Authorization": f"Bearer {self._token}"},
                allow_redirects=False,
                timeout=DOWNLOAD_TIMEOUT,
            ) as response:
                if response.status in (301, 302, 303, 307, 308):
                    location = response.headers.get("Location")
                    if not location:
                        raise DownloadError("Slack redirected the download without saying where")
                    url = urljoin(url, location)
                    continue
                if response.status != 200:
                    raise DownloadError(_status_problem(response.status))
                if response.content_type == "text/html":
                    raise DownloadError(HTML_ANSWER)
                first = True
                async for chunk in response.content.iter_chunked(DOWNLOAD_CHUNK_BYTES):
                    if first and chunk.lstrip()[:20].lower().startswith(HTML_PREFIXES):
                        raise DownloadError(HTML_ANSWER)
                    first = False
                    yield chunk
                return
        raise DownloadError("the download was redirected too many times")


def _status_problem(status: int) -> str:
    if status in (401, 403):
        return f"Slack refused the download (HTTP {status}): the app may lack the files:read permission"
    if status == 404:
        return "the file is gone from Slack (HTTP 404): it may have been deleted"
    return f"the download from Slack failed (HTTP {status}); try again later"


@dataclass(slots=True)
class SlackFileSource:
    info: SourceInfo
    url: str
    downloader: SlackDownloader

    def chunks(self) -> AsyncIterator[bytes]:
        return self.downloader.stream(self.url)

    @classmethod
    def from_file(
        cls,
        file: dict[str, Any],
        downloader: SlackDownloader,
        requested_by: str | None,
        *,
        via_command: bool = False,
    ) -> SlackFileSource:
        name = str(file.get("name") or file.get("title") or file["id"])
        if not is_csv_name(name, file.get("filetype")):
            raise NotCsvFileError(f"{name} is not a CSV file; share the export as .csv")
        url = file.get("url_private_download") or file.get("url_private")
        if not url:
            raise UnsupportedSourceError(f"Slack gives no download address for {name}")
        return cls(
            info=SourceInfo(
                kind="slack",
                name=name,
                label=f"{name} (Slack {file['id']})",
                size_bytes=file.get("size"),
                requested_by=requested_by,
                via_command=via_command,
                locator={"file_id": str(file["id"]), "url": str(url)},
            ),
            url=str(url),
            downloader=downloader,
        )

    @classmethod
    def again(cls, info: SourceInfo, downloader: SlackDownloader) -> SlackFileSource | None:
        """The file a job was given, from its record (a restart, or another worker)."""
        url = info.locator.get("url")
        return None if not url else cls(info=info, url=url, downloader=downloader)

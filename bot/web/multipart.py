"""A form's file part read straight from the request body, piece by piece.

aiohttp's part reader joins each piece it reads to the one before it and looks for the
boundary in the joined copy: a second copy of every byte of the file, on the event loop (a
third of the loop's CPU time on a 600 MB form). Here each piece is searched as it came, and
only the few bytes at its end that could begin the delimiter are held back until the next
piece says whether they do. aiohttp still reads the form up to the file part's headers.
"""

from __future__ import annotations

from collections.abc import Awaitable

from aiohttp import StreamReader

from bot.web.intake import CHUNK_BYTES, FORM_OVERHEAD_BYTES
from bot.web.pace import Pace

_CR = b"\r"
# The line break that ends a part's headers may also be the one before the delimiter when
# the file is empty; aiohttp reads it so, and so does the scanner (never as the file's).
_HEADERS_END = b"\r\n"


class PartScanner:
    """Splits a part's body, fed in pieces, into the part's bytes and what follows it."""

    def __init__(self, boundary: bytes) -> None:
        self._delimiter = b"\r\n--" + boundary
        self._held = _HEADERS_END
        self._hidden = len(_HEADERS_END)  # leading held bytes that are not the part's
        self.after: bytes | None = None  # what followed the delimiter, once it was found

    @property
    def done(self) -> bool:
        return self.after is not None

    def feed(self, piece: bytes) -> list[bytes]:
        """The part's bytes that this piece makes certain, in order (maybe none)."""
        if self.after is not None:
            raise ValueError("data after the part's end was fed as part of it")
        data = self._held + piece if self._held else piece  # a copy only when bytes wait
        hidden, self._hidden = self._hidden, 0
        found = data.find(self._delimiter)
        if found >= 0:
            self.after = data[found + len(self._delimiter) :]
            self._held = b""
            return [data[hidden:found]] if found > hidden else []
        # The delimiter may begin in the last bytes, at a CR: hold them back.
        cut = data.find(_CR, max(0, len(data) - len(self._delimiter) + 1))
        while cut >= 0 and not self._delimiter.startswith(data[cut:]):
            cut = data.find(_CR, cut + 1)
        if cut < 0:
            self._held = b""
            return [data[hidden:] if hidden else data] if len(data) > hidden else []
        self._held = data[cut:]
        if cut < hidden:  # only the headers' line break can be both
            self._hidden = hidden - cut
            return []
        return [data[hidden:cut]] if cut > hidden else []

    def closes(self, rest: bytes) -> bool:
        """Whether what followed the part (all of it, to the body's end) ends the form."""
        return rest.startswith(b"--") or self._delimiter + b"--" in rest


class FilePart:
    """The file part's bytes from the request body (a `Read` for intake.file_chunks), then
    the rest of the form, read and dropped."""

    def __init__(self, content: StreamReader, boundary: str) -> None:
        self._content = content
        self._scanner = PartScanner(boundary.encode())
        self._ready: list[bytes] = []

    async def read(self) -> bytes:
        """The next piece of the file, b"" once it has ended; ValueError if the body ends
        first."""
        while not self._ready:
            if self._scanner.done:
                return b""
            piece = await self._read_piece()
            if not piece:
                raise ValueError("the form ended inside the file")
            self._ready = self._scanner.feed(piece)
        return self._ready.pop(0)

    def _read_piece(self) -> Awaitable[bytes]:
        return self._content.read(CHUNK_BYTES)

    async def rest(self, pace: Pace) -> None:
        """Read what follows the file to the body's end: at most FORM_OVERHEAD_BYTES, and it
        must close the form (ValueError otherwise; TooSlowError if the client stops keeping up)."""
        after = self._scanner.after
        assert after is not None, "the file was not read to its end"
        rest = bytearray(after)
        while len(rest) <= FORM_OVERHEAD_BYTES and (piece := await pace.read(self._read_piece)):
            rest += piece
        if len(rest) > FORM_OVERHEAD_BYTES:
            raise ValueError("too much besides the file")
        if not self._scanner.closes(bytes(rest)):
            raise ValueError("the form does not end")

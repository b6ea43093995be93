"""How a spreadsheet wrote the file: encoding, delimiter and line end.

Excel alone writes at least five kinds of "CSV": UTF-8 with or without a BOM, "Unicode text"
(UTF-16 with a BOM), plain "CSV" in the Windows code page (Windows-1252), semicolons where the
decimal separator is a comma, and bare CR line ends on a classic Mac. The rules:

- A UTF-8 BOM, a UTF-16 LE/BE BOM, or valid UTF-8 in the first block decide the encoding;
  anything else is Windows-1252 (the five bytes it leaves undefined map to U+0081 etc., as
  browsers do). Everything is transcoded to UTF-8 before parsing, so the parser sees one kind.
- The delimiter is the first of `,` `;` tab `|` whose split of the header line holds every
  required column.
- The header line's end decides the line end. A CR file is read with CR and LF swapped, so
  the parser always splits at LF; an LF left in a CR file is data, as a lone CR is in the
  others.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable, Iterator
from typing import Final, Literal

from msgspec import Struct

Encoding = Literal["utf-8", "utf-8-sig", "utf-16-le", "utf-16-be", "windows-1252"]
LineEnd = Literal["\n", "\r\n", "\r"]

UTF8_BOM: Final = b"\xef\xbb\xbf"
UTF16_LE_BOM: Final = b"\xff\xfe"
UTF16_BE_BOM: Final = b"\xfe\xff"
DELIMITERS: Final = (",", ";", "\t", "|")
CR_LF_SWAP: Final = bytes.maketrans(b"\r\n", b"\n\r")

# Windows-1252, with the five undefined bytes as the C1 controls of the same number.
_CP1252_TABLE: Final = "".join(
    bytes([code]).decode("cp1252", errors="ignore") or chr(code) for code in range(256)
)


class Dialect(Struct, frozen=True):
    encoding: Encoding = "utf-8"
    delimiter: str = ","
    line_end: LineEnd = "\n"

    @property
    def plain(self) -> bool:
        """UTF-8 (with or without BOM), comma-separated, LF or CRLF: what nobody needs told."""
        return (
            self.encoding in ("utf-8", "utf-8-sig")
            and self.delimiter == ","
            and self.line_end != "\r"
        )

    def describe(self) -> str:
        """In words, for people: 'read as Windows-1252, semicolon-separated'."""
        parts = []
        if self.encoding not in ("utf-8", "utf-8-sig"):
            parts.append(f"read as {ENCODING_NAMES[self.encoding]}")
        if self.delimiter != ",":
            parts.append(f"{DELIMITER_NAMES[self.delimiter]}-separated")
        if self.line_end == "\r":
            parts.append("classic Mac line ends (CR)")
        return ", ".join(parts)


ENCODING_NAMES: Final = {
    "utf-8": "UTF-8",
    "utf-8-sig": "UTF-8",
    "utf-16-le": "UTF-16 (little-endian)",
    "utf-16-be": "UTF-16 (big-endian)",
    "windows-1252": "Windows-1252",
}
DELIMITER_NAMES: Final = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}

Transcoder = Callable[[bytes, bool], bytes]


def cp1252_to_utf8(data: bytes, final: bool = False) -> bytes:
    """Windows-1252 bytes as UTF-8; every byte maps to one character, so chunks split anywhere."""
    return codecs.charmap_decode(data, "strict", _CP1252_TABLE)[0].encode("utf-8")


class Utf16ToUtf8:
    """UTF-16 (BOM already removed) as UTF-8, chunk by chunk; pairs split across chunks wait."""

    def __init__(self, encoding: Literal["utf-16-le", "utf-16-be"]) -> None:
        self._decoder = codecs.getincrementaldecoder(encoding)(errors="strict")

    def __call__(self, data: bytes, final: bool = False) -> bytes:
        return self._decoder.decode(data, final).encode("utf-8")


def is_utf8_prefix(data: bytes | bytearray, complete: bool) -> bool:
    """Whether data is valid UTF-8, allowing a character cut at the end unless `complete`."""
    try:
        codecs.getincrementaldecoder("utf-8")(errors="strict").decode(data, complete)
    except UnicodeDecodeError:
        return False
    return True


def transcoded(chunks: Iterator[bytes], transcode: Transcoder) -> Iterator[bytes]:
    for chunk in chunks:
        if out := transcode(chunk, False):
            yield out
    if tail := transcode(b"", True):
        yield tail


def swapped_cr_lf(chunks: Iterator[bytes]) -> Iterator[bytes]:
    for chunk in chunks:
        yield chunk.translate(CR_LF_SWAP)

"""Text from a file or a person, made safe to show on one line: terminal, Slack or the page.

Labels (treatment and event types) and file names are anybody's bytes. Shown raw, an ESC
sequence can rewrite a terminal, a bidi override can make `evil\u202egsj.csv` read as
`evil.jsg...`, and a newline can forge a line of output. So every surface shows them through
`displayable()`; machine formats (JSON, CSV) keep them exactly as read.
"""

from __future__ import annotations

import re
from typing import Final

# C0 and C1 controls, DEL, the bidi embeddings, overrides and isolates (U+202A-U+202E,
# U+2066-U+2069), the implicit marks (U+200E, U+200F, U+061C) and the line/paragraph
# separators: none of them is something a person means to read in a label.
_INVISIBLE: Final = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]+"
)
_SPACES: Final = re.compile(r"\s+")


def displayable(text: str, limit: int | None = None) -> str:
    """One line without control or bidi characters (each run becomes a space), trimmed, and
    cut to `limit` characters with an ellipsis."""
    line = _SPACES.sub(" ", _INVISIBLE.sub(" ", text)).strip()
    if limit is not None and len(line) > limit:
        line = line[: limit - 1] + "…"
    return line

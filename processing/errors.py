"""Errors the engine raises for a bad file. A bad *row* is data, not an exception.

```
ClinicEventsError
├── InputError            str(exc) is safe to show a user: no values, only rows and columns
│   ├── NotCsvError       binary data (gzip, Excel, PDF ...) instead of CSV text
│   ├── EncodingError     UTF-8 that turns out not to be (or broken UTF-16), with the row
│   ├── MissingColumnsError(columns)
│   ├── NoRowsError       empty file, or a header and nothing else
│   ├── HeaderTooLongError  a first line over 1 MiB
│   └── TooManyValuesError(column)  over 10,000 distinct types in a column, or over
│                         200,000 distinct (week, type) pairs
└── AnalysisCancelled     the caller asked the engine to stop

A stray or unclosed quote is not an error of the file: it costs one malformed row.
```

The bot adds `SourceError` (fetching the file failed) under `ClinicEventsError`.
"""

from __future__ import annotations

from collections.abc import Sequence

from processing.schema import REQUIRED_COLUMNS
from processing.text import displayable

UTF8_HINT = "export the file again as CSV UTF-8"


class ClinicEventsError(Exception):
    """Root of every error this project raises on purpose."""


class InputError(ClinicEventsError):
    """The file cannot be analysed. The message is safe to show to a user."""


class NotCsvError(InputError):
    def __init__(self, kind: str) -> None:
        self.kind = kind
        super().__init__(f"this is not a CSV file (it looks like {kind}); {UTF8_HINT}")


class EncodingError(InputError):
    def __init__(self, row: int, encoding: str = "UTF-8") -> None:
        self.row = row
        if encoding == "UTF-8":
            super().__init__(f"row {row} is not valid UTF-8 text; {UTF8_HINT}")
        else:  # a transcoded stream: the row is the one being read, the error may be in it
            super().__init__(f"the file is not valid {encoding} text at row {row}; {UTF8_HINT}")


class MissingColumnsError(InputError):
    """Names what is missing, the closest header name for each when one is close (so a
    renamed or re-cased column can be fixed), and the columns found. Header names only,
    never a value."""

    def __init__(self, columns: Sequence[str], found: Sequence[str] = ()) -> None:
        self.columns = tuple(columns)
        self.found = tuple(found)
        # A name that already is a required column is taken: never the near match of another.
        spare = [name for name in self.found[:MAX_NAMES_COMPARED] if name.lower() not in _REQUIRED]
        self.near = near_matches(self.columns, spare)
        missing = [
            f'{column} (found "{_shown(near)}"? rename it)' if near else column
            for column, near in self.near.items()
        ]
        message = f"the header lacks {_and(missing)}"
        if self.found:
            shown = [_shown(name) or "(empty)" for name in self.found[:MAX_NAMES_SHOWN]]
            more = len(self.found) - len(shown)
            message += (
                "; columns found: " + ", ".join(shown) + (f" and {more:,} more" if more else "")
            )
        super().__init__(message)


_REQUIRED = frozenset(REQUIRED_COLUMNS)
MAX_NAMES_SHOWN = 30
MAX_NAMES_COMPARED = 1000  # a header of a million columns must not cost a million diffs
MAX_NAME_CHARS = 40
NEAR_RATIO = 0.6


def near_matches(columns: Sequence[str], found: Sequence[str]) -> dict[str, str | None]:
    """For each missing column, the found header name closest to it (difflib ratio >= 0.6,
    ignoring case and `_`, space and `-`), if any; each name is offered once, to the column
    it resembles most."""
    import difflib  # only a file missing columns needs it: kept out of every other start-up

    pairs = sorted(
        (
            (-difflib.SequenceMatcher(None, _squeezed(column), _squeezed(name)).ratio(), i, j)
            for i, column in enumerate(columns)
            for j, name in enumerate(found)
        )
    )
    near: dict[str, str | None] = dict.fromkeys(columns)
    taken: set[int] = set()
    for negative_ratio, i, j in pairs:
        if -negative_ratio < NEAR_RATIO:
            break
        if near[columns[i]] is None and j not in taken:
            near[columns[i]] = found[j]
            taken.add(j)
    return near


def _squeezed(name: str) -> str:
    return "".join(char for char in name[:MAX_NAME_CHARS].lower() if char not in "_ -")


def _shown(name: str | None) -> str:
    return displayable(name or "", MAX_NAME_CHARS)


def _and(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


class NoRowsError(InputError):
    def __init__(self, detail: str = "no rows") -> None:
        super().__init__(f"the file has {detail}: nothing to report")


class AnalysisCancelled(ClinicEventsError):
    def __init__(self) -> None:
        super().__init__("cancelled")


class HeaderTooLongError(InputError):
    def __init__(self, limit_bytes: int) -> None:
        super().__init__(
            f"the first line (the header) is longer than {limit_bytes // 1_048_576} MiB, so it "
            "cannot be a header of column names; check that this is the events export"
        )


class TooManyValuesError(InputError):
    def __init__(self, column: str, limit: int, *, per_week: bool = False) -> None:
        self.column = column
        if per_week:
            super().__init__(
                f"the file holds more than {limit:,} different pairs of a week and a value of "
                f"{column}; a clinic's export has far fewer: check that the columns are in the "
                "right place"
            )
            return
        super().__init__(
            f"the column {column} holds more than {limit:,} different values; it cannot be a "
            "list of types: check that the columns are in the right place"
        )

"""Errors the engine raises for a bad file. A bad *row* is data, not an exception.

```
ClinicEventsError
├── InputError            str(exc) is safe to show a user: no values, only rows and columns
│   ├── NotCsvError       binary data (gzip, Excel, PDF ...) instead of CSV text
│   ├── EncodingError     UTF-8 that turns out not to be (or broken UTF-16), with the row
│   ├── MissingColumnsError(columns)
│   │   └── HeaderMissingError  the first line is not a header at all
│   ├── NoRowsError       empty file, or a header and nothing else
│   ├── HeaderTooLongError  a first line over 1 MiB
│   └── TooManyValuesError(column)  over 10,000 distinct types in a column, or over
│                         200,000 distinct (week, type) pairs
└── AnalysisCancelledError  the caller asked the engine to stop

A stray or unclosed quote is not an error of the file: it costs one malformed row.
```

The bot adds `SourceError` (fetching the file failed) under `ClinicEventsError`.
"""

from __future__ import annotations

import re
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
    renamed or re-cased column can be fixed), and the columns found. Never a value: only
    names that look like column names are kept (`looks_like_a_name`), the others are counted.
    """

    def __init__(self, columns: Sequence[str], found: Sequence[str] = ()) -> None:
        self.columns = tuple(columns)
        shown = [name for name in found[:MAX_NAMES_COMPARED] if looks_like_a_name(name)]
        self.hidden = len(found) - len(shown)  # counted, never kept: they may be a row's cells
        self.found = tuple(shown)
        # A name that already is a required column is taken: never the near match of another.
        spare = [name for name in self.found if name.lower() not in _REQUIRED]
        self.near = near_matches(self.columns, spare)
        # How much of the header this reading explains: required columns present, then
        # near matches (to choose between delimiters).
        self.matched = (
            len(REQUIRED_COLUMNS) - len(self.columns),
            sum(map(bool, self.near.values())),
        )
        missing = [
            f'{column} (found "{_shown(near)}"? rename it)' if near else column
            for column, near in self.near.items()
        ]
        message = f"the header lacks {_and(missing)}"
        if self.found or self.hidden:
            listed = [_shown(name) for name in self.found[:MAX_NAMES_SHOWN]]
            more = len(self.found) - len(listed)
            message += "; columns found: " + (", ".join(listed) if listed else "none by name")
            if more:
                message += f" and {more:,} more"
            if self.hidden:
                message += (
                    f" ({self.hidden:,} more not shown: {'it looks' if self.hidden == 1 else 'they look'}"
                    " like values, not column names)"
                )
        super().__init__(message)


class HeaderMissingError(MissingColumnsError):
    """The first line holds none of the required columns and cells that look like values:
    it is most likely a data row (an export with "include header" unticked). None of its
    cells is shown or kept."""

    def __init__(
        self, columns: Sequence[str], *, near_names: bool = False, values: bool = False
    ) -> None:
        self.columns = tuple(columns)
        self.found = ()
        self.hidden = 0
        self.near = dict.fromkeys(self.columns)
        self.matched = (0, 0)
        # Cells that resemble column names beside values ("Clinic A", "Patient Jones") are a
        # data row's too: never offered as the name to rename.
        also = "no near match"
        if near_names:
            also = "it holds values (ids, dates, amounts)" if values else "no column named so"
        InputError.__init__(
            self,
            "the first line does not look like a header: none of "
            f"{', '.join(REQUIRED_COLUMNS)}, and {also}. Is the header row missing?",
        )


def missing_columns(found: Sequence[str]) -> MissingColumnsError:
    """The error for a first line that lacks required columns: a header with some names
    wrong, or no header at all. With none of the required columns, the line is taken for a
    data row and nothing of it is shown, unless it is a header of ours renamed: every cell
    looks like a column name and at least two are required columns but for case, spaces,
    `_` and `-` (`EventID,ClinicID,...`). A data row of this export always holds an id, a
    timestamp or an amount; another file's could hold anything ("Clinic A,Patient Jones,
    Dr Smith" resembles column names), so resemblance alone never shows a cell."""
    lowered = {name.lower() for name in found}
    missing = [column for column in REQUIRED_COLUMNS if column not in lowered]
    error = MissingColumnsError(missing, found)
    if len(missing) < len(REQUIRED_COLUMNS):
        return error
    renamed = sum(_squeezed(name) in _SQUEEZED_REQUIRED for name in error.found)
    if error.hidden or renamed < MIN_RENAMED:
        return HeaderMissingError(
            missing, near_names=any(error.near.values()), values=bool(error.hidden)
        )
    return error


_REQUIRED = frozenset(REQUIRED_COLUMNS)
MIN_RENAMED = 2  # required columns a header of ours, renamed, still shows
MAX_NAMES_SHOWN = 30
MAX_NAMES_COMPARED = 1000  # a header of a million columns must not cost a million diffs
MAX_NAME_CHARS = 40
NEAR_RATIO = 0.6
# What a column name looks like, so that a data row taken for a header shows none of its
# cells: ids, timestamps and amounts have runs of digits, notes have punctuation or many
# words. A name is at most 64 characters of letters, digits, spaces and _-.()/#, with at
# least one letter, no run of 3 or more digits and at most 4 words.
MAX_COLUMN_NAME_CHARS = 64
MAX_COLUMN_NAME_WORDS = 4
_NAME_CHARACTERS = frozenset(" _-.()/#")
_DIGIT_RUN = re.compile(r"\d{3}")


def looks_like_a_name(name: str) -> bool:
    """Whether a header cell is shaped like a column name rather than a value (the rule
    above); only such names are ever shown."""
    name = name.strip()
    return (
        0 < len(name) <= MAX_COLUMN_NAME_CHARS
        and any(char.isalpha() for char in name)
        and all(char.isalnum() or char in _NAME_CHARACTERS for char in name)
        and _DIGIT_RUN.search(name) is None
        and len(name.split()) <= MAX_COLUMN_NAME_WORDS
    )


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


_SQUEEZED_REQUIRED = frozenset(_squeezed(column) for column in REQUIRED_COLUMNS)


def _shown(name: str | None) -> str:
    return displayable(name or "", MAX_NAME_CHARS)


def _and(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


class NoRowsError(InputError):
    def __init__(self, detail: str = "no rows") -> None:
        super().__init__(f"the file has {detail}: nothing to report")


class AnalysisCancelledError(ClinicEventsError):
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

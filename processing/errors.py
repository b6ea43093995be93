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
    def __init__(self, columns: Sequence[str]) -> None:
        self.columns = tuple(columns)
        noun = "column" if len(self.columns) == 1 else "columns"
        super().__init__(f"the header lacks the required {noun}: {', '.join(self.columns)}")


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

"""The one error tree of bot/, on the engine's: every exception the bot raises on purpose
is a ClinicEventsError, and its message is safe to show a user (the store's, to an operator:
they name files and what to do). Foreign exceptions are translated where they are met: an
upload's body by the table READ_ANSWERS (bot/web/intake.py), SQLite's by
SqliteJobStore._guarded, boto3's in bot/aws/s3.py.

```
ClinicEventsError (processing/errors.py)
├── InputError            processing: the file itself cannot be analysed
├── AnalysisCancelledError  processing: the job was stopped on purpose (not a failure)
├── ConfigError           a setting is missing or malformed; names the variable, never its value
├── UsageError            the command line asks for something that cannot be done
│   └── UnknownCurrencyError    --currency is not an ISO 4217 code (CURRENCY: a ConfigError)
├── CommandError          /process-events text to fix; the message says how
├── UnknownScopeError     no history is kept under that name
├── NotAcceptingError     the service is shutting down and takes no new jobs
├── HiddenMessageError    (logs only) stands in for a foreign exception that may quote data
├── StoreError            the job store cannot be used
│   ├── StoreDamagedError       the SQLite file is not a database, or a page is corrupt
│   ├── StoreTooNewError        written by a newer clinic-events
│   ├── StoreInUseError         DATA_DIR is held by another serve
│   ├── StoreUnwritableError    DATA_DIR or its file cannot be written
│   ├── StoreFullError          its disk is (nearly) full: no new jobs
│   └── StoreUnavailableError   a read or write failed (disk I/O, locked, unreachable)
└── SourceError           getting the file failed, or it may not be read
    ├── UnsupportedSourceError  not a Slack file, s3:// URL or upload we can read
    ├── FileTooLargeError(size_bytes, limit_bytes)
    ├── NotCsvFileError         the file's name and type say it is not a CSV
    ├── DownloadError           the host answered with an error, HTML, or a foreign redirect
    ├── BucketNotAllowedError   an S3 bucket outside S3_ALLOWED_BUCKETS (a usage error)
    ├── TooSlowError(rule, reason)  an upload broke a rule of its pace (bot/web/pace.py)
    └── S3Error                 missing object, access denied, bad credentials
        └── S3ObjectMissingError  no such key
```

Two exceptions are answers, not errors, and stay beside their use: `Rejected`
(bot/web/intake.py, an HTTP refusal on its way out of a handler) and `Duplicate`
(bot/store/records.py, the job an idempotency key already names).
"""

from __future__ import annotations

from typing import Literal

from processing import ClinicEventsError
from processing.words import file_size


class ConfigError(ClinicEventsError):
    """A setting is missing or malformed; the message names the variable."""


class UsageError(ClinicEventsError):
    pass


class UnknownCurrencyError(UsageError):
    pass


class CommandError(ClinicEventsError):
    """Something the person who typed the command should fix; the message says what."""


class UnknownScopeError(ClinicEventsError):
    def __init__(self, scope: str) -> None:
        super().__init__(f"no history is kept for scope {scope!r}")
        self.scope = scope


class NotAcceptingError(ClinicEventsError):
    """The service is shutting down and takes no new jobs."""


class HiddenMessageError(ClinicEventsError):
    """Stands in for a foreign exception whose message may quote file data (pyarrow does)."""


class StoreError(ClinicEventsError):
    """The job store cannot be used right now, or at all."""


class StoreDamagedError(StoreError):
    pass


class StoreTooNewError(StoreError):
    pass


class StoreInUseError(StoreError):
    pass


class StoreUnwritableError(StoreError):
    pass


class StoreUnavailableError(StoreError):
    pass


class StoreFullError(StoreError):
    """The store's disk is full, or under STORE_MIN_FREE_MB: the message is a user's."""


class SourceError(ClinicEventsError):
    """Fetching the file failed. The message is safe to show a user: no tokens, no values."""


class UnsupportedSourceError(SourceError):
    pass


def too_large(size: str | None, limit: str) -> str:
    """The sentence of FileTooLargeError, also the page's before an upload begins."""
    if size is None:
        message = f"the file is larger than the {limit} limit"
    else:
        message = f"the file is {size}, over the {limit} limit"
    return f"{message}; split the export or ask an admin to raise MAX_FILE_SIZE_MB"


class FileTooLargeError(SourceError):
    def __init__(self, size_bytes: int | None, limit_bytes: int) -> None:
        self.size_bytes = size_bytes
        self.limit_bytes = limit_bytes
        size = None if size_bytes is None else file_size(size_bytes)
        super().__init__(too_large(size, file_size(limit_bytes)))


class NotCsvFileError(SourceError):
    pass


class DownloadError(SourceError):
    pass


class BucketNotAllowedError(SourceError):
    pass


class TooSlowError(SourceError):
    """The upload broke one of the rules of its pace; the message says which, in words for
    the user."""

    def __init__(self, rule: Literal["idle", "overall", "rate"], reason: str) -> None:
        super().__init__(reason)
        self.rule = rule
        self.reason = reason


class S3Error(SourceError):
    pass


class S3ObjectMissingError(S3Error):
    pass

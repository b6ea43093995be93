"""Errors the bot raises while fetching a file or keeping its jobs. Every message is safe to
show a user (the store's, to an operator: they name files and what to do).

```
ClinicEventsError (processing)
├── InputError            processing: the file itself cannot be analysed
├── StoreError            bot: the job store cannot be used
│   ├── StoreDamagedError       the SQLite file is not a database, or a page is corrupt
│   ├── StoreTooNewError        written by a newer clinic-events
│   ├── StoreInUseError         DATA_DIR is held by another serve
│   ├── StoreUnwritableError    DATA_DIR or its file cannot be written
│   ├── StoreFullError          its disk is (nearly) full: no new jobs
│   └── StoreUnavailableError   a read or write failed (disk I/O, locked, unreachable)
└── SourceError           bot: getting the file failed, or it may not be read
    ├── UnsupportedSourceError  not a Slack file, s3:// URL or upload we can read
    ├── FileTooLargeError(size_bytes, limit_bytes)
    ├── NotCsvFileError         the file's name and type say it is not a CSV
    ├── DownloadError           the host answered with an error, HTML, or a foreign redirect
    ├── BucketNotAllowedError   an S3 bucket outside S3_ALLOWED_BUCKETS (a usage error)
    └── S3Error                 missing object, access denied, bad credentials
        └── S3ObjectMissingError  no such key
```
"""

from __future__ import annotations

from processing import ClinicEventsError


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


class FileTooLargeError(SourceError):
    def __init__(self, size_bytes: int | None, limit_bytes: int) -> None:
        self.size_bytes = size_bytes
        self.limit_bytes = limit_bytes
        limit = _megabytes(limit_bytes)
        if size_bytes is None:
            message = f"the file is larger than the {limit} limit"
        else:
            message = f"the file is {_megabytes(size_bytes)}, over the {limit} limit"
        super().__init__(f"{message}; split the export or ask an admin to raise MAX_FILE_SIZE_MB")


def _megabytes(size_bytes: int) -> str:
    megabytes = size_bytes / 1_048_576
    return f"{megabytes:,.0f} MB" if megabytes >= 10 else f"{megabytes:,.3g} MB"


class NotCsvFileError(SourceError):
    pass


class DownloadError(SourceError):
    pass


class BucketNotAllowedError(SourceError):
    pass


class S3Error(SourceError):
    pass


class S3ObjectMissingError(S3Error):
    pass

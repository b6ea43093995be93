"""S3 objects as byte chunks, and web uploads staged into S3 by multipart upload.

Synchronous boto3: callers run it in a worker thread (`asyncio.to_thread` in the server; the
engine pulls `S3Object.chunks()` in its own prefetch thread). Every failure comes out as a
SourceError subclass whose message is safe to show a user: it names the bucket and key and
what to fix, never a credential, a signature or S3's own error text. Nothing here logs.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final, Self

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    CredentialRetrievalError,
    FlexibleChecksumError,
    NoAuthTokenError,
    NoCredentialsError,
    PartialCredentialsError,
    ReadTimeoutError,
    SSOError,
    TokenRetrievalError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError
from urllib3.exceptions import HTTPError as Urllib3Error

from bot.aws import make_client as make_aws_client
from bot.errors import (
    BucketNotAllowedError,
    FileTooLargeError,
    S3Error,
    S3ObjectMissingError,
    UnsupportedSourceError,
)

# boto3 ships no type information; a client is whatever boto3.client("s3") returns.
S3Client = Any

MIN_PART_SIZE_BYTES: Final = 5 << 20  # S3 rejects smaller parts, except the last one
_URL_FORM = "s3://BUCKET/KEY, e.g. s3://clinic-exports/2024/events.csv"
# Real bucket names are narrower (3-63 characters, lower case), but legacy us-east-1
# buckets are not; this only catches text that cannot be a bucket at all.
_BUCKET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\Z")
_MISSING_OBJECT = frozenset({"NoSuchKey", "404", "NotFound"})
_ACCESS_DENIED = frozenset({"AccessDenied", "403", "Forbidden", "AllAccessDisabled"})
_BAD_CREDENTIALS = frozenset(
    {
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "InvalidToken",
        "TokenRefreshRequired",
    }
)
_CREDENTIAL_PROBLEMS = (
    NoCredentialsError,
    PartialCredentialsError,
    CredentialRetrievalError,
    TokenRetrievalError,
    NoAuthTokenError,
    SSOError,
)


@dataclass(frozen=True, slots=True)
class S3Location:
    bucket: str
    key: str

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def parse_s3_url(text: str) -> S3Location:
    """`s3://bucket/key/with/slashes.csv` as an S3Location; the key is taken literally."""
    text = text.strip()
    if text[:5].lower() != "s3://":
        raise UnsupportedSourceError(f"not an S3 URL: expected {_URL_FORM}")
    bucket, _, key = text[5:].partition("/")
    if not bucket or not key:
        raise UnsupportedSourceError(f"an S3 URL needs a bucket and a key: expected {_URL_FORM}")
    if not _BUCKET_NAME.match(bucket):
        raise UnsupportedSourceError(
            f"{bucket!r} is not an S3 bucket name (letters, digits, dots and hyphens): expected {_URL_FORM}"
        )
    if key.endswith("/"):
        raise UnsupportedSourceError(
            f"s3://{bucket}/{key} is a folder, not a file: give the object's full key"
        )
    if any(segment in (".", "..") for segment in key.split("/")):
        # S3 takes them literally, but proxies, SDKs and people do not: refuse the doubt.
        raise UnsupportedSourceError(
            "an S3 key with . or .. path segments is refused: give the object's plain key"
        )
    return S3Location(bucket, key)


def make_client(region_name: str | None = None) -> S3Client:
    """An S3 client (bot.aws.make_client): standard retries, the standard AWS configuration."""
    return make_aws_client("s3", region_name)


# -- reading ------------------------------------------------------------------------------


class S3Object:
    """An open S3 object: its size, and its bytes once as chunks. Always `close()` it."""

    def __init__(self, location: S3Location, size_bytes: int, body: Any, chunk_size: int) -> None:
        self.location = location
        self.size_bytes = size_bytes
        self._body = body
        self._chunk_size = chunk_size
        self._streamed = False
        self._closed = False

    def chunks(self) -> Iterator[bytes]:
        """The object's bytes in pieces of at most chunk_size; closes the body when done.

        Breaking off early (or closing the iterator) closes the body too. A connection that
        fails half-way raises S3Error from the iterator.
        """
        if self._streamed or self._closed:
            raise RuntimeError(f"{self.location.url} can be streamed only once")
        self._streamed = True
        return self._stream()

    def _stream(self) -> Iterator[bytes]:
        pieces = self._body.iter_chunks(self._chunk_size)
        try:
            while True:
                try:
                    chunk = next(pieces, None)
                except (BotoCoreError, Urllib3Error, OSError) as error:
                    raise _stream_error(error, self.location) from error
                if chunk is None:
                    return
                yield chunk
        finally:
            self.close()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._body.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def check_bucket_allowed(location: S3Location, allowed_buckets: frozenset[str]) -> None:
    """Raise BucketNotAllowedError unless the service may read this bucket."""
    if location.bucket in allowed_buckets:
        return
    if not allowed_buckets:
        raise BucketNotAllowedError(
            f"cannot read {location.url}: S3 reading is not configured; "
            "set S3_BUCKET or S3_ALLOWED_BUCKETS"
        )
    raise BucketNotAllowedError(
        f"bucket {location.bucket} is not in S3_ALLOWED_BUCKETS; "
        f"use one of: {', '.join(sorted(allowed_buckets))}, or ask an admin to allow it"
    )


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    size_bytes: int
    etag: str  # names this version of the object: a job reads the version it was given


def describe_object(
    client: S3Client,
    location: S3Location,
    *,
    allowed_buckets: frozenset[str],
    max_size_bytes: int | None = None,
) -> ObjectInfo:
    """HEAD an object the service may read: its size and ETag, without opening it. The same
    refusals as open_object, so a bad request is answered before a job is queued."""
    check_bucket_allowed(location, allowed_buckets)
    try:
        response = client.head_object(Bucket=location.bucket, Key=location.key)
    except (ClientError, BotoCoreError) as error:
        raise _request_error(error, location, permission="s3:GetObject") from error
    size_bytes = int(response["ContentLength"])
    if max_size_bytes is not None and size_bytes > max_size_bytes:
        raise FileTooLargeError(size_bytes, max_size_bytes)
    return ObjectInfo(size_bytes, str(response.get("ETag", "")))


def open_object(
    client: S3Client,
    location: S3Location,
    *,
    allowed_buckets: frozenset[str],
    max_size_bytes: int | None = None,
    chunk_size: int = 1 << 20,
    etag: str | None = None,
) -> S3Object:
    """GET an object the service may read, after checking its bucket and size.

    Raises BucketNotAllowedError before any request, FileTooLargeError when ContentLength is
    over max_size_bytes, and S3Error when S3 cannot or will not hand the object over, or (with
    `etag`) when the object has been replaced since.
    """
    check_bucket_allowed(location, allowed_buckets)
    conditions = {"IfMatch": etag} if etag else {}
    try:
        response = client.get_object(Bucket=location.bucket, Key=location.key, **conditions)
    except (ClientError, BotoCoreError) as error:
        if isinstance(error, ClientError) and _code(error) in ("PreconditionFailed", "412"):
            raise S3Error(
                f"{location.url} was replaced after the job was queued; run it again for the "
                "new file"
            ) from error
        raise _request_error(error, location, permission="s3:GetObject") from error
    body = response["Body"]
    size_bytes = int(response["ContentLength"])
    if max_size_bytes is not None and size_bytes > max_size_bytes:
        body.close()
        raise FileTooLargeError(size_bytes, max_size_bytes)
    return S3Object(location, size_bytes, body, chunk_size)


# -- upload staging -------------------------------------------------------------------------


class MultipartUpload:
    """Stream bytes into one S3 object, a part at a time, in about one part of memory.

    Until `complete()` succeeds there is no object. Any failure, and leaving the `with`
    block without completing, aborts the upload, so S3 keeps no parts. (If even the abort
    cannot reach S3, a lifecycle rule with AbortIncompleteMultipartUpload is the backstop.)
    """

    def __init__(
        self, client: S3Client, location: S3Location, upload_id: str, part_size: int
    ) -> None:
        self.location = location
        self.upload_id = upload_id
        self.bytes_written = 0
        self._client = client
        self._part_size = part_size
        self._buffer = bytearray()
        self._parts: list[dict[str, Any]] = []
        self._finished = False

    @classmethod
    def start(cls, client: S3Client, location: S3Location, *, part_size: int = 8 << 20) -> Self:
        if part_size < MIN_PART_SIZE_BYTES:
            raise ValueError(f"part_size must be at least {MIN_PART_SIZE_BYTES} bytes (5 MiB)")
        try:
            # CRC32 on every part: S3 checks each part and the whole on completion.
            response = client.create_multipart_upload(
                Bucket=location.bucket, Key=location.key, ChecksumAlgorithm="CRC32"
            )
        except (ClientError, BotoCoreError) as error:
            raise _request_error(error, location, permission="s3:PutObject") from error
        return cls(client, location, response["UploadId"], part_size)

    def write(self, chunk: bytes) -> None:
        if self._finished:
            raise RuntimeError(f"the upload to {self.location.url} is already finished")
        self._buffer += chunk
        self.bytes_written += len(chunk)
        while len(self._buffer) >= self._part_size:
            part = bytes(self._buffer[: self._part_size])
            del self._buffer[: self._part_size]
            self._upload_part(part)

    def complete(self) -> int:
        """Upload what is buffered as the last part and create the object. Returns its size."""
        if self._finished:
            raise RuntimeError(f"the upload to {self.location.url} is already finished")
        if self._buffer or not self._parts:  # S3 needs one part; the last may be empty
            part, self._buffer = bytes(self._buffer), bytearray()
            self._upload_part(part)
        try:
            self._client.complete_multipart_upload(
                Bucket=self.location.bucket,
                Key=self.location.key,
                UploadId=self.upload_id,
                MultipartUpload={"Parts": self._parts},
            )
        except (ClientError, BotoCoreError) as error:
            self._abort_quietly()
            raise _request_error(error, self.location, permission="s3:PutObject") from error
        self._finished = True
        return self.bytes_written

    def abort(self) -> None:
        """Drop the parts uploaded so far. Does nothing after complete() or a first abort()."""
        if self._finished:
            return
        self._finished = True
        self._buffer = bytearray()
        try:
            self._client.abort_multipart_upload(
                Bucket=self.location.bucket, Key=self.location.key, UploadId=self.upload_id
            )
        except ClientError as error:
            if _code(error) == "NoSuchUpload":  # already gone: what abort wants
                return
            raise _request_error(
                error, self.location, permission="s3:AbortMultipartUpload"
            ) from error
        except BotoCoreError as error:
            raise _request_error(
                error, self.location, permission="s3:AbortMultipartUpload"
            ) from error

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.abort()  # left without complete(): a half-written object must not appear
        else:
            self._abort_quietly()  # the exception in flight is the one worth seeing

    def _upload_part(self, part: bytes) -> None:
        number = len(self._parts) + 1
        try:
            response = self._client.upload_part(
                Bucket=self.location.bucket,
                Key=self.location.key,
                UploadId=self.upload_id,
                PartNumber=number,
                Body=part,
                ChecksumAlgorithm="CRC32",
            )
        except (ClientError, BotoCoreError) as error:
            self._abort_quietly()
            raise _request_error(error, self.location, permission="s3:PutObject") from error
        entry = {"PartNumber": number, "ETag": response["ETag"]}
        if "ChecksumCRC32" in response:
            entry["ChecksumCRC32"] = response["ChecksumCRC32"]
        self._parts.append(entry)

    def _abort_quietly(self) -> None:
        with contextlib.suppress(S3Error):
            self.abort()


def delete_object(client: S3Client, location: S3Location) -> None:
    """Delete an object; deleting one that does not exist is not an error (S3 says so too)."""
    try:
        client.delete_object(Bucket=location.bucket, Key=location.key)
    except (ClientError, BotoCoreError) as error:
        raise _request_error(error, location, permission="s3:DeleteObject") from error


@dataclass(frozen=True, slots=True)
class IncompleteUpload:
    key: str
    upload_id: str
    initiated: float  # epoch seconds


def incomplete_uploads(
    client: S3Client, bucket: str, prefix: str, *, limit: int = 10_000
) -> list[IncompleteUpload]:
    """Multipart uploads under `prefix` that were started and neither completed nor aborted
    (at most `limit`, in pages of 1,000)."""
    found: list[IncompleteUpload] = []
    options: dict[str, str] = {}
    try:
        while len(found) < limit:
            page = client.list_multipart_uploads(Bucket=bucket, Prefix=prefix, **options)
            found.extend(
                IncompleteUpload(upload["Key"], upload["UploadId"], upload["Initiated"].timestamp())
                for upload in page.get("Uploads", [])
            )
            if not page.get("IsTruncated"):
                break
            options = {
                "KeyMarker": page["NextKeyMarker"],
                "UploadIdMarker": page["NextUploadIdMarker"],
            }
    except (ClientError, BotoCoreError) as error:
        raise _request_error(
            error, S3Location(bucket, prefix), permission="s3:ListBucketMultipartUploads"
        ) from error
    return found[:limit]


def abort_upload(client: S3Client, bucket: str, upload: IncompleteUpload) -> None:
    try:
        client.abort_multipart_upload(Bucket=bucket, Key=upload.key, UploadId=upload.upload_id)
    except (ClientError, BotoCoreError) as error:
        if isinstance(error, ClientError) and _code(error) == "NoSuchUpload":
            return  # completed or aborted meanwhile
        raise _request_error(
            error, S3Location(bucket, upload.key), permission="s3:AbortMultipartUpload"
        ) from error


# -- errors ---------------------------------------------------------------------------------


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _request_error(
    error: ClientError | BotoCoreError, location: S3Location, *, permission: str
) -> S3Error:
    """A safe message for a failed request. S3's own message text is never copied."""
    url = location.url
    if isinstance(error, ClientError):
        code = _code(error)
        if code in _MISSING_OBJECT:
            return S3ObjectMissingError(f"{url} does not exist")
        if code == "NoSuchBucket":
            return S3Error(f"bucket {location.bucket} does not exist (for {url})")
        if code in _ACCESS_DENIED:
            hint = (
                " (S3 also answers this for a missing object when s3:ListBucket is not granted)"
                if permission == "s3:GetObject"
                else ""
            )
            return S3Error(
                f"access denied to {url}: the service's AWS identity needs {permission} on it{hint}"
            )
        if code in _BAD_CREDENTIALS:
            return S3Error(_BAD_CREDENTIALS_MESSAGE)
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "?")
        return S3Error(
            f"S3 refused the request for {url} ({code or 'no error code'}, HTTP {status})"
        )
    if isinstance(error, _CREDENTIAL_PROBLEMS):
        return S3Error(_BAD_CREDENTIALS_MESSAGE)
    if isinstance(error, BotoConnectionError):
        return S3Error(
            "cannot reach S3: check the network, any proxy, and AWS_ENDPOINT_URL if it is set"
        )
    if isinstance(error, ReadTimeoutError):
        return S3Error(f"S3 did not answer in time for {url}; try again")
    return S3Error(f"the request for {url} failed ({type(error).__name__}); try again")


_BAD_CREDENTIALS_MESSAGE = (
    "AWS credentials are missing or invalid: check the service's AWS access key, "
    "profile or role (and that the session token has not expired)"
)


def _stream_error(error: BaseException, location: S3Location) -> S3Error:
    if isinstance(error, FlexibleChecksumError):
        return S3Error(f"{location.url} arrived corrupted (its checksum does not match); try again")
    return S3Error(f"the connection to S3 broke while reading {location.url}; try again")

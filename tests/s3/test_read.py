"""Reading s3:// sources: URLs, allowed buckets, streaming, and every failure a user can hit."""

from __future__ import annotations

import socketserver
import threading
from collections.abc import Callable, Generator, Iterator
from typing import Any, cast

import pytest

from bot.aws.s3 import S3Location, make_client, open_object, parse_s3_url
from bot.errors import BucketNotAllowedError, FileTooLargeError, S3Error, UnsupportedSourceError
from processing import analyze, to_dict
from tests.helpers import csv_of
from tests.s3.helpers import BUCKET, closed_port, create_iam_user

ALLOWED = frozenset({BUCKET})


def events_csv(rows: int) -> bytes:
    """A CSV export with `rows` rows over several weeks, some of them invalid."""
    lines = []
    for n in range(rows):
        day = 1 + n % 28
        if n % 97 == 0:
            lines.append(f"e{n},c{n % 5},p{n},TREATMENT_COMPLETED,not a date,Implants,10")
        else:
            lines.append(
                f'e{n},c{n % 5},p{n},TREATMENT_COMPLETED,2024-02-{day:02d}T10:00:00Z,"Clean, deep",{n % 400}.{n % 100:02d}'
            )
    return csv_of(*lines).encode()


def report_dict(source: Any) -> dict[str, Any]:
    return to_dict(analyze(source), "x", "USD")


def test_parse_s3_url_keeps_the_key_whole() -> None:
    """The key is everything after the bucket, slashes and spaces included."""
    location = parse_s3_url(" s3://clinic-exports/2024/feb/events export.csv ")
    assert location == S3Location("clinic-exports", "2024/feb/events export.csv")
    assert location.url == "s3://clinic-exports/2024/feb/events export.csv"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "clinic-exports/a.csv",
        "https://x/a.csv",
        "s3://",
        "s3://bucket",
        "s3://bucket/",
        "s3:///a.csv",
        "s3://my bucket/a.csv",
        "s3://bucket/reports/",
    ],
)
def test_parse_s3_url_rejects_malformed_text(text: str) -> None:
    """Malformed URLs are refused with the form they should take."""
    with pytest.raises(UnsupportedSourceError, match=r"s3://BUCKET/KEY|folder, not a file"):
        parse_s3_url(text)


@pytest.mark.parametrize(
    "text",
    ["s3://bucket/../other/a.csv", "s3://bucket/./a.csv", "s3://bucket/exports/../a.csv",
     "s3://bucket/a/./b.csv"],
)  # fmt: skip
def test_keys_with_dot_segments_are_refused(text: str) -> None:
    """`.` and `..` path segments are refused, whatever S3 itself would make of them."""
    with pytest.raises(UnsupportedSourceError, match=r"\. or \.\. path segments"):
        parse_s3_url(text)
    assert parse_s3_url("s3://bucket/a..b/.hidden.csv").key == "a..b/.hidden.csv"


def test_streams_identical_bytes_in_chunks(s3: Any, bucket: str) -> None:
    """A multi-chunk object arrives byte for byte, with its size known up front."""
    data = events_csv(5_000)
    s3.put_object(Bucket=bucket, Key="2024/events.csv", Body=data)
    with open_object(
        s3, S3Location(bucket, "2024/events.csv"), allowed_buckets=ALLOWED, chunk_size=16_384
    ) as s3_object:
        assert s3_object.size_bytes == len(data)
        chunks = list(s3_object.chunks())
    assert len(chunks) > 5
    assert max(map(len, chunks)) <= 16_384
    assert b"".join(chunks) == data


def test_report_from_s3_matches_report_from_memory(s3: Any, bucket: str) -> None:
    """The engine's report on the streamed object equals its report on the same bytes."""
    data = events_csv(20_000)
    s3.put_object(Bucket=bucket, Key="events.csv", Body=data)
    s3_object = open_object(
        s3, S3Location(bucket, "events.csv"), allowed_buckets=ALLOWED, chunk_size=65_536
    )
    try:
        from_s3 = report_dict(s3_object.chunks())
    finally:
        s3_object.close()
    from_memory = report_dict([data])
    assert from_s3 == from_memory
    assert from_s3["rows"]["total"] == 20_000


def test_breaking_off_early_is_clean(s3: Any, bucket: str) -> None:
    """Leaving the chunk loop early closes the object; closing again is harmless."""
    s3.put_object(Bucket=bucket, Key="events.csv", Body=events_csv(2_000))
    s3_object = open_object(
        s3, S3Location(bucket, "events.csv"), allowed_buckets=ALLOWED, chunk_size=1024
    )
    # chunks() is a generator (annotated as an Iterator), so it can be closed
    chunks = cast(Generator[bytes, None, None], s3_object.chunks())
    assert next(chunks)
    chunks.close()
    s3_object.close()
    with pytest.raises(RuntimeError, match="only once"):
        s3_object.chunks()


def test_object_over_the_limit_is_refused(s3: Any, bucket: str) -> None:
    """An object bigger than max_size_bytes is refused from its ContentLength alone."""
    s3.put_object(Bucket=bucket, Key="big.csv", Body=b"x" * 3_000)
    with pytest.raises(FileTooLargeError) as caught:
        open_object(
            s3, S3Location(bucket, "big.csv"), allowed_buckets=ALLOWED, max_size_bytes=2_000
        )
    assert (caught.value.size_bytes, caught.value.limit_bytes) == (3_000, 2_000)


def test_missing_key(s3: Any, bucket: str) -> None:
    """A key that does not exist is named in the message."""
    with pytest.raises(S3Error, match=r"^s3://clinic-exports/nope\.csv does not exist$"):
        open_object(s3, S3Location(bucket, "nope.csv"), allowed_buckets=ALLOWED)


def test_missing_bucket(s3: Any) -> None:
    """An allowed bucket that does not exist says so, not that the key is missing."""
    with pytest.raises(S3Error, match=r"^bucket clinic-exports does not exist"):
        open_object(s3, S3Location(BUCKET, "events.csv"), allowed_buckets=ALLOWED)


def test_bucket_not_allowed(s3: Any, bucket: str) -> None:
    """A bucket outside S3_ALLOWED_BUCKETS is refused, even when it exists and is readable."""
    s3.create_bucket(Bucket="payroll")
    s3.put_object(Bucket="payroll", Key="salaries.csv", Body=b"a,b\n1,2\n")
    with pytest.raises(
        BucketNotAllowedError, match=r"^bucket payroll is not in S3_ALLOWED_BUCKETS"
    ):
        open_object(s3, S3Location("payroll", "salaries.csv"), allowed_buckets=ALLOWED)


def test_no_allowed_buckets_means_not_configured() -> None:
    """With no bucket configured the message says which variables to set, without a request."""
    client = None  # never used: the check comes before any request
    with pytest.raises(BucketNotAllowedError, match="set S3_BUCKET or S3_ALLOWED_BUCKETS"):
        open_object(client, S3Location(BUCKET, "a.csv"), allowed_buckets=frozenset())


def test_access_denied(
    s3: Any, bucket: str, enforce_iam: Callable[[], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An IAM identity without s3:GetObject on the key gets a message naming the permission."""
    s3.put_object(Bucket=bucket, Key="secret/events.csv", Body=events_csv(10))
    s3.put_object(Bucket=bucket, Key="shared/events.csv", Body=events_csv(10))
    key_id, secret = create_iam_user(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": "s3:GetObject",
                    "Resource": f"arn:aws:s3:::{bucket}/shared/*",
                }
            ],
        }
    )
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    enforce_iam()
    client = make_client()
    with open_object(client, S3Location(bucket, "shared/events.csv"), allowed_buckets=ALLOWED):
        pass  # the same identity reads what its policy grants
    with pytest.raises(S3Error) as caught:
        open_object(client, S3Location(bucket, "secret/events.csv"), allowed_buckets=ALLOWED)
    assert str(caught.value).startswith(
        "access denied to s3://clinic-exports/secret/events.csv: "
        "the service's AWS identity needs s3:GetObject on it"
    )


@pytest.mark.parametrize("problem", ["unknown key id", "wrong secret"])
def test_bad_credentials(
    bucket: str, enforce_iam: Callable[[], None], monkeypatch: pytest.MonkeyPatch, problem: str
) -> None:
    """Keys S3 rejects give one safe message that echoes neither the key id nor the secret."""
    key_id, secret = create_iam_user(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}],
        }
    )
    if problem == "unknown key id":  # S3 answers InvalidAccessKeyId
        key_id = "AKIAIOSFODNN7EXAMPLE"
    else:  # a real key id, signed with the wrong secret: SignatureDoesNotMatch
        secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    enforce_iam()
    with pytest.raises(S3Error, match=r"^AWS credentials are missing or invalid") as caught:
        open_object(make_client(), S3Location(bucket, "events.csv"), allowed_buckets=ALLOWED)
    assert key_id not in str(caught.value)
    assert secret not in str(caught.value)


def test_no_credentials_at_all(aws_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """With no credentials anywhere in the chain, the same message comes back."""
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(S3Error, match=r"^AWS credentials are missing or invalid"):
        open_object(make_client(), S3Location(BUCKET, "events.csv"), allowed_buckets=ALLOWED)


def test_unreachable_endpoint(aws_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing listening at AWS_ENDPOINT_URL reads as "cannot reach S3"."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")  # no backoff between retries in a test
    with pytest.raises(S3Error, match=r"^cannot reach S3"):
        open_object(make_client(), S3Location(BUCKET, "events.csv"), allowed_buckets=ALLOWED)


class _ShortBody(socketserver.BaseRequestHandler):
    """Answers any request with 200 and a Content-Length it does not keep, then hangs up."""

    def handle(self) -> None:
        request = b""
        while b"\r\n\r\n" not in request:
            request += self.request.recv(65_536) or b"\r\n\r\n"
        self.request.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/csv\r\nContent-Length: 1000000\r\n"
            b'ETag: "0123"\r\n\r\n' + csv_of("e,c,p,X,2024-01-01,,").encode()
        )


@pytest.fixture
def breaking_endpoint() -> Iterator[str]:
    """An HTTP server whose responses break off after the headers and a few bytes."""
    with socketserver.ThreadingTCPServer(("127.0.0.1", 0), _ShortBody) as server:
        thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        thread.start()
        yield f"http://127.0.0.1:{server.server_address[1]}"
        server.shutdown()
        thread.join()


def test_connection_lost_mid_stream(
    aws_env: str, breaking_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A download cut off half-way fails the report with S3Error, not a botocore error."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", breaking_endpoint)
    s3_object = open_object(
        make_client(), S3Location(BUCKET, "events.csv"), allowed_buckets=ALLOWED
    )
    assert s3_object.size_bytes == 1_000_000
    with pytest.raises(S3Error, match=r"^the connection to S3 broke while reading s3://"):
        analyze(s3_object.chunks())

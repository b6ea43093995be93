"""`clinic-events report s3://...`: the same report as a local file, and the exit codes."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from bot.cli import main
from tests.helpers import ROOT, csv_of
from tests.s3.helpers import BUCKET

ROWS = csv_of(
    "e,c,p,TREATMENT_COMPLETED,2024-01-03T10:00:00Z,Implants,300.50",
    "e,c,p,TREATMENT_COMPLETED,2024-01-22,cleaning,12",
    "e,c,p,APPOINTMENT_SCHEDULED,2024-01-04,,",
    "e,c,p,X,not a date,,",
).encode()
ENV = {"S3_BUCKET": BUCKET}


def run(*argv: str, env: dict[str, str] = ENV) -> tuple[int, str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    code = main(list(argv), env=env, stdin=io.BytesIO(), stdout=stdout, stderr=stderr)
    return code, stdout.getvalue(), stderr.getvalue()


def test_report_from_s3_equals_report_from_file(s3: Any, bucket: str, tmp_path: Path) -> None:
    """An s3:// source gives the same JSON report as the same bytes in a local file."""
    s3.put_object(Bucket=bucket, Key="2024/events.csv", Body=ROWS)
    local = tmp_path / "events.csv"
    local.write_bytes(ROWS)
    code, out, err = run("report", f"s3://{bucket}/2024/events.csv", "--format", "json")
    assert (code, err) == (0, "")
    _, local_out, _ = run("report", str(local), "--format", "json")
    from_s3, from_file = json.loads(out), json.loads(local_out)
    assert from_s3.pop("source") == f"s3://{bucket}/2024/events.csv"
    del from_file["source"]
    assert from_s3 == from_file


def test_progress_knows_the_object_size(s3: Any, bucket: str) -> None:
    """--progress shows a percentage, which needs the size S3 reported (never 100% while
    reading: the line ends with the done line instead)."""
    s3.put_object(Bucket=bucket, Key="events.csv", Body=ROWS)
    code, _, err = run("report", f"s3://{bucket}/events.csv", "--progress")
    assert code == 0
    assert "99%" in err
    assert "done: " in err


def test_bucket_not_allowed_is_a_usage_error(s3: Any, bucket: str) -> None:
    """A bucket outside S3_ALLOWED_BUCKETS exits 2 with one line naming it."""
    code, out, err = run("report", "s3://payroll/salaries.csv")
    assert (code, out) == (2, "")
    assert err.startswith("clinic-events: error: bucket payroll is not in S3_ALLOWED_BUCKETS")
    assert err.count("\n") == 1


def test_s3_not_configured_is_a_usage_error() -> None:
    """With neither S3_BUCKET nor S3_ALLOWED_BUCKETS, the CLI says what to set and exits 2."""
    code, _, err = run("report", f"s3://{BUCKET}/events.csv", env={})
    assert code == 2
    assert "set S3_BUCKET or S3_ALLOWED_BUCKETS" in err


def test_malformed_s3_url_is_a_usage_error() -> None:
    """An s3:// URL without a key exits 2 and shows the expected form."""
    code, _, err = run("report", f"s3://{BUCKET}")
    assert code == 2
    assert "s3://BUCKET/KEY" in err


def test_missing_key_is_rejected(s3: Any, bucket: str) -> None:
    """A key that does not exist exits 3 with one line naming the URL."""
    code, out, err = run("report", f"s3://{bucket}/nope.csv")
    assert (code, out) == (3, "")
    assert err == f"clinic-events: error: s3://{bucket}/nope.csv does not exist\n"


def test_real_command_reads_s3(s3: Any, bucket: str, aws_env: str) -> None:
    """`python -m bot report s3://...` in a subprocess finds S3 through the AWS variables."""
    s3.put_object(Bucket=bucket, Key="events.csv", Body=ROWS)
    aws = {name: value for name, value in os.environ.items() if name.startswith("AWS_")}
    result = subprocess.run(
        [sys.executable, "-m", "bot", "report", f"s3://{bucket}/events.csv", "--format", "csv"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "S3_ALLOWED_BUCKETS": bucket, **aws},
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("week_start,")

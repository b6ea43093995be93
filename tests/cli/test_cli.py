"""`clinic-events report` through a real subprocess: formats, stdin, progress, exit codes."""

from __future__ import annotations

import contextlib
import csv
import fcntl
import gzip
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli import _open_source
from tests import oracle
from tests.helpers import ROOT, cli, csv_of, utf8_then_latin1

ROWS = csv_of(
    "e,c,p,TREATMENT_COMPLETED,2024-01-03T10:00:00Z,Implants,300.50",
    "e,c,p,TREATMENT_COMPLETED,2024-01-22,cleaning,12",
    "e,c,p,APPOINTMENT_SCHEDULED,2024-01-04,,",
    "e,c,p,X,not a date,,",
)


def cli_process(*args: str, stdin: int | None = None) -> subprocess.Popen[bytes]:
    """The CLI running, its stdout and stderr piped."""
    return subprocess.Popen(
        [sys.executable, "-m", "bot", *args],
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin"},
    )


@pytest.fixture
def events_csv(tmp_path: Path) -> Path:
    path = tmp_path / "events.csv"
    path.write_text(ROWS)
    return path


def test_json_format_is_the_contract(events_csv: Path) -> None:
    """--format json prints the documented shape, keys in order, amounts as strings."""
    result = cli("report", str(events_csv), "--format", "json")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # not a terminal, no --progress: nothing on stderr
    report = json.loads(result.stdout)
    assert list(report) == [
        "source",
        "timezone",
        "currency",
        "dialect",
        "rows",
        "errors",
        "warnings",
        "revenue",
        "first_day",
        "last_day",
        "totals",
        "headline",
        "weeks",
        "clinics",
    ]
    assert (report["source"], report["timezone"], report["currency"]) == (
        str(events_csv),
        "UTC",
        "USD",
    )
    assert list(report["errors"]) == [
        "malformed_row",
        "missing_required_field",
        "invalid_timestamp",
        "invalid_revenue",
    ]
    assert list(report["weeks"][0]) == [
        "week_start",
        "week_end",
        "revenue",
        "change_pct",
        "average_4w_revenue",
        "revenue_by_treatment",
        "treatments_completed",
        "appointments",
        "bookings",
        "events_by_type",
        "days_covered",
        "status",
        "appointment_outcomes",
        "cancellation_rate",
        "no_show_rate",
        "new_patients",
    ]
    assert list(report["headline"]) == [
        "latest_week",
        "latest_revenue",
        "previous_week",
        "previous_revenue",
        "change_pct",
        "average_4w_revenue",
        "best_week",
        "worst_week",
        "empty_weeks",
        "partial_weeks",
        "clinics_up",
        "clinics_down",
    ]
    assert list(report["clinics"][0]) == [
        "clinic_id",
        "revenue",
        "treatments_completed",
        "appointments",
        "bookings",
        "cancelled",
        "no_show",
        "weeks_active",
        "latest_week_revenue",
        "previous_week_revenue",
        "change_pct",
    ]
    del report["source"], report["currency"]
    assert report == oracle.analyze(ROWS.encode())


def test_csv_format(events_csv: Path) -> None:
    """--format csv: one row per week, fixed columns, then revenue per treatment type."""
    result = cli("report", str(events_csv), "--format", "csv")
    assert result.returncode == 0, result.stderr
    assert "\r" not in result.stdout
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0] == [
        "week_start",
        "week_end",
        "revenue",
        "treatments_completed",
        "appointments",
        "bookings",
        "status",
        "days_covered",
        "scheduled",
        "completed",
        "cancelled",
        "no_show",
        "rescheduled",
        "cancellation_rate",
        "no_show_rate",
        "new_patients",
        "revenue_change_pct",
        "revenue_cleaning",
        "revenue_implants",
    ]
    counts = ["1", "1", "0"]
    # The first and last weeks are cut short by the data (Wed..Sun, Mon only).
    assert rows[1] == ["2024-01-01", "2024-01-07", "300.50", *counts, "partial", "5",
                       "1", "0", "0", "0", "0", "", "", "0", "", "0.00", "300.50"]  # fmt: skip
    assert rows[2][:8] == ["2024-01-08", "2024-01-14", "0.00", "0", "0", "0", "empty", "7"]
    assert rows[4][:8] == ["2024-01-22", "2024-01-28", "12.00", "1", "0", "0", "partial", "1"]
    assert rows[4][-2:] == ["12.00", "0.00"]
    assert len(rows) == 5  # the two empty weeks in between are listed


def test_csv_by_clinic(tmp_path: Path) -> None:
    """--format csv --by clinic: one row per week and clinic that had a valid row."""
    path = tmp_path / "clinics.csv"
    path.write_text(
        csv_of(
            "e,B,p,TREATMENT_COMPLETED,2024-01-03,x,10.00",
            "e,A,p,APPOINTMENT_CANCELLED,2024-01-04,,",
            "e,A,p,APPOINTMENT_NO_SHOW,2024-01-09,,",
            "e,A,p,TREATMENT_COMPLETED,2024-01-10,x,2.50",
        )
    )
    result = cli("report", str(path), "--format", "csv", "--by", "clinic")
    assert result.returncode == 0, result.stderr
    assert list(csv.reader(io.StringIO(result.stdout))) == [
        ["week_start", "clinic_id", "revenue", "treatments_completed", "appointments",
         "bookings", "cancelled", "no_show"],
        ["2024-01-01", "A", "0.00", "0", "1", "0", "1", "0"],
        ["2024-01-01", "B", "10.00", "1", "0", "0", "0", "0"],
        ["2024-01-08", "A", "2.50", "1", "1", "0", "0", "1"],
    ]  # fmt: skip
    assert cli("report", str(path), "--by", "clinic").returncode == 2


def test_invalid_rows_file_lists_every_invalid_row(tmp_path: Path) -> None:
    """--invalid-rows FILE: every invalid row with its reason, column and words; no values."""
    rows = [f"e{i},c,p,X,2024-01-01,," for i in range(30)]
    rows += ["e,c,,X,2024-01-01,," for _ in range(25)]  # missing patient_id
    rows += ["e,c,SECRET-1,X,2024-02-30,,", "e,c,SECRET-2,X,0001-01-01,,", "e,c,p"]
    rows += ["e,c,p,TREATMENT_COMPLETED,2024-01-01,x,$5"]
    source = tmp_path / "events.csv"
    source.write_text(csv_of(*rows))
    out = tmp_path / "invalid.csv"
    result = cli("report", str(source), "--invalid-rows", str(out))
    assert result.returncode == 0, result.stderr
    lines = list(csv.reader(out.open()))
    assert lines[0] == ["row", "reason", "column", "detail"]
    assert len(lines) == 1 + 25 + 4  # all of them, not only the first 20 per reason
    assert lines[1] == ["32", "missing_required_field", "patient_id", "empty"]
    assert lines[26][:3] == ["57", "invalid_timestamp", "event_timestamp"]
    assert "no such date" in lines[26][3]
    assert lines[27][3] == "date out of range 1900-2199"
    assert lines[28] == ["59", "malformed_row", "", "expected 7 fields, found 3"]
    assert lines[29][:3] == ["60", "invalid_revenue", "revenue_amount"]
    assert "SECRET" not in out.read_text()
    assert "$5" not in out.read_text()


def test_the_invalid_rows_file_stops_at_its_limit(tmp_path: Path) -> None:
    """At most 100,000 lines, then one saying how many more there were."""
    source = tmp_path / "events.csv"
    source.write_text(csv_of(*(["e,c,p"] * 100_007)))
    out = tmp_path / "invalid.csv"
    assert cli("report", str(source), "--invalid-rows", str(out)).returncode == 0
    lines = list(csv.reader(out.open()))
    assert len(lines) == 1 + 100_000 + 1
    assert lines[-1] == ["", "", "", "and 7 more invalid rows, not listed here"]


def test_text_format(events_csv: Path) -> None:
    """The default is a readable table with totals and the error summary."""
    result = cli("report", str(events_csv))
    assert result.returncode == 0
    assert "Rows:     4 total, 3 valid, 1 invalid rows" in result.stdout
    assert "Total revenue: 312.50 USD over 4 weeks (1–28 Jan 2024)" in result.stdout
    assert "bad date: 1 (row 5)" in result.stdout
    assert "Latest complete week: none" in result.stdout  # both ends are cut short
    assert (
        "Data quality: ⚠ 1 row (25.0%) left out · no data 8–21 Jan 2024 · "
        "first week partial, 5 of 7 days · last week partial, 1 of 7 days"
    ) in result.stdout
    [first] = [line for line in result.stdout.splitlines() if line.startswith("1–7 Jan 2024")]
    assert first.split() == [
        "1–7", "Jan", "2024", "300.50", "1", "1", "0", "2", "partial,", "5", "of", "7", "days",
    ]  # fmt: skip
    weeks = [line[:14].strip() for line in result.stdout.splitlines() if " Jan 2024 " in line[:16]]
    assert weeks == [
        "22–28 Jan 2024",
        "15–21 Jan 2024",
        "8–14 Jan 2024",
        "1–7 Jan 2024",
    ]  # newest first


def test_stdin_pipe_and_env_defaults() -> None:
    """`-` reads a pipe; REPORT_TIMEZONE and CURRENCY set the defaults."""
    result = cli(
        "report",
        "-",
        "--format",
        "json",
        stdin=ROWS.encode(),
        env={"REPORT_TIMEZONE": "Asia/Tokyo", "CURRENCY": "eur"},
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert (report["source"], report["timezone"], report["currency"]) == (
        "stdin",
        "Asia/Tokyo",
        "EUR",
    )


def test_progress_flag_draws_on_stderr(tmp_path: Path) -> None:
    """--progress shows rows, bytes read, rate, revenue, errors and percent on stderr."""
    path = tmp_path / "big.csv"
    path.write_text(csv_of(*["e,c,p,TREATMENT_COMPLETED,2024-01-03,x,1.00"] * 20000))
    result = cli("report", str(path), "--progress", "--format", "csv", env={"COLUMNS": "200"})
    assert result.returncode == 0
    assert "rows/s" in result.stderr
    assert " KB" in result.stderr  # the file's 859 KB, in the size words of every surface
    assert "%" in result.stderr
    assert "revenue" in result.stderr
    assert "invalid" in result.stderr
    assert result.stderr.endswith(" s\n")
    assert "\x1b[Kdone: 20,000 rows in " in result.stderr


def test_the_progress_bar_fits_a_narrow_terminal() -> None:
    """40 columns: the fields that do not fit are dropped; no ETA in the first 2 s; never
    100% while reading."""
    from bot.cli import ProgressBar
    from processing import Progress

    now = [0.0]
    out = io.StringIO()
    bar = ProgressBar(out, 1_000_000, "USD", clock=lambda: now[0], width=40)
    progress = Progress(
        rows_total=1_234_567, rows_valid=1_234_000, revenue_cents=123_456_789,
        bytes_read=999_999, invalid_by_reason={},
    )  # fmt: skip
    now[0] = 1.0
    early = bar.line(progress, now[0])
    assert len(early) <= 39
    assert "left" not in early
    assert "99% | 1,234,567 rows" in early
    assert "revenue" not in early  # dropped: it does not fit
    wide = ProgressBar(io.StringIO(), 1_000_000, "USD", clock=lambda: now[0], width=200)
    later = wide.line(Progress(10, 10, 0, 250_000, {}), 10.0)
    assert later.startswith("[#######")
    assert "about 27 s left" in later


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["report", "missing.csv"], "file not found: missing.csv"),
        (["report", "{csv}", "--timezone", "Mars/Olympus"], "unknown timezone"),
        (["report", "{csv}", "--currency", "DOGE"], "unknown currency"),
        (["report", "{csv}", "--format", "xml"], "invalid choice"),
        (["report", "{csv}", "--bogus"], "unrecognized arguments"),
        (["report"], "required"),
        (["report", "{dir}"], "is a directory"),
    ],
)
def test_bad_usage_exits_2(args: list[str], message: str, events_csv: Path) -> None:
    """Bad usage exits 2 with one clear line and no traceback."""
    args = [a.format(csv=events_csv, dir=events_csv.parent) for a in args]
    result = cli(*args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            b"event_id,clinic_id\ne,c\n",
            "lacks patient_id, event_type and event_timestamp; columns found: event_id, clinic_id",
        ),
        (b"", "nothing to report"),
        (csv_of().encode(), "nothing to report"),
        (utf8_then_latin1("e,c,p,X,2024-01-01,caf\xe9,"), "row 40002 is not valid UTF-8"),
        (gzip.compress(ROWS.encode()), "gzip"),
    ],
)
def test_rejected_input_exits_3(content: bytes, message: str, tmp_path: Path) -> None:
    """A file that cannot be analysed exits 3 with what is wrong, in one line."""
    path = tmp_path / "input.csv"
    path.write_bytes(content)
    result = cli("report", str(path))
    assert result.returncode == 3
    assert message in result.stderr
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_no_patient_values_in_errors(tmp_path: Path) -> None:
    """Error output cites rows and columns, never values."""
    path = tmp_path / "input.csv"
    path.write_bytes(utf8_then_latin1("e,c,SECRET-PATIENT,X,2024-01-01,\xff,"))
    result = cli("report", str(path))
    assert result.returncode == 3
    assert "SECRET" not in result.stderr + result.stdout


@pytest.mark.skipif(not hasattr(fcntl, "F_GETPIPE_SZ"), reason="Linux pipes only")
def test_a_pipe_on_stdin_is_widened_and_read_ahead() -> None:
    """`cat export.csv | clinic-events report -`: the pipe holds 1 MiB, not 64 KiB, and a
    thread of its own reads it, so cat and the parser wait on each other less."""
    read_end, write_end = os.pipe()
    try:
        with os.fdopen(read_end, "rb", closefd=False) as stdin:
            stream, size, close = _open_source("-", stdin)
            assert stream is not stdin
            assert size is None
            assert close is None
            assert fcntl.fcntl(read_end, fcntl.F_GETPIPE_SZ) == 1 << 20
            os.write(write_end, b"event_id,clinic_id\n")
            os.close(write_end)
            write_end = -1
            assert b"".join(stream) == b"event_id,clinic_id\n"
    finally:
        os.close(read_end)
        if write_end >= 0:
            os.close(write_end)


def test_a_refused_pipe_ends_the_cli_while_its_writer_still_holds_it_open() -> None:
    """A gzip archive piped in: the CLI says so and exits, though the writer has not
    closed the pipe and the read-ahead thread is still waiting on it."""
    process = cli_process("report", "-", stdin=subprocess.PIPE)
    assert process.stdin is not None
    assert process.stderr is not None
    try:
        with contextlib.suppress(BrokenPipeError):  # the CLI may leave before it all is read
            process.stdin.write(b"\x1f\x8b" + bytes(2 << 20))  # past the 1 MiB the sniff reads
            process.stdin.flush()
        assert process.wait(timeout=60) == 3
        assert "gzip" in process.stderr.read().decode()
    finally:
        with contextlib.suppress(BrokenPipeError):
            process.stdin.close()
        process.kill()
        process.wait()


def test_a_reader_that_stops_early_ends_the_cli_quietly() -> None:
    """`clinic-events report ... | head -1`: exit code 1 and nothing on stderr, not a
    BrokenPipeError from the interpreter's last flush."""
    process = cli_process("report", "samples/events-sample.csv", "--format", "json")
    assert process.stdout is not None
    assert process.stderr is not None
    try:
        assert process.stdout.readline() == b"{\n"  # the report is 71 KB, more than a pipe holds
        process.stdout.close()
        assert process.wait(timeout=60) == 1
        assert process.stderr.read() == b""
    finally:
        process.kill()
        process.wait()


@pytest.mark.parametrize(
    ("pool_env", "backend"), [(None, "jemalloc"), ("mimalloc", "mimalloc"), ("system", "system")]
)
def test_the_cli_allocates_through_jemalloc_unless_told_otherwise(
    pool_env: str | None, backend: str
) -> None:
    """A quarter less peak memory than pyarrow's default; ARROW_DEFAULT_MEMORY_POOL wins."""
    code = (
        "import io, contextlib, pyarrow\n"
        "from bot.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    main(['report', 'samples/events-sample.csv', '--format', 'json'])\n"
        "print(pyarrow.default_memory_pool().backend_name)"
    )
    env = {key: value for key, value in os.environ.items() if key != "ARROW_DEFAULT_MEMORY_POOL"}
    if pool_env is not None:
        env["ARROW_DEFAULT_MEMORY_POOL"] = pool_env
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    )
    assert out.stdout.strip() == backend


@pytest.mark.parametrize(("given", "used"), [(None, "1"), ("4", "4")])
def test_openblas_gets_one_thread_unless_told_otherwise(given: str | None, used: str) -> None:
    """Nothing calls BLAS, and OpenBLAS's idle threads spin ~70 ms of CPU as numpy loads."""
    env = {key: value for key, value in os.environ.items() if key != "OPENBLAS_NUM_THREADS"}
    if given is not None:
        env["OPENBLAS_NUM_THREADS"] = given
    code = "import os, bot.cli, numpy; print(os.environ['OPENBLAS_NUM_THREADS'])"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    )
    assert out.stdout.strip() == used

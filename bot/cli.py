"""`clinic-events report`: the engine on a file, an s3:// object, or standard input.

Exit codes: 0 done (invalid rows are not a failure), 2 bad usage, 3 input rejected,
1 anything else. Errors end with one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import shutil
import stat
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, BinaryIO, NoReturn, TextIO

from bot.errors import (
    BucketNotAllowedError,
    S3Error,
    StoreError,
    UnknownCurrencyError,
    UnknownScopeError,
    UnsupportedSourceError,
    UsageError,
)
from bot.report.currency import parse_currency
from processing import (
    READ_SIZE,
    InputError,
    InvalidRowsCsv,
    Progress,
    WeeklyReport,
    analyze,
    estimate,
    grouped_amount,
    history_to_json,
    history_to_text,
    known_timezone,
    read_ahead,
    to_clinic_csv,
    to_csv,
    to_json,
    to_text,
)
from processing.words import file_size, time_left

if TYPE_CHECKING:
    from bot import scopes

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_REJECTED = 0, 1, 2, 3
PROGRESS_REDRAW_S = 0.2
PIPE_READ_AHEAD_CHUNKS = 8  # of READ_SIZE (1 MiB)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def build_parser(env: Mapping[str, str]) -> argparse.ArgumentParser:
    parser = _Parser(
        prog="clinic-events", description="Weekly business reports from clinic event exports."
    )
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    report = commands.add_parser(
        "report",
        help="analyse a CSV export and print the weekly report",
        description="Analyse a CSV export and print the weekly report.",
    )
    report.add_argument(
        "source",
        metavar="SOURCE",
        help="path to a CSV file, s3://BUCKET/KEY (a bucket in $S3_ALLOWED_BUCKETS or $S3_BUCKET), or - for standard input",
    )
    report.add_argument("--format", choices=("text", "json", "csv"), default="text")
    report.add_argument(
        "--by",
        choices=("week", "clinic"),
        default="week",
        help="with --format csv: one row per week (default), or per week and clinic",
    )
    report.add_argument(
        "--invalid-rows",
        metavar="FILE",
        help="also write every invalid row (row, reason, column, detail) to FILE as CSV",
    )
    report.add_argument(
        "--timezone",
        default=env.get("REPORT_TIMEZONE") or "UTC",
        help="IANA timezone in which weeks start on Monday 00:00 (default: $REPORT_TIMEZONE or UTC)",
    )
    report.add_argument(
        "--currency",
        default=env.get("CURRENCY") or "USD",
        help="ISO 4217 code the amounts are in (default: $CURRENCY or USD)",
    )
    commands.add_parser(
        "worker",
        help="scale-out: process jobs from the queue (JOB_QUEUE_URL, JOB_TABLE, S3_BUCKET)",
        description="Process jobs from the SQS queue: any number of workers on any number of "
        "machines, each running JOB_CONCURRENCY jobs. Serves /health and /metrics on HOST:PORT. "
        "SIGTERM stops receiving, lets running jobs finish for SHUTDOWN_GRACE_SECONDS and hands "
        "the rest back.",
    )
    commands.add_parser(
        "serve",
        help="run the Slack bot (when tokens are set) and the web upload server",
        description="Run the service: the Socket Mode bot when SLACK_BOT_TOKEN and SLACK_APP_TOKEN "
        "are set, and the web upload page and API on HOST:PORT. Settings come from the "
        "environment (see README.md); SIGTERM or Ctrl-C shuts down gracefully.",
    )
    store = commands.add_parser(
        "store",
        help="check the job store in DATA_DIR, or set a damaged one aside",
        description="check: SQLite's integrity check of DATA_DIR/jobs.sqlite3 (exit 1 if it "
        "is damaged). quarantine: move it aside as jobs.sqlite3.damaged-<time> (kept) so "
        "that the next serve starts with an empty store; refused while a serve runs.",
    )
    store.add_argument("action", choices=("check", "quarantine"))
    history = commands.add_parser(
        "history",
        help="print a scope's history report, list its exports, or forget it",
        description="The history of scope NAME (the exports `report --scope NAME` added, in "
        "DATA_DIR's store): each week from the export covering most of it, then the newer; "
        "the report over those weeks as text or JSON, or the weeks as CSV (--by clinic: per "
        "week and clinic). --exports lists the exports as CSV; --forget deletes the scope.",
    )
    history.add_argument("scope", metavar="NAME")
    history.add_argument("--format", choices=("text", "json", "csv"), default="text")
    history.add_argument("--by", choices=("week", "clinic"), default="week")
    what = history.add_mutually_exclusive_group()
    what.add_argument("--exports", action="store_true", help="the exports, as CSV")
    what.add_argument("--forget", action="store_true", help="delete the scope and its history")
    report.add_argument(
        "--scope",
        metavar="NAME",
        help="also add the export to scope NAME's history (DATA_DIR); the same file again is "
        "not added, and prints nothing",
    )
    report.add_argument(
        "--progress",
        action="store_true",
        help="draw the progress bar on stderr even when it is not a terminal",
    )
    return parser


def _zone(name: str) -> str:
    if not known_timezone(name):
        raise UsageError(f"unknown timezone {name!r}: use an IANA name such as Europe/Berlin")
    return name


def _widen_pipe(fd: int) -> None:
    """A 1 MiB pipe instead of 64 KiB: the writer and the parser switch 16x less often."""
    set_size = getattr(fcntl, "F_SETPIPE_SZ", None)  # Linux only
    if set_size is not None:
        with contextlib.suppress(OSError):  # above /proc/sys/fs/pipe-max-size: keep it
            fcntl.fcntl(fd, set_size, 1 << 20)


def _pipe_chunks(fd: int) -> Iterator[bytes]:
    """A pipe in READ_SIZE pieces. os.read, not stdin's buffered reader: a read-ahead thread
    still blocked in a buffered read at exit holds the buffer's lock, and the interpreter
    aborts when it flushes stdin. A read returns what the pipe holds (cat writes 128 KiB at
    a time), so pieces are gathered."""
    pieces: list[bytes] = []
    held = 0
    while piece := os.read(fd, READ_SIZE - held):
        pieces.append(piece)
        held += len(piece)
        if held == READ_SIZE:
            yield b"".join(pieces)
            pieces, held = [], 0
    if pieces:
        yield b"".join(pieces)


def _open_source(
    source: str, stdin: BinaryIO
) -> tuple[BinaryIO | Iterable[bytes], int | None, Callable[[], None] | None]:
    """The byte stream, its size when known (for percent and ETA) and how to close it. A
    pipe is read ahead in a thread of its own (processing.prefetch.read_ahead)."""
    if source == "-":
        try:
            info = os.fstat(stdin.fileno())
        except (OSError, ValueError):
            return stdin, None, None
        if stat.S_ISFIFO(info.st_mode):
            _widen_pipe(stdin.fileno())
            chunks = read_ahead(_pipe_chunks(stdin.fileno()), depth=PIPE_READ_AHEAD_CHUNKS)
            return chunks, None, None
        return stdin, info.st_size if stat.S_ISREG(info.st_mode) else None, None
    try:
        stream = open(source, "rb")  # noqa: SIM115 - closed by the caller
    except FileNotFoundError:
        raise UsageError(f"file not found: {source}") from None
    except IsADirectoryError:
        raise UsageError(f"{source} is a directory, not a CSV file") from None
    except PermissionError:
        raise UsageError(f"permission denied: {source}") from None
    return stream, os.fstat(stream.fileno()).st_size, stream.close


def _open_s3(url: str, env: Mapping[str, str]) -> tuple[Iterable[bytes], int, Callable[[], None]]:
    """The object's chunks, its size, and how to close it. AWS settings come from boto3."""
    from bot.aws import s3  # boto3 takes a moment to import; local files don't need it
    from bot.config import allowed_buckets_from_env

    location = s3.parse_s3_url(url)
    allowed = allowed_buckets_from_env(env)
    s3.check_bucket_allowed(location, allowed)  # a usage error wins over any AWS problem
    client = s3.make_client(env.get("AWS_REGION") or None)
    s3_object = s3.open_object(client, location, allowed_buckets=allowed)
    return s3_object.chunks(), s3_object.size_bytes, s3_object.close


class ProgressBar:
    """One self-overwriting line on stderr that fits the terminal: percent, rows, revenue,
    invalid rows, bytes read, rows/s and time left, dropping the least needed fields when narrow.
    It ends with one line, `done: 2,000,000 rows in 3.4 s`."""

    def __init__(
        self,
        out: TextIO,
        total_bytes: int | None,
        currency: str,
        clock: Callable[[], float] = time.monotonic,
        width: int | None = None,
    ) -> None:
        self._out = out
        self._total = total_bytes
        self._currency = currency
        self._clock = clock
        self._width = width if width is not None else shutil.get_terminal_size().columns
        self._started = clock()
        self._drawn_at = float("-inf")
        self._last: Progress | None = None

    def update(self, progress: Progress) -> None:
        self._last = progress
        now = self._clock()
        if now - self._drawn_at < PROGRESS_REDRAW_S:
            return
        self._drawn_at = now
        self._out.write("\r" + self.line(progress, now) + "\x1b[K")
        self._out.flush()

    def line(self, progress: Progress, now: float) -> str:
        elapsed = max(now - self._started, 1e-9)
        guess = estimate(progress.bytes_read, self._total, elapsed)
        # By how much each field is needed: the first ones stay on the narrowest terminal.
        fields = [
            f"{progress.rows_total:,} rows",
            f"revenue {grouped_amount(progress.revenue_cents)} {self._currency}",
            f"{progress.rows_invalid:,} invalid",
            file_size(progress.bytes_read),
            f"{progress.rows_total / elapsed:,.0f} rows/s",
        ]
        if guess.percent is not None:
            fields.insert(0, f"{guess.percent}%")
        if guess.left_s is not None:
            fields.append(time_left(guess.left_s))
        room = max(self._width - 1, 10)  # the last column would wrap on some terminals
        line = ""
        for field in fields:
            candidate = f"{line} | {field}" if line else field
            if len(candidate) > room:
                break
            line = candidate
        if guess.fraction is not None:
            cells = room - len(line) - 3
            if cells >= 10:
                filled = int(guess.fraction * min(cells, 30))
                line = f"[{'#' * filled:<{min(cells, 30)}}] " + line
        return line

    def finish(self, succeeded: bool = True) -> None:
        self._out.write("\r\x1b[K")
        if succeeded and self._last is not None:
            elapsed = self._clock() - self._started
            self._out.write(f"done: {self._last.rows_total:,} rows in {elapsed:,.1f} s\n")
        self._out.flush()


def _open_invalid_rows(path: str | None) -> tuple[InvalidRowsCsv, TextIO] | None:
    if path is None:
        return None
    try:
        out = open(path, "w", encoding="utf-8", newline="")  # noqa: SIM115 - closed by the caller
    except OSError as error:
        raise UsageError(f"cannot write {path}: {error.strerror or error}") from None
    return InvalidRowsCsv(out), out


def report_command(
    args: argparse.Namespace,
    stdin: BinaryIO,
    stdout: TextIO,
    stderr: TextIO,
    env: Mapping[str, str] = os.environ,
) -> int:
    timezone = _zone(args.timezone)
    try:
        currency = parse_currency(args.currency)
    except UnknownCurrencyError as error:
        raise UsageError(str(error)) from None
    if args.by == "clinic" and args.format != "csv":
        raise UsageError("--by clinic goes with --format csv")
    invalid_rows = _open_invalid_rows(args.invalid_rows)
    stream: BinaryIO | Iterable[bytes]
    size: int | None
    close: Callable[[], None] | None
    if args.source.lower().startswith("s3://"):
        stream, size, close = _open_s3(args.source, env)
    else:
        stream, size, close = _open_source(args.source, stdin)
    label = "stdin" if args.source == "-" else args.source
    received = None
    if args.scope is not None:
        from bot import scopes  # the store's modules: only when a scope is asked for

        stream = received = scopes.Hashed(stream)
    bar = ProgressBar(stderr, size, currency) if (args.progress or stderr.isatty()) else None
    succeeded = False
    try:
        report = analyze(
            stream,
            timezone=timezone,
            on_progress=bar.update if bar else None,
            on_invalid_rows=invalid_rows[0].add if invalid_rows else None,
        )
        succeeded = True
    finally:
        if bar:
            bar.finish(succeeded)
        if close is not None:
            close()
        if invalid_rows:
            invalid_rows[0].close()
            invalid_rows[1].close()
    if received is not None and not _remembered(args, env, report, received, label, stderr):
        return EXIT_OK  # the same file as an export the scope has: nothing printed again
    stdout.write(_formatted(report, args, label, currency))
    return EXIT_OK


def _formatted(report: WeeklyReport, args: argparse.Namespace, label: str, currency: str) -> str:
    if args.format == "json":
        return to_json(report, label, currency)
    if args.format == "csv":
        return to_clinic_csv(report) if args.by == "clinic" else to_csv(report)
    return to_text(report, label, currency)


def _remembered(
    args: argparse.Namespace,
    env: Mapping[str, str],
    report: WeeklyReport,
    received: scopes.Hashed,
    label: str,
    stderr: TextIO,
) -> bool:
    """The export added to its scope (or refused, saying why); False for the same file
    again, which is said on stderr."""
    from bot import scopes

    added = scopes.remember(
        scopes.data_dir(env),
        args.scope,
        report,
        source=label,
        received=received,
        currency=parse_currency(args.currency),
    )
    if added.outcome == "same_file" and added.export is not None:
        stderr.write(f"same file as export {added.export.id}\n")
        return False
    if added.outcome == "other_settings" and added.scope is not None:
        stderr.write(
            f"clinic-events: not added to scope {args.scope}: its weeks are in "
            f"{added.scope.timezone} and its amounts in {added.scope.currency}\n"
        )
    return True


def history_command(args: argparse.Namespace, stdout: TextIO, env: Mapping[str, str]) -> int:
    from bot import scopes

    directory = scopes.data_dir(env)
    if args.forget:
        if not scopes.forget(directory, args.scope):
            raise UnknownScopeError(args.scope)
        return EXIT_OK
    found = scopes.read(directory, args.scope)
    if found is None:
        raise UnknownScopeError(args.scope)
    if args.exports:
        stdout.write(scopes.exports_csv(found))
    elif args.format == "text":
        stdout.write(
            history_to_text(
                found.merged,
                scope=args.scope,
                currency=found.scope.currency,
                exports=len(found.exports),
            )
        )
    elif args.format == "json":
        stdout.write(
            history_to_json(
                found.merged,
                scope=args.scope,
                currency=found.scope.currency,
                exports=scopes.exports_json(found),
            )
        )
    elif args.by == "clinic":
        stdout.write(to_clinic_csv(found.merged.report))
    else:
        stdout.write(to_csv(found.merged.report, week_exports=found.merged.week_exports))
    return EXIT_OK


def serve_command(env: Mapping[str, str], stderr: TextIO, role: str = "serve") -> int:
    import asyncio

    from bot import logs
    from bot.app import new_event_loop, serve
    from bot.config import Settings
    from bot.errors import ConfigError, StoreError

    try:
        settings = Settings.from_env(env)
    except ConfigError as error:
        stderr.write(f"clinic-events: configuration error: {error}\n")
        return EXIT_USAGE
    if role == "worker" and not settings.scale_out:
        stderr.write(
            "clinic-events: configuration error: a worker needs JOB_QUEUE_URL, JOB_TABLE and "
            "S3_BUCKET (without them, `clinic-events serve` runs the jobs itself)\n"
        )
        return EXIT_USAGE
    logs.configure(level=settings.log_level, log_format=settings.log_format, stream=stderr)
    try:
        with asyncio.Runner(loop_factory=new_event_loop) as runner:
            runner.run(serve(settings, "worker" if role == "worker" else "serve"))
    except StoreError as error:  # names the file or folder, and what to do
        stderr.write(f"clinic-events: cannot start: {error}\n")
        return EXIT_FAILED
    except OSError as error:  # e.g. the port is taken
        stderr.write(f"clinic-events: cannot start: {error.strerror or error}\n")
        return EXIT_FAILED
    return EXIT_OK


def store_command(action: str, env: Mapping[str, str], stdout: TextIO) -> int:
    from pathlib import Path

    from bot.config import DEFAULT_DATA_DIR
    from bot.store import maintenance

    data_dir = Path(env.get("DATA_DIR", "").strip() or DEFAULT_DATA_DIR)
    if action == "check":
        return maintenance.check(data_dir, stdout)
    return maintenance.quarantine(data_dir, stdout)


def use_jemalloc(env: Mapping[str, str]) -> None:
    """pyarrow's jemalloc pool instead of its default, mimalloc: as fast here, and a quarter
    less peak memory (bench/README.md). ARROW_DEFAULT_MEMORY_POOL, when set, decides."""
    if "ARROW_DEFAULT_MEMORY_POOL" in env:
        return
    import pyarrow as pa

    with contextlib.suppress(NotImplementedError):  # a pyarrow built without jemalloc
        pa.set_memory_pool(pa.jemalloc_memory_pool())


def main(
    argv: Sequence[str] | None = None,
    *,
    env: Mapping[str, str] = os.environ,
    stdin: BinaryIO | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    exit_when_done: bool = False,
) -> int:
    stdin = stdin if stdin is not None else sys.stdin.buffer
    stdout = stdout if stdout is not None else sys.stdout
    stderr = stderr if stderr is not None else sys.stderr
    args = build_parser(env).parse_args(argv)
    use_jemalloc(env)
    if args.command in ("serve", "worker"):
        return serve_command(env, stderr, args.command)
    if args.command == "store":
        return store_command(args.action, env, stdout)
    if args.command == "history":
        code = _answered(lambda: history_command(args, stdout, env), stderr)
    else:
        code = _report(args, stdin, stdout, stderr, env)
    if exit_when_done:
        _exit_now(code, stdout, stderr)
    return code


def run() -> NoReturn:
    """The `clinic-events` script and `python -m bot`."""
    sys.exit(main(exit_when_done=True))


def _exit_now(code: int, *streams: TextIO) -> NoReturn:
    """After a report: out without the interpreter's teardown. Freeing every module and
    pyarrow's pools is a noticeable share of a small report (bench/README.md), and there is
    nothing left to save: the report is written, the --invalid-rows file closed, and a
    thread still reading a pipe has nothing anyone wants."""
    for stream in streams:
        try:
            stream.flush()
        except (OSError, ValueError):  # a reader that went away, a closed stream
            code = code or EXIT_FAILED
    os._exit(code)


def _report(
    args: argparse.Namespace,
    stdin: BinaryIO,
    stdout: TextIO,
    stderr: TextIO,
    env: Mapping[str, str],
) -> int:
    return _answered(lambda: report_command(args, stdin, stdout, stderr, env), stderr)


def _answered(command: Callable[[], int], stderr: TextIO) -> int:
    """A command's exit code, and whatever stopped it as one line on stderr."""
    try:
        return command()
    except (UsageError, UnsupportedSourceError, BucketNotAllowedError) as error:
        stderr.write(f"clinic-events: error: {error}\n")
        return EXIT_USAGE
    except InputError as error:
        stderr.write(f"clinic-events: file rejected: {error}\n")
        return EXIT_REJECTED
    except (S3Error, UnknownScopeError) as error:  # the message says what to fix
        stderr.write(f"clinic-events: error: {error}\n")
        return EXIT_REJECTED
    except StoreError as error:  # the message names DATA_DIR's file and what to do
        stderr.write(f"clinic-events: error: {error}\n")
        return EXIT_FAILED
    except KeyboardInterrupt:
        stderr.write("clinic-events: interrupted\n")
        return 130
    except BrokenPipeError:
        return EXIT_FAILED
    except Exception as error:  # the promise is one clear line, never a traceback
        stderr.write(f"clinic-events: error: unexpected failure ({type(error).__name__})\n")
        return EXIT_FAILED

"""`clinic-events report`: the engine on a file, S3 later, or standard input.

Exit codes: 0 done (invalid rows are not a failure), 2 bad usage, 3 input rejected,
1 anything else. Errors end with one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import stat
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import BinaryIO, NoReturn, TextIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.currency import UnknownCurrencyError, parse_currency
from processing import InputError, Progress, analyze, to_csv, to_json, to_text
from processing.render import grouped_amount

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_REJECTED = 0, 1, 2, 3
PROGRESS_REDRAW_S = 0.2


class UsageError(Exception):
    pass


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
        "source", metavar="SOURCE", help="path to a CSV file, or - for standard input"
    )
    report.add_argument("--format", choices=("text", "json", "csv"), default="text")
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
    report.add_argument(
        "--progress",
        action="store_true",
        help="draw the progress bar on stderr even when it is not a terminal",
    )
    return parser


def _zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise UsageError(
            f"unknown timezone {name!r}: use an IANA name such as Europe/Berlin"
        ) from None
    return name


def _open_source(source: str, stdin: BinaryIO) -> tuple[BinaryIO, int | None]:
    """The byte stream and its size when known (for percent and ETA)."""
    if source == "-":
        size = None
        try:
            info = os.fstat(stdin.fileno())
            size = info.st_size if stat.S_ISREG(info.st_mode) else None
        except (OSError, ValueError):
            pass
        return stdin, size
    try:
        stream = open(source, "rb")  # noqa: SIM115 - closed by the caller
    except FileNotFoundError:
        raise UsageError(f"file not found: {source}") from None
    except IsADirectoryError:
        raise UsageError(f"{source} is a directory, not a CSV file") from None
    except PermissionError:
        raise UsageError(f"permission denied: {source}") from None
    return stream, os.fstat(stream.fileno()).st_size


class ProgressBar:
    """One self-overwriting line on stderr: rows, MB, rows/s, revenue, errors, percent, ETA."""

    def __init__(
        self,
        out: TextIO,
        total_bytes: int | None,
        currency: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._out = out
        self._total = total_bytes
        self._currency = currency
        self._clock = clock
        self._started = clock()
        self._drawn_at = float("-inf")

    def update(self, progress: Progress) -> None:
        now = self._clock()
        if now - self._drawn_at < PROGRESS_REDRAW_S:
            return
        self._drawn_at = now
        self._out.write("\r" + self.line(progress, now) + "\x1b[K")
        self._out.flush()

    def line(self, progress: Progress, now: float) -> str:
        elapsed = max(now - self._started, 1e-9)
        parts = [
            f"{progress.rows_total:,} rows",
            f"{progress.bytes_read / 1e6:,.1f} MB",
            f"{progress.rows_total / elapsed:,.0f} rows/s",
            f"revenue {grouped_amount(progress.revenue_cents)} {self._currency}",
            f"{progress.rows_invalid:,} invalid",
        ]
        if self._total:
            fraction = min(progress.bytes_read / self._total, 1.0)
            eta = elapsed * (1 - fraction) / fraction if fraction > 0 else 0.0
            bar = "#" * int(fraction * 20)
            parts.insert(0, f"[{bar:<20}] {fraction:4.0%}")
            parts.append(f"ETA {eta:,.0f}s")
        return " | ".join(parts)

    def finish(self) -> None:
        self._out.write("\r\x1b[K")
        self._out.flush()


def report_command(
    args: argparse.Namespace, stdin: BinaryIO, stdout: TextIO, stderr: TextIO
) -> int:
    timezone = _zone(args.timezone)
    try:
        currency = parse_currency(args.currency)
    except UnknownCurrencyError as error:
        raise UsageError(str(error)) from None
    stream, size = _open_source(args.source, stdin)
    label = "stdin" if args.source == "-" else args.source
    bar = ProgressBar(stderr, size, currency) if (args.progress or stderr.isatty()) else None
    try:
        report = analyze(stream, timezone=timezone, on_progress=bar.update if bar else None)
    finally:
        if bar:
            bar.finish()
        if stream is not stdin:
            stream.close()
    if args.format == "json":
        stdout.write(to_json(report, label, currency))
    elif args.format == "csv":
        stdout.write(to_csv(report))
    else:
        stdout.write(to_text(report, label, currency))
    return EXIT_OK


def main(
    argv: Sequence[str] | None = None,
    *,
    env: Mapping[str, str] = os.environ,
    stdin: BinaryIO | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    stdin = stdin if stdin is not None else sys.stdin.buffer
    stdout = stdout if stdout is not None else sys.stdout
    stderr = stderr if stderr is not None else sys.stderr
    args = build_parser(env).parse_args(argv)
    try:
        return report_command(args, stdin, stdout, stderr)
    except UsageError as error:
        stderr.write(f"clinic-events: error: {error}\n")
        return EXIT_USAGE
    except InputError as error:
        stderr.write(f"clinic-events: file rejected: {error}\n")
        return EXIT_REJECTED
    except KeyboardInterrupt:
        stderr.write("clinic-events: interrupted\n")
        return 130
    except BrokenPipeError:
        return EXIT_FAILED
    except Exception as error:  # the promise is one clear line, never a traceback
        stderr.write(f"clinic-events: error: unexpected failure ({type(error).__name__})\n")
        return EXIT_FAILED

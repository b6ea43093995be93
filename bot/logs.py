"""structlog set-up: JSON lines off a terminal, readable lines on one; job_id via contextvars.

Library loggers (slack_bolt, slack_sdk, aiohttp, botocore) go through the same renderer, at
WARNING and above only: their debug output can include request bodies.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, Literal, TextIO

import structlog

from bot.errors import HiddenMessageError
from processing import ClinicEventsError

LIBRARY_LOGGERS = ("slack_bolt", "slack_sdk", "aiohttp", "botocore", "boto3", "urllib3", "asyncio")


def _hidden(error: BaseException) -> BaseException:
    if isinstance(error, ClinicEventsError):
        return error  # our messages cite rows and columns, never values
    name = f"{type(error).__module__}.{type(error).__qualname__}"
    stand_in = HiddenMessageError(f"{name} (message hidden: it may contain file data)")
    stand_in = stand_in.with_traceback(error.__traceback__)
    cause = error.__cause__ or error.__context__
    if cause is not None:
        stand_in.__cause__ = _hidden(cause)
    return stand_in


def hide_exception_messages(
    _logger: Any, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Keeps tracebacks (file, line, function) but drops foreign exceptions' messages."""
    exc_info = event.get("exc_info")
    if not exc_info:
        return event
    if exc_info is True:
        exc_info = sys.exc_info()
    error = exc_info if isinstance(exc_info, BaseException) else exc_info[1]
    if error is not None:
        hidden = _hidden(error)
        event["exc_info"] = (type(hidden), hidden, hidden.__traceback__)
    return event


def configure(
    *,
    level: str = "info",
    log_format: Literal["json", "console"] | None = None,
    stream: TextIO | None = None,
) -> None:
    stream = stream if stream is not None else sys.stderr
    if log_format is None:
        log_format = "console" if stream.isatty() else "json"
    shared: list[structlog.types.Processor] = [
        hide_exception_messages,
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if log_format == "json"
        else structlog.dev.ConsoleRenderer(colors=stream.isatty())
    )
    # Tracebacks without local variables: a frame's locals can hold a CSV row.
    exceptions: structlog.types.Processor = (
        structlog.processors.ExceptionRenderer(
            structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
        )
        if log_format == "json"
        else structlog.dev.set_exc_info
    )
    numeric_level = logging.getLevelNamesMapping()[level.upper()]
    structlog.configure(
        processors=[*shared, exceptions, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                hide_exception_messages,
                exceptions,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    for name in LIBRARY_LOGGERS:
        logging.getLogger(name).setLevel(max(numeric_level, logging.WARNING))

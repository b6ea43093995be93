"""structlog set-up: JSON lines off a terminal, readable lines on one; job_id via contextvars.

Library loggers (slack_bolt, slack_sdk, aiohttp, botocore) go through the same renderer, at
WARNING and above only: their debug output can include request bodies.
"""

from __future__ import annotations

import logging
import sys
from typing import Literal, TextIO

import structlog

LIBRARY_LOGGERS = ("slack_bolt", "slack_sdk", "aiohttp", "botocore", "boto3", "urllib3", "asyncio")


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
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if log_format == "json"
        else structlog.dev.ConsoleRenderer(colors=stream.isatty())
    )
    numeric_level = logging.getLevelNamesMapping()[level.upper()]
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.dict_tracebacks
            if log_format == "json"
            else structlog.dev.set_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(foreign_pre_chain=shared, processor=renderer)
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    for name in LIBRARY_LOGGERS:
        logging.getLogger(name).setLevel(max(numeric_level, logging.WARNING))

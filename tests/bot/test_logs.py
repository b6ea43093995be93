"""Logs: JSON off a terminal, job_id bound, and no file data even in a crash's traceback."""

from __future__ import annotations

import io
import json
import logging
from typing import Literal

import pytest
import structlog

from bot import logs
from processing import MissingColumnsError

ROW = "E1,C1,PATIENT-SECRET-42,TREATMENT_COMPLETED"


def crash() -> None:
    row = ROW  # a local a naive traceback renderer would print
    raise ValueError(f"CSV parse error near {row}")


@pytest.fixture(autouse=True)
def reset_structlog():
    yield
    structlog.reset_defaults()
    logging.getLogger().handlers.clear()


@pytest.mark.parametrize("log_format", ["json", "console"])
def test_a_crash_logs_its_traceback_but_not_the_row_it_held(
    log_format: Literal["json", "console"],
) -> None:
    """Frames and line numbers stay; the foreign message and the locals do not."""
    out = io.StringIO()
    logs.configure(log_format=log_format, stream=out)
    try:
        crash()
    except ValueError:
        structlog.get_logger().exception("job.crashed")
    try:
        crash()
    except ValueError:
        logging.getLogger("slack_bolt").exception("listener failed")
    text = out.getvalue()
    assert "PATIENT-SECRET-42" not in text
    assert "crash" in text
    assert "ValueError" in text
    assert "message hidden" in text


def test_our_own_errors_keep_their_messages() -> None:
    """ClinicEventsError messages are written to be shown, so they stay."""
    out = io.StringIO()
    logs.configure(log_format="json", stream=out)
    try:
        raise MissingColumnsError(["event_id"])
    except MissingColumnsError:
        structlog.get_logger().exception("job.failed")
    assert "the header lacks event_id" in out.getvalue()


def test_json_lines_carry_bound_context_and_level() -> None:
    """One JSON object per line, with contextvars such as job_id."""
    out = io.StringIO()
    logs.configure(log_format="json", level="info", stream=out)
    with structlog.contextvars.bound_contextvars(job_id="7f3a"):
        structlog.get_logger().info("job.started", rows=3)
    structlog.get_logger().debug("hidden at info")
    [line] = out.getvalue().splitlines()
    record = json.loads(line)
    assert record["event"] == "job.started"
    assert record["job_id"] == "7f3a"
    assert record["level"] == "info"
    assert record["rows"] == 3

"""Fixtures for every folder: moto's server (tests/aws.py), the sample, a chart that waits to
be drawn, and the service's event loop for async tests. What tests import by name is in
tests/helpers.py and each folder's helpers.py, never in a conftest.py or a test module."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from processing import WeeklyReport
from tests.helpers import CHART_GATE_TIMEOUT_S, ROOT, GatedChart

pytest_plugins = ["tests.aws"]  # moto's server: s3_endpoint, aws_env, s3, scale_out


@pytest.fixture
def sample_csv() -> Path:
    return ROOT / "samples" / "events-sample.csv"


@pytest.fixture
def gated_chart(monkeypatch: pytest.MonkeyPatch) -> Iterator[GatedChart]:
    """Jobs draw the real chart, but only once `release` is set."""
    from bot.report import artifacts

    gate = GatedChart(threading.Event(), threading.Event())
    draw = artifacts.render_chart

    def gated(report: WeeklyReport, *, currency: str) -> dict[str, bytes]:
        gate.drawing.set()
        gate.release.wait(CHART_GATE_TIMEOUT_S)
        return draw(report, currency=currency)

    monkeypatch.setattr(artifacts, "render_chart", gated)
    yield gate
    gate.release.set()  # a job still drawing ends with the test


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> dict[str, Any]:
    """Async tests run on the event loop the service runs on."""
    from bot.app import new_event_loop

    return {"service loop": new_event_loop}

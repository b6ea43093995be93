from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import reference  # noqa: E402

pytest_plugins = ["tests.aws"]  # moto's S3 server: s3_endpoint, aws_env, s3

from processing import WeeklyReport, analyze, to_dict  # noqa: E402
from processing.engine import InvalidRowsCallback  # noqa: E402

HEADER = "event_id,clinic_id,patient_id,event_type,event_timestamp,treatment_type,revenue_amount"


def report_of(
    data: bytes | str | Iterable[bytes],
    *,
    timezone: str = "UTC",
    block_size: int = 1 << 20,
    on_invalid_rows: InvalidRowsCallback | None = None,
) -> dict[str, Any]:
    """The engine's JSON report as a dict, without the source and currency labels."""
    if isinstance(data, str):
        data = data.encode()
    chunks = [data] if isinstance(data, bytes) else data
    report = analyze(
        iter(chunks), timezone=timezone, block_size=block_size, on_invalid_rows=on_invalid_rows
    )
    result = to_dict(report, "x", "USD")
    del result["source"], result["currency"]
    return result


def csv_of(*rows: str, header: str = HEADER) -> str:
    return "\n".join((header, *rows)) + "\n"


CHART_GATE_TIMEOUT_S = 30.0
UTF8_ROWS_BEFORE_BAD_BYTE = 40_000  # enough UTF-8 text (é) to fill the first 1 MiB block


def utf8_then_latin1(*rows: str, header: str = HEADER) -> bytes:
    """A UTF-8 file, é and all, whose last rows come in Latin-1: the first of those is
    row UTF8_ROWS_BEFORE_BAD_BYTE + 2, and the file is rejected there (a UTF-8 file that
    turns out not to be UTF-8 after the first block)."""
    filler = [
        f"e{i},c1,p1,APPOINTMENT_SCHEDULED,2024-01-01,é," for i in range(UTF8_ROWS_BEFORE_BAD_BYTE)
    ]
    return csv_of(*filler, header=header).encode() + "\n".join(rows).encode("latin-1") + b"\n"


@pytest.fixture
def engine() -> Callable[..., dict[str, Any]]:
    return report_of


@pytest.fixture
def oracle() -> Callable[..., dict[str, Any]]:
    return reference.analyze


@pytest.fixture
def sample_csv() -> Path:
    return ROOT / "samples" / "events-sample.csv"


@dataclass(frozen=True)
class GatedChart:
    drawing: threading.Event  # a job has asked for its chart
    release: threading.Event  # set it to let the real chart be drawn


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

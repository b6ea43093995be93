"""The weekly revenue chart: a readable PNG for any number of weeks and types."""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta

import numpy as np
import pytest
from matplotlib.image import imread

from bot.chart import revenue_chart_png
from processing import WeeklyReport, analyze
from tests.conftest import csv_of

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def report_of_weeks(weeks: int, *, types: int = 3, revenue: bool = True) -> WeeklyReport:
    rows = []
    for index in range(weeks):
        day = date(2024, 1, 1) + timedelta(weeks=index)
        for kind in range(types):
            amount = f"{(kind + 1) * 10 + index}.25" if revenue else "0"
            rows.append(
                f"e{index}-{kind},c1,p1,TREATMENT_COMPLETED,{day}T10:00:00Z,type {kind},{amount}"
            )
    return analyze(iter([csv_of(*rows).encode()]))


def decoded(png: bytes) -> np.ndarray:
    assert png.startswith(PNG_SIGNATURE)
    image = imread(io.BytesIO(png), format="png")
    height, width, channels = image.shape
    assert 1000 <= width <= 3000
    assert 500 <= height < width
    assert channels in (3, 4)
    return image


@pytest.fixture(scope="module")
def sixty_weeks() -> WeeklyReport:
    return report_of_weeks(60, types=12)


def test_sixty_weeks_make_a_wide_readable_png(sixty_weeks: WeeklyReport) -> None:
    """60 weeks and 12 types give a PNG that decodes, wider than tall, not blank."""
    image = decoded(revenue_chart_png(sixty_weeks, currency="USD"))
    assert image[..., :3].std() > 0.05


def test_a_single_week_is_charted() -> None:
    """One week still gives a chart."""
    decoded(revenue_chart_png(report_of_weeks(1), currency="EUR"))


def test_weeks_without_revenue_are_charted() -> None:
    """Only zero amounts: the chart says so instead of failing on an empty scale."""
    decoded(revenue_chart_png(report_of_weeks(3, revenue=False), currency="CHF"))


def test_five_hundred_types_in_one_week_are_charted() -> None:
    """Hundreds of types, one with a dollar sign in its name, are folded into "all other types"."""
    rows = [
        f"e{i},c1,p1,TREATMENT_COMPLETED,2024-01-02T10:00:00Z,${i} plan {'x' * 60},{i + 1}.00"
        for i in range(500)
    ]
    decoded(revenue_chart_png(analyze(iter([csv_of(*rows).encode()])), currency="GBP"))


def test_charts_drawn_in_parallel_threads_match(sixty_weeks: WeeklyReport) -> None:
    """No pyplot state: two threads drawing at once get the same bytes as one alone."""
    alone = revenue_chart_png(sixty_weeks, currency="USD")
    with ThreadPoolExecutor(max_workers=2) as pool:
        together = list(
            pool.map(lambda _: revenue_chart_png(sixty_weeks, currency="USD"), range(2))
        )
    assert together == [alone, alone]

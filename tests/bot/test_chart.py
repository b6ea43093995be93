"""The weekly revenue chart: a readable PNG for any number of weeks and types."""

from __future__ import annotations

import asyncio
import io
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta

import numpy as np
import pytest
import structlog
from matplotlib.image import imread
from matplotlib.text import Text

from bot.report.chart import revenue_chart, revenue_chart_png
from bot.report.currency import short_money
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


def test_size_and_smallest_text_are_legible_at_thumbnail_width(sixty_weeks: WeeklyReport) -> None:
    """1200 x 675 px, and no text smaller than 11 px when Slack shows it 600 px wide."""
    figure = revenue_chart(sixty_weeks, currency="USD")
    height, width, _ = decoded(revenue_chart_png(sixty_weeks, currency="USD")).shape
    assert (width, height) == (1200, 675)
    texts = [text for text in figure.findobj(Text) if text.get_text().strip()]
    assert texts
    smallest_px = min(text.get_fontsize() for text in texts) * figure.dpi / 72
    assert smallest_px * 600 / width >= 11


def test_legend_lists_types_largest_first_then_the_marks() -> None:
    """Legend: the types in the period table's order, "All other types", then no data,
    cut-short weeks and the 4-week average; names as people write them."""
    rows = []
    for index in range(12):
        if index == 5:
            continue  # a week without data
        day = date(2024, 1, 3) + timedelta(weeks=index)  # a Wednesday: the first week is cut short
        for rank, kind in enumerate(["root_canal", "implants", "a", "b", "c", "d", "e", "f", "g"]):
            rows.append(f"e,c,p,TREATMENT_COMPLETED,{day},{kind},{900 - rank * 100}.00")
    report = analyze(iter([csv_of(*rows).encode()]))
    [legend] = revenue_chart(report, currency="USD").legends
    labels = [text.get_text() for text in legend.get_texts()]
    assert labels == [
        "Root canal", "Implants", "A", "B", "C", "D", "E", "All other types",
        "No data", "Week cut short", "4-week average",
    ]  # fmt: skip
    expected = [entry.treatment_type for entry in report.totals.by_treatment]
    assert expected[:2] == ["root_canal", "implants"]


def test_fifteen_thousand_weeks_render_in_bounded_time() -> None:
    """Every week from 1900 to 2199 draws in well under 5 s (one stepped band per series)."""
    report = report_of_weeks(15_650, types=9)
    started = time.perf_counter()
    decoded(revenue_chart_png(report, currency="USD"))
    assert time.perf_counter() - started < 5


def test_axis_money_is_short() -> None:
    """$1.5M, $200K, $50, and a code where there is no symbol."""
    assert short_money(1_500_000, "USD") == "$1.5M"
    assert short_money(200_000, "USD") == "$200K"
    assert short_money(2_500, "CHF") == "CHF 2.5K"
    assert short_money(50, "EUR") == "€50"


async def test_a_starting_service_warms_the_chart_up_off_the_loop() -> None:
    """The first report's chart does not wait for matplotlib's fonts: the service draws a
    tiny figure in a worker thread as it starts, and that succeeds."""
    from bot.app import running
    from bot.config import Settings

    with structlog.testing.capture_logs() as logs:
        async with running(Settings(port=0), console=io.StringIO()) as service:
            [warm_up] = [
                task
                for task in service.background
                if task.get_coro().__name__ == "_warm_up_chart"  # type: ignore[union-attr]
            ]
            await asyncio.wait_for(warm_up, 60)
    assert not [log for log in logs if log["event"] == "chart.warm_up_failed"]

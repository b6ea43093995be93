"""The weekly revenue chart: a readable PNG for any number of weeks and types."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta

import numpy as np
import pytest
import structlog
from matplotlib.collections import PolyCollection
from matplotlib.colors import to_hex
from matplotlib.figure import Figure
from matplotlib.image import imread
from matplotlib.text import Text

from bot.report.chart import (
    COLORS,
    EMPTY_COLOR,
    OTHER_COLOR,
    TYPES_SHOWN,
    revenue_chart,
    revenue_chart_png,
    revenue_layers,
)
from bot.report.currency import short_money
from processing import WeeklyReport, analyze
from processing.words import OTHER_TYPES
from tests.helpers import csv_of

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def report_of_weeks(
    weeks: int, *, types: int = 3, revenue: bool = True, start: date = date(2024, 1, 1)
) -> WeeklyReport:
    rows = []
    for index in range(weeks):
        day = start + timedelta(weeks=index)
        for kind in range(types):
            amount = f"{(kind + 1) * 10 + index}.25" if revenue else "0"
            rows.append(
                f"e{index}-{kind},c1,p1,TREATMENT_COMPLETED,{day}T10:00:00Z,type {kind},{amount}"
            )
    return analyze(iter([csv_of(*rows).encode()]))


def report_of_cents(cents_by_type: Mapping[str, Sequence[int]]) -> WeeklyReport:
    """One treatment per type and week with those cents; the last week's on its Sunday, so
    that every week is complete and the legend holds no marks but the 4-week average."""
    weeks = len(next(iter(cents_by_type.values())))
    rows = []
    for week in range(weeks):
        day = date(2024, 1, 1) + timedelta(weeks=week, days=6 if week == weeks - 1 else 0)
        for kind, cents_per_week in cents_by_type.items():
            cents = cents_per_week[week]
            if cents:
                amount = f"{cents // 100}.{cents % 100:02d}"
                rows.append(
                    f"e{week}-{kind},c1,p1,TREATMENT_COMPLETED,{day}T10:00:00Z,{kind},{amount}"
                )
    return analyze(iter([csv_of(*rows).encode()]))


def ranked_types(count: int, weeks: int = 4) -> dict[str, list[int]]:
    """`count` types whose period revenue grows with their number, so that the largest comes
    last by name; each week's cents vary, none is zero, and no two types tie."""
    return {
        f"type {kind:02d}": [
            1_000 * (kind + 1) + 7 * ((week + kind) % 3) + 1 for week in range(weeks)
        ]
        for kind in range(count)
    }


def drawn_bars(figure: Figure) -> dict[str, dict[int, tuple[int, int]]]:
    """Every bar drawn, by colour and week: its bottom and top in cents, read back from the
    polygons (the only floats here; each edge is rounded to a cent once)."""
    [axes] = figure.axes
    bars: dict[str, dict[int, tuple[int, int]]] = {}
    for collection in axes.collections:
        rgba = np.asarray(collection.get_facecolor(), dtype=float)[0]
        color = to_hex((rgba[0], rgba[1], rgba[2], rgba[3]), keep_alpha=False)
        if not isinstance(collection, PolyCollection) or color == to_hex(EMPTY_COLOR):
            continue
        for path in collection.get_paths():
            vertices = np.asarray(path.vertices, dtype=float)
            xs, ys = vertices[:, 0], vertices[:, 1]
            week = round((xs.min() + xs.max()) / 2)
            bars.setdefault(color, {})[week] = (round(ys.min() * 100), round(ys.max() * 100))
    return bars


def legend_of(figure: Figure) -> list[tuple[str, str | None]]:
    """The legend top to bottom: each label, and the face colour of its patch (None for a
    line)."""
    [legend] = figure.legends
    entries = []
    for text, handle in zip(legend.get_texts(), legend.legend_handles, strict=True):
        face = getattr(handle, "get_facecolor", None)
        entries.append((text.get_text(), to_hex(face(), keep_alpha=False) if face else None))
    return entries


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
    smallest_px = min(float(text.get_fontsize()) for text in texts) * figure.dpi / 72
    assert smallest_px * 600 / width >= 11


def test_legend_lists_types_largest_first_then_the_marks() -> None:
    """Legend: the types in the period table's order, "Other", then no data,
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
        "Root canal", "Implants", "A", "B", "C", "D", "E", "Other",
        "No data", "Week cut short", "4-week average",
    ]  # fmt: skip
    expected = [entry.treatment_type for entry in report.totals.by_treatment]
    assert expected[:2] == ["root_canal", "implants"]


@pytest.mark.parametrize("types", [1, 7, 8, 30])
def test_at_most_seven_types_are_named_each_in_a_colour_of_its_own(types: int) -> None:
    """Up to 7 types, each has its own colour; past 7, the period's 7 largest are named and
    the rest stacked as one grey "Other" whose bars are their exact sum each week.
    Legend order is stacking order (bottom first): largest first, the others on top."""
    weeks = 4
    cents = ranked_types(types, weeks)
    figure = revenue_chart(report_of_cents(cents), currency="USD")

    largest_first = sorted(cents, key=lambda kind: sum(cents[kind]), reverse=True)
    named, folded = largest_first[:TYPES_SHOWN], largest_first[TYPES_SHOWN:]
    legend = legend_of(figure)
    layers = legend[:-1]
    assert legend[-1] == ("4-week average", None)
    assert [label for label, _ in layers] == [kind.capitalize() for kind in named] + (
        [OTHER_TYPES] if folded else []
    )
    colors = [color for _, color in layers]
    assert len(set(colors)) == len(colors)
    assert colors[: len(named)] == [to_hex(color) for color in COLORS[: len(named)]]
    assert (to_hex(OTHER_COLOR) in colors) == (types > TYPES_SHOWN)

    bars = drawn_bars(figure)
    assert set(bars) == set(colors)  # one colour per series drawn, none shared
    for week in range(weeks):
        stack = sorted(bars, key=lambda color: bars[color][week][0])
        assert stack == colors
        tops = [bars[color][week][1] for color in stack]
        bottoms = [bars[color][week][0] for color in stack]
        assert bottoms == [0, *tops[:-1]]
    by_label = {label: str(color) for (label, _), color in zip(layers, colors, strict=True)}
    for kind in named:
        drawn = bars[by_label[kind.capitalize()]]
        assert [drawn[week][1] - drawn[week][0] for week in range(weeks)] == cents[kind]
    if folded:
        other = bars[to_hex(OTHER_COLOR)]
        assert [other[week][1] - other[week][0] for week in range(weeks)] == [
            sum(cents[kind][week] for kind in folded) for week in range(weeks)
        ]


def test_other_is_the_exact_sum_in_cents_of_the_types_folded() -> None:
    """Amounts whose sum a float would round: the grey layer holds the folded types' integer
    sum, to the cent, every week."""
    huge_cents = 90_071_992_547_409_93  # above 2**53: a float cannot hold every cent
    cents = {
        f"type {kind:02d}": [huge_cents + kind * 1_000 + week for week in range(3)]
        for kind in range(12)
    }
    layers = revenue_layers(report_of_cents(cents))
    folded = [f"type {kind:02d}" for kind in range(12 - TYPES_SHOWN)]
    assert [layer.label for layer in layers][-2:] == ["Type 05", OTHER_TYPES]
    assert layers[-1].cents == tuple(sum(cents[kind][week] for kind in folded) for week in range(3))
    assert all(type(value) is int for layer in layers for value in layer.cents)


def test_types_are_ranked_by_the_whole_period_not_one_week() -> None:
    """The 7 named are the largest over the whole period: not the first week's, not the last
    week's, not the first by name. Aligners lead the last week and come first by name, yet are
    the period's smallest, so they are the one type folded."""
    cents = {"aligners": [0, 0, 5_000], "type 00": [100_000, 0, 0]}
    for kind in range(1, 7):  # the first week's order is the reverse of the period's
        cents[f"type {kind:02d}"] = [3_000 - 100 * kind, 3_000 + 300 * kind, 10 * kind]
    layers = revenue_layers(report_of_cents(cents))
    assert [layer.label for layer in layers] == [
        "Type 00", "Type 06", "Type 05", "Type 04", "Type 03", "Type 02", "Type 01", OTHER_TYPES,
    ]  # fmt: skip
    assert layers[-1].cents == (0, 0, 5_000)


def test_fifteen_thousand_weeks_are_drawn_as_one_band_per_series() -> None:
    """Every week from 1900 to 2199 is drawn, each series as one stepped band across the
    complete weeks (and the week cut short on its own), not a bar per week: that is what
    keeps a long period as cheap to draw as a short one. No wall-clock bound: a busy CI
    machine would make it flaky, and pytest's timeout already catches a hang."""
    report = report_of_weeks(15_650, types=9, start=date(1900, 1, 1))
    assert report.weeks[-1].week_start.year == 2199
    figure = revenue_chart(report, currency="USD")
    [axes] = figure.axes
    bars = [c for c in axes.collections if isinstance(c, PolyCollection)]
    assert len(bars) == 2 * len(revenue_layers(report))
    assert [len(collection.get_paths()) for collection in bars] == [1] * len(bars)
    spans = {
        (np.asarray(path.vertices)[:, 0].min(), np.asarray(path.vertices)[:, 0].max())
        for collection in bars
        for path in collection.get_paths()
    }
    complete = len(report.weeks) - 1
    assert spans == {(-0.5, complete - 0.5), (complete - 0.4, complete + 0.4)}
    decoded(revenue_chart_png(report, currency="USD"))


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

"""WeeklyReport -> weekly-revenue.png: revenue per week, stacked by treatment type, with the
4-week average, weeks cut short faded and hatched, and weeks without data marked.

Made to be read at Slack's thumbnail width and on a phone: 1200 x 675 px, no text under
11 pt (11.5 px when shown 600 px wide), the legend below the plot, a colour-blind-safe
palette (Okabe & Ito) in an order that never puts red next to green, money in short form
($1.5M). A bare `Figure` on the Agg canvas, never pyplot: pyplot keeps global state, and
jobs draw their charts in worker threads at the same time.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, MaxNLocator

from bot.report.currency import format_money, short_money
from processing import WeeklyReport
from processing.words import (
    AVERAGE_4W,
    CHART_TITLE,
    NO_DATA,
    NO_TREATMENT_REVENUE,
    NO_VALID_ROWS,
    OTHER_TYPES,
    PARTIAL_WEEK,
    date_range,
    day_month,
    treatment_name,
)

FIGURE_SIZE_IN: Final = (8.0, 4.5)
DPI: Final = 150
FONT_PT: Final = 11  # the smallest text: 11.5 px at 600 px wide
TITLE_PT: Final = 14
MAX_DATE_LABELS: Final = 7
BAR_WIDTH: Final = 0.8
GAPLESS_AFTER_WEEKS: Final = 104
MIN_SLOTS: Final = 6  # a lone week is drawn as a bar, not a wall
MAX_LEGEND_NAME_CHARS: Final = 22
# Okabe & Ito's palette without black (the average line), ordered so that vermillion and
# bluish green never stack next to each other, and yellow, the palest on white, last.
COLORS: Final = (
    "#0072B2",  # blue
    "#E69F00",  # orange
    "#56B4E9",  # sky blue
    "#D55E00",  # vermillion
    "#CC79A7",  # reddish purple
    "#009E73",  # bluish green
    "#F0E442",  # yellow, for a seventh type
)
# A colour of its own for each type named; the rest are stacked as one, in OTHER_COLOR.
TYPES_SHOWN: Final = len(COLORS)
OTHER_COLOR: Final = "#999999"
AVERAGE_COLOR: Final = "#000000"
EMPTY_COLOR: Final = "#EEEEEE"
PARTIAL_ALPHA: Final = 0.4
TEXT_COLOR: Final = "#333333"


@dataclass(frozen=True, slots=True)
class Layer:
    """One stacked series of the chart, as the legend names it."""

    label: str  # as people read it; a treatment name or OTHER_TYPES
    color: str
    cents: tuple[int, ...]  # per week of the report


def revenue_layers(report: WeeklyReport) -> list[Layer]:
    """The stacked series, bottom first, in legend order: the TYPES_SHOWN types with the most
    revenue over the whole period, largest first, each in a colour of its own; then, only when
    there are more types, all the others together as one grey layer on top."""
    ranked = [entry.treatment_type for entry in report.totals.by_treatment if entry.revenue_cents]
    shown, folded = ranked[:TYPES_SHOWN], frozenset(ranked[TYPES_SHOWN:])
    layers = [
        Layer(
            treatment_name(kind, MAX_LEGEND_NAME_CHARS),
            color,
            tuple(week.revenue_by_treatment_cents.get(kind, 0) for week in report.weeks),
        )
        for kind, color in zip(shown, COLORS, strict=False)
    ]
    if folded:
        rest = tuple(
            sum(cents for kind, cents in week.revenue_by_treatment_cents.items() if kind in folded)
            for week in report.weeks
        )
        layers.append(Layer(OTHER_TYPES, OTHER_COLOR, rest))
    return layers


def revenue_chart_png(report: WeeklyReport, *, currency: str) -> bytes:
    out = io.BytesIO()
    # The canvas draws once, laying the figure out on the way; savefig() would draw it twice
    # (a dry run for the layout first), for the same bytes. zlib level 1: encoding holds the
    # GIL, and the fastest level costs only a slightly larger file.
    canvas = revenue_chart(report, currency=currency).canvas
    assert isinstance(canvas, FigureCanvasAgg)
    canvas.print_png(  # type: ignore[no-untyped-call]
        out, metadata={"Software": None}, pil_kwargs={"compress_level": 1}
    )
    return out.getvalue()


def warm_up() -> None:
    """Draw a tiny figure with text, a line and a legend, as a service starts: matplotlib
    loads its fonts and renderer on the first draw, which the first report's chart would
    otherwise wait for after its last row (call it in a worker thread)."""
    figure = Figure(figsize=(2, 1), dpi=50)
    canvas = FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.plot([0, 1], [0, 1], label="warm-up")
    axes.set_title("warm-up")
    axes.legend()
    canvas.print_png(io.BytesIO())  # type: ignore[no-untyped-call]


def revenue_chart(report: WeeklyReport, *, currency: str) -> Figure:
    """The chart as a Figure (legend entries top to bottom as the reader scans them)."""
    figure = Figure(figsize=FIGURE_SIZE_IN, dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    weeks = report.weeks
    positions = np.arange(len(weeks), dtype=float)
    partial = np.array([week.status == "partial" for week in weeks], dtype=bool)
    empty = [index for index, week in enumerate(weeks) if week.status == "empty"]

    handles = _draw_layers(axes, revenue_layers(report), positions, partial)
    axes.autoscale_view()
    if empty:
        axes.add_collection(_empty_weeks(axes, positions[empty]))
        handles.append(Patch(facecolor=EMPTY_COLOR, edgecolor="#BBBBBB", label=NO_DATA))
    if partial.any():
        handles.append(
            Patch(facecolor="white", edgecolor=TEXT_COLOR, hatch="///", label=PARTIAL_WEEK)
        )
    average = [week.average_4w_revenue_cents for week in weeks]
    if any(cents is not None for cents in average):
        values = np.array([np.nan if c is None else c / 100 for c in average], dtype=float)
        axes.plot(positions, values, color=AVERAGE_COLOR, linewidth=1.6, zorder=3)
        handles.append(Line2D([], [], color=AVERAGE_COLOR, linewidth=1.6, label=AVERAGE_4W))

    _titles(axes, report, currency)
    _draw_weeks(axes, [week.week_start for week in weeks])
    _draw_money(axes, currency, has_revenue=report.revenue_cents > 0)
    if handles:
        figure.legend(
            handles=handles,
            loc="outside lower center",
            ncols=min(4, len(handles)),
            frameon=False,
            fontsize=FONT_PT,
            handlelength=1.2,
            columnspacing=1.2,
        )
    return figure


def _draw_layers(
    axes: Axes,
    layers: Sequence[Layer],
    positions: npt.NDArray[np.float64],
    partial: npt.NDArray[np.bool_],
) -> list[Artist]:
    """Stack the layers bottom first; their legend entries, in the same order."""
    handles: list[Artist] = []
    bottom_cents = [0] * len(positions)
    bottom = np.zeros(len(positions))
    for layer in layers:
        # Stacked in integer cents; floats only to draw, one division per bar edge.
        top_cents = [low + cents for low, cents in zip(bottom_cents, layer.cents, strict=True)]
        top = np.array(top_cents, dtype=float) / 100
        axes.add_collection(
            _bars(positions[~partial], bottom[~partial], top[~partial], layer.color)
        )
        if partial.any():
            axes.add_collection(
                _bars(positions[partial], bottom[partial], top[partial], layer.color, faded=True)
            )
        handles.append(Patch(facecolor=layer.color, label=_escaped(layer.label)))
        bottom_cents, bottom = top_cents, top
    return handles


def _titles(axes: Axes, report: WeeklyReport, currency: str) -> None:
    weeks = report.weeks
    if weeks:
        period = date_range(weeks[0].week_start, weeks[-1].week_end)
        subtitle = f"{period}  ·  total {format_money(report.revenue_cents, currency)}"
    else:
        subtitle = NO_VALID_ROWS
    axes.set_title(
        CHART_TITLE,
        loc="left",
        fontsize=TITLE_PT,
        fontweight="bold",
        pad=24,
        parse_math=False,
    )
    axes.annotate(
        subtitle,
        xy=(0, 1),
        xycoords="axes fraction",
        xytext=(0, 6),
        textcoords="offset points",
        fontsize=FONT_PT,
        color=TEXT_COLOR,
        parse_math=False,
    )


def _bars(
    positions: npt.NDArray[np.float64],
    bottom: npt.NDArray[np.float64],
    top: npt.NDArray[np.float64],
    color: str,
    *,
    faded: bool = False,
) -> PolyCollection:
    """One artist for a whole series: `Axes.bar` would make a patch per bar, each one
    created, laid out and drawn on its own."""
    style: dict[str, Any] = {
        "facecolors": color,
        "edgecolors": TEXT_COLOR if faded else "none",
        "linewidths": 0.6 if faded else 0,
        "alpha": PARTIAL_ALPHA if faded else None,
        "hatch": "///" if faded else None,
    }
    if len(positions) > GAPLESS_AFTER_WEEKS and not faded:
        return PolyCollection(_stepped_band(positions, bottom, top), **style)
    left, right = positions - BAR_WIDTH / 2, positions + BAR_WIDTH / 2
    corners = np.stack(
        [
            np.column_stack([left, bottom]),
            np.column_stack([left, top]),
            np.column_stack([right, top]),
            np.column_stack([right, bottom]),
        ],
        axis=1,
    )
    return PolyCollection(list(corners), **style)


def _stepped_band(
    positions: npt.NDArray[np.float64],
    bottom: npt.NDArray[np.float64],
    top: npt.NDArray[np.float64],
) -> list[npt.NDArray[np.float64]]:
    """Past two years the gaps between thin bars only add stripes, so touching bars are drawn
    as stepped polygons, one per run of neighbouring weeks: the same picture, and a few paths
    for Agg to fill instead of one per week, however many weeks the report spans."""
    breaks = np.flatnonzero(np.diff(positions) != 1) + 1
    polygons = []
    for run in np.split(np.arange(len(positions)), breaks):
        if not len(run):
            continue
        edges = np.repeat(positions[run], 2) + np.tile([-0.5, 0.5], len(run))
        upper = np.column_stack([edges, np.repeat(top[run], 2)])
        lower = np.column_stack([edges[::-1], np.repeat(bottom[run], 2)[::-1]])
        polygons.append(np.concatenate([upper, lower]))
    return polygons


def _empty_weeks(axes: Axes, positions: npt.NDArray[np.float64]) -> PolyCollection:
    """A pale band, full height, behind each week without data: a gap, not a collapse."""
    half = 0.5
    bands = [
        np.array([[x - half, 0.0], [x - half, 1.0], [x + half, 1.0], [x + half, 0.0]])
        for x in positions
    ]
    return PolyCollection(
        bands,
        facecolors=EMPTY_COLOR,
        edgecolors="none",
        transform=axes.get_xaxis_transform(),
        zorder=0,
    )


def _draw_weeks(axes: Axes, mondays: Sequence[date]) -> None:
    """At most MAX_DATE_LABELS week labels; the year under the first and at each new year."""
    count = len(mondays)
    slots = max(count, MIN_SLOTS)
    axes.set_xlim(-0.5 - (slots - count) / 2, count - 0.5 + (slots - count) / 2)
    step = max(1, math.ceil(count / MAX_DATE_LABELS))
    ticks = list(range(0, count, step))
    labels = []
    previous_year = None
    for index in ticks:
        monday = mondays[index]
        label = day_month(monday)
        if monday.year != previous_year:
            label += f"\n{monday.year}"
            previous_year = monday.year
        labels.append(label)
    axes.set_xticks(ticks, labels, fontsize=FONT_PT, color=TEXT_COLOR)
    axes.tick_params(axis="x", length=0)


def _draw_money(axes: Axes, currency: str, *, has_revenue: bool) -> None:
    axes.yaxis.set_major_locator(MaxNLocator(nbins=5, steps=[1, 2, 2.5, 5, 10]))
    # "\$": a label holding two dollar signs would otherwise be read as a formula.
    axes.yaxis.set_major_formatter(
        FuncFormatter(lambda value, _: short_money(value, currency).replace("$", r"\$"))
    )
    axes.tick_params(axis="y", labelsize=FONT_PT, labelcolor=TEXT_COLOR, length=0)
    axes.set_ylim(bottom=0)
    if not has_revenue:
        axes.set_ylim(0, 100)
        axes.text(
            0.5,
            0.5,
            NO_TREATMENT_REVENUE,
            transform=axes.transAxes,
            ha="center",
            va="center",
            fontsize=FONT_PT,
            color=TEXT_COLOR,
            parse_math=False,
        )
    axes.grid(axis="y", color="#DDDDDD", linewidth=0.8)
    axes.set_axisbelow(True)
    for side in ("top", "right", "left"):
        axes.spines[side].set_visible(False)


def _escaped(label: str) -> str:
    """A legend label drawn as written: a "$" would otherwise start a formula."""
    return label.replace("$", r"\$")

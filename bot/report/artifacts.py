"""Everything a finished report is shown as, rendered once when its job ends: the job API's
JSON first, then the files (the CSVs and the chart). Slack posts these same bytes; the store
keeps them, so the web page and its downloads survive a restart and any `serve` instance can
answer for any job.

The report's JSON is all a job waits for, being the quickest to make; the files come after
it, the chart and the clinic CSV of many clinics the slowest of them. They are stored
together, the chart last: once it is there (CHART_FAILED, empty, when it could not be drawn),
every file is, so the API can tell "still being made" from "never coming".
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

from bot.report.chart import revenue_chart_png
from bot.store import REPORT_JSON
from processing import WeeklyReport, to_clinic_csv, to_csv, to_dict
from processing.words import CHART_TITLE, display_words

# The files a report comes with, in Slack and from the job API alike.
REPORT_CSV_NAME: Final = "weekly-report.csv"
CLINIC_CSV_NAME: Final = "clinic-weekly.csv"
INVALID_ROWS_CSV_NAME: Final = "invalid-rows.csv"
CHART_PNG_NAME: Final = "weekly-revenue.png"
CHART_FAILED: Final = b""
JSON_PIECE_DEPTH: Final = 3  # the body, the report, its lists, then each week or clinic whole
# The shape of the page's words (`display`). Raised when a key the page reads changes, so
# that a report stored by an earlier version is told apart and never shown half-worded.
DISPLAY_VERSION = 2
DISPLAY_PREFIX = b'{"display_version":%d,' % DISPLAY_VERSION


@dataclass(frozen=True, slots=True)
class ReportFile:
    name: str
    title: str
    content: bytes


# In the order they are posted in a Slack thread.
FILE_TITLES: Final = {
    CHART_PNG_NAME: CHART_TITLE,
    REPORT_CSV_NAME: "Weekly report (CSV)",
    CLINIC_CSV_NAME: "Weekly figures per clinic (CSV)",
    INVALID_ROWS_CSV_NAME: "Invalid rows, with the reason for each (CSV)",
}


def render_report(report: WeeklyReport, *, source_name: str, currency: str) -> dict[str, bytes]:
    """The report's JSON by name. CPU-bound for thousands of weeks: call it in a worker
    thread."""
    return {REPORT_JSON: report_json(report, source_name=source_name, currency=currency)}


def render_csvs(report: WeeklyReport, *, invalid_rows_csv: str | None) -> dict[str, bytes]:
    """The CSV files by name. CPU-bound: call it in a worker thread."""
    csvs = {
        REPORT_CSV_NAME: to_csv(report).encode(),
        CLINIC_CSV_NAME: to_clinic_csv(report).encode(),
    }
    if invalid_rows_csv:
        csvs[INVALID_ROWS_CSV_NAME] = invalid_rows_csv.encode()
    return csvs


def render_chart(report: WeeklyReport, *, currency: str) -> dict[str, bytes]:
    """The chart by name. CPU-bound: call it in a worker thread."""
    return {CHART_PNG_NAME: revenue_chart_png(report, currency=currency)}


def files(artifacts: Mapping[str, bytes]) -> list[ReportFile]:
    """The files a Slack thread gets, in order (a chart that could not be drawn left out)."""
    return [
        ReportFile(name, title, artifacts[name])
        for name, title in FILE_TITLES.items()
        if artifacts.get(name)
    ]


def report_json(report: WeeklyReport, *, source_name: str, currency: str) -> bytes:
    """The job API's `report`, `treatment_names` and `display` as one JSON object: the page
    formats these words and figures; it never derives one, nor writes a sentence."""
    display = display_words(report, source_name=source_name, currency=currency)
    body = {
        # First, so that a stored report's words are known current from its first bytes.
        "display_version": DISPLAY_VERSION,
        "report": to_dict(report, source_name, currency),
        "treatment_names": display["treatment_names"],
        "display": display,
    }
    return "".join(json_pieces(body)).encode("ascii")  # json.dumps escapes to ASCII


def current_display(stored: bytes) -> bool:
    """Whether a stored report_json() carries the words this version of the page reads."""
    return stored.startswith(DISPLAY_PREFIX)


def json_pieces(value: Any, depth: int = 0) -> Iterator[str]:
    """JSON text in pieces: json.dumps per week or clinic rather than one call for the
    whole report. Each small C call holds the GIL only briefly, where one call over a large
    report would hold it long enough to stall the event loop, and the pure-Python encoder
    would build a great many small strings."""
    if depth < JSON_PIECE_DEPTH and isinstance(value, dict):
        yield "{"
        for index, (key, item) in enumerate(value.items()):
            yield ("," if index else "") + json.dumps(key) + ":"
            yield from json_pieces(item, depth + 1)
        yield "}"
    elif depth < JSON_PIECE_DEPTH and isinstance(value, list):
        yield "["
        for index, item in enumerate(value):
            yield ("," if index else "") + json.dumps(item)
        yield "]"
    else:
        yield json.dumps(value)

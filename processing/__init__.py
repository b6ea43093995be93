"""Streaming weekly analytics for clinic event exports: bytes in, a WeeklyReport out.

Pure: no logging, no network, no asyncio; callers decide which thread runs it.
"""

from processing.dialect import Dialect
from processing.engine import analyze
from processing.errors import (
    AnalysisCancelled,
    ClinicEventsError,
    EncodingError,
    HeaderTooLongError,
    InputError,
    MissingColumnsError,
    NoRowsError,
    NotCsvError,
    TooManyValuesError,
)
from processing.render import to_csv, to_dict, to_json, to_text
from processing.report import Progress, ReasonSummary, WeeklyReport, WeekStats
from processing.schema import REASONS, REQUIRED_COLUMNS

__all__ = [
    "REASONS",
    "REQUIRED_COLUMNS",
    "AnalysisCancelled",
    "ClinicEventsError",
    "Dialect",
    "EncodingError",
    "HeaderTooLongError",
    "InputError",
    "MissingColumnsError",
    "NoRowsError",
    "NotCsvError",
    "Progress",
    "ReasonSummary",
    "TooManyValuesError",
    "WeekStats",
    "WeeklyReport",
    "analyze",
    "to_csv",
    "to_dict",
    "to_json",
    "to_text",
]

"""Streaming weekly analytics for clinic event exports: bytes in, a WeeklyReport out.

Pure: no logging, no network, no asyncio; callers decide which thread runs it.
"""

from processing.dialect import Dialect
from processing.engine import analyze
from processing.errors import (
    AnalysisCancelled,
    ClinicEventsError,
    EncodingError,
    HeaderMissingError,
    HeaderTooLongError,
    InputError,
    MissingColumnsError,
    NoRowsError,
    NotCsvError,
    TooManyValuesError,
)
from processing.render import InvalidRowsCsv, to_clinic_csv, to_csv, to_dict, to_json, to_text
from processing.report import (
    ClinicStats,
    Headline,
    InvalidRow,
    Progress,
    ReasonSummary,
    WeeklyReport,
    WeekStats,
)
from processing.schema import REASONS, REQUIRED_COLUMNS
from processing.timestamps import known_timezone

__all__ = [
    "REASONS",
    "REQUIRED_COLUMNS",
    "AnalysisCancelled",
    "ClinicEventsError",
    "ClinicStats",
    "Dialect",
    "EncodingError",
    "HeaderMissingError",
    "HeaderTooLongError",
    "Headline",
    "InputError",
    "InvalidRow",
    "InvalidRowsCsv",
    "MissingColumnsError",
    "NoRowsError",
    "NotCsvError",
    "Progress",
    "ReasonSummary",
    "TooManyValuesError",
    "WeekStats",
    "WeeklyReport",
    "analyze",
    "known_timezone",
    "to_clinic_csv",
    "to_csv",
    "to_dict",
    "to_json",
    "to_text",
]

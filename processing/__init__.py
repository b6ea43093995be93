"""Streaming weekly analytics for clinic event exports: bytes in, a WeeklyReport out.

Pure: no logging, no network, no asyncio; callers decide which thread runs it.

This module is the facade bot/ imports from. Besides it, `processing.words` (every word a
person reads) and `processing.text` (hostile text made displayable) are public modules;
every other module is the engine's own.
"""

from processing.dialect import Dialect
from processing.engine import analyze
from processing.errors import (
    AnalysisCancelledError,
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
from processing.history import (
    HISTORY_WEEKS,
    Export,
    History,
    Restatement,
    decode_export,
    encode_export,
    export_of,
    merge,
    restatements,
)
from processing.prefetch import read_ahead
from processing.reader import READ_SIZE
from processing.render import (
    InvalidRowsCsv,
    amount,
    grouped_amount,
    history_to_json,
    history_to_text,
    iso_utc,
    to_clinic_csv,
    to_csv,
    to_dict,
    to_json,
    to_text,
)
from processing.report import (
    ClinicMovers,
    ClinicStats,
    Estimate,
    Headline,
    InvalidRow,
    PeriodTotals,
    Progress,
    ReasonSummary,
    WeeklyReport,
    WeekStats,
    estimate,
)
from processing.schema import REASONS, REQUIRED_COLUMNS
from processing.timestamps import known_timezone

__all__ = [
    "HISTORY_WEEKS",
    "READ_SIZE",
    "REASONS",
    "REQUIRED_COLUMNS",
    "AnalysisCancelledError",
    "ClinicEventsError",
    "ClinicMovers",
    "ClinicStats",
    "Dialect",
    "EncodingError",
    "Estimate",
    "Export",
    "HeaderMissingError",
    "HeaderTooLongError",
    "Headline",
    "History",
    "InputError",
    "InvalidRow",
    "InvalidRowsCsv",
    "MissingColumnsError",
    "NoRowsError",
    "NotCsvError",
    "PeriodTotals",
    "Progress",
    "ReasonSummary",
    "Restatement",
    "TooManyValuesError",
    "WeekStats",
    "WeeklyReport",
    "amount",
    "analyze",
    "decode_export",
    "encode_export",
    "estimate",
    "export_of",
    "grouped_amount",
    "history_to_json",
    "history_to_text",
    "iso_utc",
    "known_timezone",
    "merge",
    "read_ahead",
    "restatements",
    "to_clinic_csv",
    "to_csv",
    "to_dict",
    "to_json",
    "to_text",
]

"""The CSV contract: column names, row error reasons and event categories."""

from __future__ import annotations

import functools
from typing import Final

REQUIRED_COLUMNS: Final = ("event_id", "clinic_id", "patient_id", "event_type", "event_timestamp")
EVENT_TYPE_COLUMN: Final = "event_type"
CLINIC_COLUMN: Final = "clinic_id"
TIMESTAMP_COLUMN: Final = "event_timestamp"
REVENUE_COLUMN: Final = "revenue_amount"
TREATMENT_COLUMN: Final = "treatment_type"

# In the order they are checked: a bad row counts under the first that applies.
MALFORMED_ROW: Final = "malformed_row"
MISSING_REQUIRED_FIELD: Final = "missing_required_field"
INVALID_TIMESTAMP: Final = "invalid_timestamp"
INVALID_REVENUE: Final = "invalid_revenue"
REASONS: Final = (MALFORMED_ROW, MISSING_REQUIRED_FIELD, INVALID_TIMESTAMP, INVALID_REVENUE)

FIRST_ROWS_KEPT: Final = 20
# Distinct values per label column (event types, treatment types): types are a short list,
# so a file past this has its columns mixed up, and memory stays bounded.
MAX_DISTINCT_VALUES: Final = 10_000
# Distinct (week, type) pairs per label column. Both bounds alone still allow 15,654 weeks x
# 10,000 types; a real export has a few thousand pairs. This keeps the report, and memory,
# bounded whatever the file.
MAX_WEEK_VALUE_PAIRS: Final = 200_000
# Distinct (week, clinic) pairs: 5,000 clinics over two years fit, and memory stays bounded.
MAX_WEEK_CLINIC_PAIRS: Final = 1_000_000

TREATMENT_COMPLETED: Final = "TREATMENT_COMPLETED"
UNKNOWN_TREATMENT: Final = "unknown"

# Everything str.strip() removes (every character whose isspace() is true), so that
# "trimmed" means the same in every code path. Written out, because finding them would add
# to every run's start-up; a test checks the list against isspace() for every code point.
ASCII_WHITESPACE: Final = "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f "
WHITESPACE: Final = (
    ASCII_WHITESPACE
    + "\x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    + "\u2028\u2029\u202f\u205f\u3000"
)


def is_appointment(event_type: str) -> bool:
    return "APPOINTMENT" in event_type


def is_booking(event_type: str) -> bool:
    return "BOOKING" in event_type or "BOOKED" in event_type


# Appointment outcomes: substring rules on the upper-cased type, the first match wins; the
# last two apply only to types that contain APPOINTMENT.
SCHEDULED: Final = "scheduled"
COMPLETED: Final = "completed"
CANCELLED: Final = "cancelled"
NO_SHOW: Final = "no_show"
RESCHEDULED: Final = "rescheduled"
OUTCOMES: Final = (SCHEDULED, COMPLETED, CANCELLED, NO_SHOW, RESCHEDULED)
_OUTCOME_RULES: Final = (
    (("CANCEL",), CANCELLED, False),
    (("NO_SHOW", "NOSHOW", "MISSED"), NO_SHOW, False),
    (("RESCHEDUL",), RESCHEDULED, False),
    (("COMPLETED", "ATTENDED", "CHECKED_OUT"), COMPLETED, True),
    (("SCHEDULED", "CREATED", "BOOKED", "CONFIRMED"), SCHEDULED, True),
)


@functools.lru_cache(maxsize=1024)  # asked once per week and event type
def appointment_outcome(event_type: str) -> str | None:
    """'APPOINTMENT_CANCELLED' -> 'cancelled'; None for types that are no outcome."""
    appointment = is_appointment(event_type)
    for words, outcome, needs_appointment in _OUTCOME_RULES:
        if (appointment or not needs_appointment) and any(w in event_type for w in words):
            return outcome
    return None


def is_new_patient(event_type: str) -> bool:
    return "REGISTER" in event_type or "NEW_PATIENT" in event_type

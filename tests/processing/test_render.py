"""The report as JSON: the bytes json.dumps(indent=2) would write, formatted in C."""

from __future__ import annotations

import json

import pytest

from processing import analyze, to_dict, to_json
from tests.helpers import csv_of

AWKWARD_LABELS = csv_of(
    'e1,"c ""1""",p1,TREATMENT_COMPLETED,2024-01-03,"back\\slash ""quoted""",10.50',
    "e2,cl\u00efnic \u00e9,p2,TREATMENT_COMPLETED,2024-01-04,\u6b6f\u79d1 \U0001f9b7,0.10",
    "e3,c3,p3,TREATMENT_COMPLETED,2024-01-12,\x1b]0;x\x07 \u2028 \x7f,3",
    "e4,c3,p4,APPOINTMENT_NO_SHOW,2024-01-12,,",
    "e5,c3,p5,X,not a date,,",
)
ONE_ROW = csv_of("e1,c1,p1,APPOINTMENT_SCHEDULED,2024-01-01,,")


@pytest.mark.parametrize("data", [AWKWARD_LABELS, ONE_ROW], ids=["awkward labels", "one row"])
def test_json_is_what_json_dumps_writes(data: str) -> None:
    """Quotes, backslashes, non-ASCII, emoji, control characters, empty lists and maps."""
    report = analyze(iter([data.encode()]))
    document = to_dict(report, 'exp\u00f6rt "\x1b".csv', "EUR")
    written = to_json(report, 'exp\u00f6rt "\x1b".csv', "EUR")
    assert written == json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    assert json.loads(written) == document

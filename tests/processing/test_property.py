"""The engine agrees with the plain reference implementation on random small files."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from processing import InputError
from tests import oracle
from tests.helpers import report_of

COLUMNS = [
    "event_id",
    "clinic_id",
    "patient_id",
    "event_type",
    "event_timestamp",
    "treatment_type",
    "revenue_amount",
    "notes",
]

timestamps = st.one_of(
    st.builds(
        "{:04d}-{:02d}-{:02d}{}".format,
        st.sampled_from([1899, 1900, 2023, 2024, 2199, 2200]),
        st.integers(0, 13),
        st.integers(0, 32),
        st.sampled_from(
            [
                "",
                "T10:00",
                " 23:59:59",
                "t00:00:00.5",
                "T12:30:00Z",
                "T01:00:00+02:00",
                "T23:30-0130",
                "T24:00",
                "T10:60",
                "T10:00:00 Z",
                "T10:00+02",
                "Z",
            ]
        ),
    ),
    st.sampled_from(["", " ", "soon", "20240101T100000Z", "2024-W01-1", "2024-01-01T10:00:00,5"]),
)
amounts = st.one_of(
    st.just(""),
    st.from_regex(r"\A\+?[0-9]{1,14}(\.[0-9]{1,12})?\Z"),
    st.sampled_from(["-5", ".5", "5.", "abc", "NaN", "1e3", "1,234.00", "$100", " 12.345 ", "0"]),
)
event_types = st.sampled_from(
    [
        "TREATMENT_COMPLETED",
        "treatment_completed ",
        "APPOINTMENT_SCHEDULED",
        "ONLINE_BOOKING",
        "TREATMENT_BOOKED",
        "APPOINTMENT_CANCELLED",
        "appointment_no_show",
        "APPOINTMENT_COMPLETED",
        "APPOINTMENT_RESCHEDULED",
        "MISSED_CALL",
        "PATIENT_REGISTERED",
        "X",
        "",
        "  ",
    ]
)
text = st.text(alphabet=st.sampled_from('ab ,"\né\t'), max_size=6)


@st.composite
def csv_files(draw: st.DrawFn) -> bytes:
    columns = draw(st.permutations(COLUMNS))
    if draw(st.booleans()):
        columns = [c for c in columns if c not in ("revenue_amount", "treatment_type")]
    header = ",".join(c.upper() if draw(st.booleans()) else c for c in columns)
    lines = [header]
    for _ in range(draw(st.integers(0, 12))):
        kind = draw(st.sampled_from(["row"] * 6 + ["blank", "short", "long"]))
        if kind == "blank":
            lines.append(draw(st.sampled_from(["", "  ", "\t"])))
            continue
        values = {
            "event_id": draw(st.sampled_from(["e1", "", " e2 "])),
            "clinic_id": draw(st.sampled_from(["c1", "c2", " c3 ", "C1"])),
            "patient_id": draw(st.sampled_from(["p", "", "p 2"])),
            "event_type": draw(event_types),
            "event_timestamp": draw(timestamps),
            "treatment_type": draw(st.sampled_from(["Implants", "", " cleaning ", "x,y"])),
            "revenue_amount": draw(amounts),
            "notes": draw(text),
        }
        fields = [values[c] for c in columns]
        if kind == "short":
            fields.pop()
        if kind == "long":
            fields.append("extra")
        lines.append(
            ",".join(
                '"' + f.replace('"', '""') + '"' if any(ch in f for ch in ',"\n') else f
                for f in fields
            )
        )
    ending = draw(st.sampled_from(["\n", "\r\n"]))
    return (ending.join(lines) + draw(st.sampled_from(["", ending]))).encode()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=csv_files(),
    block_size=st.sampled_from([1, 16, 64, 1 << 20]),
    chunk=st.integers(1, 50),
    timezone=st.sampled_from(["UTC", "Europe/Berlin", "Pacific/Chatham"]),
)
def test_engine_matches_reference(data: bytes, block_size: int, chunk: int, timezone: str) -> None:
    """Same report, or both reject the file."""
    try:
        expected = oracle.analyze(data, timezone)
    except oracle.RejectedError:
        with pytest.raises(InputError):
            report_of(
                [data[i : i + chunk] for i in range(0, len(data), chunk)],
                timezone=timezone,
                block_size=block_size,
            )
        return
    pieces = [data[i : i + chunk] for i in range(0, len(data), chunk)]
    assert report_of(pieces, timezone=timezone, block_size=block_size) == expected

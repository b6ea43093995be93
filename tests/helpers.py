"""What tests in more than one folder build on: the export's header and small files made
from it, the engine's report as a dict, the CLI as a subprocess, upload bodies, and the
headerless export that no surface may echo.

Fixtures live in the conftest.py files; everything a test imports by name lives in a
helpers.py (this one, or its folder's), never in another test module.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from processing import analyze, to_dict
from processing.engine import InvalidRowsCallback

ROOT = Path(__file__).resolve().parent.parent

# -- the export's columns --------------------------------------------------------------------

HEADER = "event_id,clinic_id,patient_id,event_type,event_timestamp,treatment_type,revenue_amount"
# The upload tests' files give revenue before treatment: the engine finds columns by name.
UPLOAD_HEADER = HEADER.replace("treatment_type,revenue_amount", "revenue_amount,treatment_type")


def csv_of(*rows: str, header: str = HEADER) -> str:
    return "\n".join((header, *rows)) + "\n"


def tiny_csv(*rows: str, header: str = UPLOAD_HEADER) -> bytes:
    return csv_of(*rows, header=header).encode()


TWO_WEEKS = tiny_csv(
    "e1,C1,P1,TREATMENT_COMPLETED,2024-01-02T10:00:00Z,100.50,cleaning",
    "e2,C1,P2,APPOINTMENT_SCHEDULED,2024-01-03T10:00:00Z,,",
    "e3,C1,P3,TREATMENT_COMPLETED,2024-01-09T10:00:00Z,20.00,filling",
)

UTF8_ROWS_BEFORE_BAD_BYTE = 40_000  # enough UTF-8 text (é) to fill the first 1 MiB block


def utf8_then_latin1(*rows: str, header: str = HEADER) -> bytes:
    """A UTF-8 file, é and all, whose last rows come in Latin-1: the first of those is
    row UTF8_ROWS_BEFORE_BAD_BYTE + 2, and the file is rejected there (a UTF-8 file that
    turns out not to be UTF-8 after the first block)."""
    filler = [
        f"e{i},c1,p1,APPOINTMENT_SCHEDULED,2024-01-01,é," for i in range(UTF8_ROWS_BEFORE_BAD_BYTE)
    ]
    return csv_of(*filler, header=header).encode() + "\n".join(rows).encode("latin-1") + b"\n"


# -- the engine and the CLI ------------------------------------------------------------------


def report_of(
    data: bytes | str | Iterable[bytes],
    *,
    timezone: str = "UTC",
    block_size: int = 1 << 20,
    on_invalid_rows: InvalidRowsCallback | None = None,
) -> dict[str, Any]:
    """The engine's JSON report as a dict, without the source and currency labels."""
    if isinstance(data, str):
        data = data.encode()
    chunks = [data] if isinstance(data, bytes) else data
    report = analyze(
        iter(chunks), timezone=timezone, block_size=block_size, on_invalid_rows=on_invalid_rows
    )
    result = to_dict(report, "x", "USD")
    del result["source"], result["currency"]
    return result


def cli(
    *args: str, stdin: bytes | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`clinic-events` with these arguments, run to its end in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        input=stdin.decode() if stdin is not None else None,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", **(env or {})},
        timeout=120,
    )


CHART_GATE_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class GatedChart:
    """What the `gated_chart` fixture gives."""

    drawing: threading.Event  # a job has asked for its chart
    release: threading.Event  # set it to let the real chart be drawn


# -- upload bodies ---------------------------------------------------------------------------

BOUNDARY = "clinic-events-test-boundary"
FORM_TYPE = f"multipart/form-data; boundary={BOUNDARY}"


def form_head(filename: str, field: str = "file") -> bytes:
    """The start of a multipart body whose file part runs on until `form_tail()`."""
    return (
        f"--{BOUNDARY}\r\n"
        f'Content-Disposition: form-data; name="{field}"; filename="{filename}"\r\n'
        "Content-Type: text/csv\r\n\r\n"
    ).encode()


def form_tail() -> bytes:
    return f"\r\n--{BOUNDARY}--\r\n".encode()


def chunk(data: bytes) -> bytes:
    """One chunk of a Transfer-Encoding: chunked body."""
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


# -- an export without its header row ----------------------------------------------------------

MISSING_HEADER = (
    "the first line does not look like a header: none of event_id, clinic_id, patient_id, "
    "event_type, event_timestamp, and no near match. Is the header row missing?"
)
# event_id, clinic_id, patient_id, event_type, event_timestamp, revenue_amount,
# treatment_type, and a free-text note: the export's columns, its header row left out.
FIRST_ROW = (
    "d23f0824-1b2c-4d5e-8f90-5a1c2e3b4d6f",
    "CL-035",
    "P-1579240",
    "TREATMENT_COMPLETED",
    "2024-01-03T10:00:00Z",
    "15034.29",  # more digits than "150.00", which a float in a SQLite page could hold
    "root_canal",
    "Mrs Jones allergic to latex",
)
MORE_ROWS = (
    (
        "7c9e6679-7425-40de-944b-e07fc1f90ae7",
        "CL-112",
        "P-2468013",
        "APPOINTMENT_SCHEDULED",
        "2024-01-04T09:30:00Z",
        "",
        "",
        "Mr Patel prefers mornings",
    ),
    (
        "0b1d3f5a-9e8c-4a7b-b6d5-c4e3f2a1b0c9",
        "CL-207",
        "P-3691472",
        "TREATMENT_COMPLETED",
        "2024-01-05T14:15:00Z",
        "22087.61",
        "implant_crown",
        "Ms Okafor pacemaker fitted",
    ),
)
HEADERLESS = "".join(",".join(row) + "\n" for row in (FIRST_ROW, *MORE_ROWS)).encode()
EVENT_TYPES = frozenset({"TREATMENT_COMPLETED", "APPOINTMENT_SCHEDULED"})
# Every cell but the event types, which are the bot's own words too (its help names
# TREATMENT_COMPLETED), and the empty ones; then the first row's telling pieces, so a cell
# clipped, split or re-punctuated on its way out is still caught. Matched case-blind: the
# page capitalises the first letter of a message.
LOOKED_FOR = (
    *(cell for row in (FIRST_ROW, *MORE_ROWS) for cell in row if cell and cell not in EVENT_TYPES),
    "d23f0824",
    "5a1c2e3b4d6f",
    "1579240",
    "15034",
    "Jones",
    "allergic",
    "latex",
)


def cells_in(text: str) -> list[str]:
    """Which of HEADERLESS's cells (or pieces of them) `text` holds; [] when none."""
    lowered = text.lower()
    return [cell for cell in LOOKED_FOR if cell.lower() in lowered]

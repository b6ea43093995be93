"""A scope's history built from its exports (processing/history.py), timed in process: 20
exports of 156 weeks x 50 clinics each, every week covered by all of them, the largest merge
a scope's bounds allow short of the clinic bound. The bot builds it off the event loop; the
memory issue asks for at most 50 ms.

    python -m bench.history
"""

from __future__ import annotations

import statistics
import time
from datetime import date, timedelta

import numpy as np

from processing.history import Export, merge
from processing.report import FIRST_MONDAY, ClinicWeeks, WeekStats

EXPORTS = 20
WEEKS = 156
CLINICS = 50
RUNS = 9
FIRST = date(2022, 1, 3)


def exports() -> list[Export]:
    rng = np.random.default_rng(26)
    first_number = (FIRST - FIRST_MONDAY).days // 7
    made = []
    for n in range(EXPORTS):
        weeks = tuple(
            WeekStats(
                week_start=FIRST + timedelta(weeks=w),
                revenue_cents=int(rng.integers(0, 10**7)),
                revenue_by_treatment_cents={"cleaning": 1, "filling": 2},
                events_by_type={"TREATMENT_COMPLETED": 3},
            )
            for w in range(WEEKS)
        )
        cells = ClinicWeeks(
            weeks=np.repeat(np.arange(WEEKS, dtype=np.int64) + first_number, CLINICS),
            clinic_ids=np.tile(np.arange(CLINICS, dtype=np.int64), WEEKS),
            values=rng.integers(0, 10**6, size=(WEEKS * CLINICS, 7)).astype(np.int64),
            clinic_names=tuple(f"CL-{c:03d}" for c in range(CLINICS)),
        )
        made.append(
            Export(
                id=f"export-{n:02d}",
                finished_at=float(n),
                first_day=FIRST,
                last_day=FIRST + timedelta(weeks=WEEKS, days=-1),
                weeks=weeks,
                clinic_weeks=cells,
            )
        )
    return made


def main() -> float:
    given = exports()
    merge(given, timezone="UTC")  # warm
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        merge(given, timezone="UTC")
        times.append(time.perf_counter() - started)
    median_ms = statistics.median(times) * 1000
    print(
        f"\n== a scope's history: {EXPORTS} exports x {WEEKS} weeks x {CLINICS} clinics ==\n"
        f"merged in {median_ms:.1f} ms (median of {RUNS}; min {min(times) * 1000:.1f} ms)"
    )
    return median_ms


if __name__ == "__main__":
    main()

"""Deterministic synthetic clinic event exports for tests, benchmarks and samples.

The same seed and row count always give byte-identical files. About 0.5% of the
rows are bad in one of the four ways the engine recognises, and some rows carry
quoted notes with commas, doubled quotes and newlines, as real exports do.

    python -m tests.generate bench/.data/events-1000000.csv --rows 1000000
"""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from tests import helpers

# The export's columns as a clinic system writes them: the contract's, then three it ignores.
HEADER = f"{helpers.HEADER},staff_id,channel,notes"
CHANNELS = ["front_desk", "phone", "online", "walk_in"]
EVENT_TYPES = [
    ("APPOINTMENT_SCHEDULED", 22),
    ("APPOINTMENT_COMPLETED", 18),
    ("APPOINTMENT_CANCELLED", 5),
    ("ONLINE_BOOKING_CREATED", 8),
    ("TREATMENT_BOOKED", 10),
    ("TREATMENT_COMPLETED", 25),
    ("PATIENT_REGISTERED", 6),
    ("INVOICE_SENT", 6),
]
TREATMENTS = [
    ("cleaning", 120, 35),
    ("filling", 180, 25),
    ("whitening", 350, 10),
    ("root_canal", 900, 8),
    ("implants", 2400, 5),
    ("orthodontics", 1500, 7),
    ("checkup", 80, 10),
]
NOTES = [
    '"Patient asked to reschedule, prefers mornings"',
    '"Follow-up in 6 weeks\nbring X-rays"',
    '"Said the ""usual"" dentist was away, ok with substitute"',
    '"Allergic to latex, use nitrile gloves"',
    '"Insurance pre-approval pending,\ncall back Monday"',
]
START = datetime(2024, 1, 1, tzinfo=UTC)
SPAN_S = 365 * 24 * 3600


def _timestamp(rng: random.Random) -> str:
    moment = START + timedelta(seconds=rng.randrange(SPAN_S))
    style = rng.random()
    if style < 0.55:
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    if style < 0.75:
        return moment.strftime("%Y-%m-%dT%H:%M:%S")
    if style < 0.88:
        local = moment.astimezone(timezone(timedelta(hours=2)))
        return local.strftime("%Y-%m-%dT%H:%M:%S+02:00")
    if style < 0.96:
        return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d}"
    return moment.strftime("%Y-%m-%d")


def _event_id(rng: random.Random) -> str:
    digits = f"{rng.getrandbits(128):032x}"
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"


def _rows(
    rng: random.Random, count: int, clinics: int = 40, bad_rate: float = 0.005
) -> Iterator[str]:
    types = [name for name, _ in EVENT_TYPES]
    type_weights = [weight for _, weight in EVENT_TYPES]
    treatments = [name for name, _, _ in TREATMENTS]
    prices = {name: price for name, price, _ in TREATMENTS}
    treatment_weights = [weight for _, _, weight in TREATMENTS]
    for _ in range(count):
        event_type = rng.choices(types, type_weights)[0]
        treatment = ""
        revenue = ""
        if event_type.startswith("TREATMENT"):
            treatment = rng.choices(treatments, treatment_weights)[0]
        if event_type == "TREATMENT_COMPLETED":
            cents = prices[treatment] * 100 + rng.randrange(-2000, 2000)
            revenue = f"{cents // 100}.{cents % 100:02d}"
            if rng.random() < 0.02:
                revenue += str(rng.randrange(10))
        notes = rng.choice(NOTES) if rng.random() < 0.04 else ""
        fields = [
            _event_id(rng),
            f"CL-{rng.randrange(1, clinics):03d}",
            f"P-{rng.randrange(10_000_000):07d}",
            event_type,
            _timestamp(rng),
            treatment,
            revenue,
            f"S-{rng.randrange(500):04d}",
            rng.choice(CHANNELS),
            notes,
        ]
        bad = rng.random()
        if bad < bad_rate:
            kind = rng.randrange(4)
            if kind == 0:
                fields.pop()
            elif kind == 1:
                fields[rng.choice((0, 1, 2, 3, 4))] = ""
            elif kind == 2:
                fields[4] = rng.choice(["2024-02-30T10:00:00Z", "yesterday", "20240101T100000Z"])
            else:
                fields[3] = "TREATMENT_COMPLETED"
                fields[6] = rng.choice(["-5.00", "abc", "1,234.00", "$100"])
        yield ",".join(fields)


def write_events(
    path: Path, rows: int, seed: int = 20240101, clinics: int = 40, bad_rate: float = 0.005
) -> None:
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write(HEADER + "\n")
        buffer: list[str] = []
        for line in _rows(rng, rows, clinics, bad_rate):
            buffer.append(line)
            if len(buffer) >= 10_000:
                out.write("\n".join(buffer) + "\n")
                buffer.clear()
        if buffer:
            out.write("\n".join(buffer) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("path", type=Path)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=20240101)
    parser.add_argument("--clinics", type=int, default=40, help="clinic ids CL-001 up to this")
    parser.add_argument(
        "--bad-rate", type=float, default=0.005, help="share of bad rows, every reason alike"
    )
    args = parser.parse_args(argv)
    write_events(args.path, args.rows, args.seed, args.clinics, args.bad_rate)
    return 0


if __name__ == "__main__":
    sys.exit(main())

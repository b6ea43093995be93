"""Where the engine's time goes, per thread, timed inside one process (no profiler overhead).

1. The reader alone (what the prefetch thread does): the whole pass, and within it pyarrow's
   parse, the quote scan, filling and consuming the read buffer, and the exact walk.
2. The whole analysis: its wall time and how much of it the main thread spends analysing
   batches. Busy all the time means the main thread is the limit; much less, the reader.

    python bench/stages.py bench/.data/events-1000000.csv
"""

from __future__ import annotations

import sys
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from processing import engine, reader


def timed(owner: Any, name: str, into: defaultdict[str, float], label: str) -> Callable[[], None]:
    """Wrap owner.name to add its time to into[label]; returns the undo."""
    original = getattr(owner, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            into[label] += time.perf_counter() - started

    setattr(owner, name, wrapper)
    return lambda: setattr(owner, name, original)


def reader_alone(path: str) -> None:
    spent: defaultdict[str, float] = defaultdict(float)
    undo = [
        timed(reader._Parser, "parse", spent, "pyarrow parse"),
        timed(reader, "regular_records", spent, "quote scan"),
        timed(reader.BlockReader, "_fill", spent, "read + fill buffer"),
        timed(reader.BlockReader, "_consume", spent, "consume buffer"),
        timed(reader.BlockReader, "_parse_exact", spent, "exact walk"),
    ]
    started = time.perf_counter()
    with open(path, "rb") as source:
        # Not finished: the analysis's thread numbers the rows (BlockReader.pending).
        blocks = sum(1 for _ in reader.BlockReader(source).pending())
    total = time.perf_counter() - started
    for step in undo:
        step()
    by_time = sorted(spent.items(), key=lambda item: -item[1])
    parts = ", ".join(f"{label} {seconds:.2f}" for label, seconds in by_time)
    print(
        f"reader alone: {total:.2f} s for {blocks} blocks ({parts}; other {total - sum(spent.values()):.2f})"
    )


def analysis(path: str) -> None:
    spent: defaultdict[str, float] = defaultdict(float)
    undo = timed(engine._Analysis, "add", spent, "add")
    started = time.perf_counter()
    with open(path, "rb") as source:
        engine.analyze(source)
    total = time.perf_counter() - started
    undo()
    print(
        f"analysis: {total:.2f} s, of which the main thread analyses batches {spent['add']:.2f} s"
    )


if __name__ == "__main__":
    reader_alone(sys.argv[1])
    analysis(sys.argv[1])

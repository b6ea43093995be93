"""samples/events-sample.csv has a pinned report, and the reference agrees with it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests import oracle
from tests.helpers import ROOT


def test_sample_report_is_pinned(sample_csv: Path) -> None:
    """The sample's JSON report is exactly the committed one."""
    result = subprocess.run(
        [sys.executable, "-m", "bot", "report", "samples/events-sample.csv", "--format", "json"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    pinned = json.loads((ROOT / "samples" / "events-sample.report.json").read_text())
    assert json.loads(result.stdout) == pinned
    assert pinned["rows"]["invalid"] > 0
    assert len(pinned["weeks"]) == 53


def test_reference_agrees_on_the_sample(sample_csv: Path) -> None:
    """An independent csv.reader implementation computes the same report."""
    pinned = json.loads((ROOT / "samples" / "events-sample.report.json").read_text())
    del pinned["source"], pinned["currency"]
    assert oracle.analyze(sample_csv.read_bytes()) == pinned

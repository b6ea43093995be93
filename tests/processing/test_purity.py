"""processing/ stays pure: importing it loads no bot, Slack, web or cloud module."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import ROOT


def test_processing_imports_nothing_user_facing() -> None:
    """No bot, slack_*, aiohttp, boto3 or logging setup after `import processing`."""
    code = "import json, sys, processing; print(json.dumps(sorted(sys.modules)))"
    loaded = json.loads(subprocess.check_output([sys.executable, "-c", code], cwd=ROOT))
    forbidden = [
        name
        for name in loaded
        if name.split(".")[0]
        in {"bot", "slack_sdk", "slack_bolt", "aiohttp", "boto3", "botocore", "structlog"}
    ]
    assert "processing.engine" in loaded
    assert forbidden == []


def test_a_report_loads_no_more_than_it_needs() -> None:
    """The CLI's report on a small file (UTC, no progress bar) loads no Slack, web, cloud,
    chart, pyarrow.compute, numpy.ma, zoneinfo, difflib or dataclasses module, nor the
    service's settings: each costs start-up (pyarrow.compute alone builds ~300 wrappers,
    45 ms; numpy.ma 7 ms, zoneinfo 5 ms; a frozen dataclass takes 0.7 ms to define)."""
    code = (
        "import json, sys, io, contextlib\n"
        "from bot.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    main(['report', 'samples/events-sample.csv', '--format', 'json'])\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    loaded = json.loads(subprocess.check_output([sys.executable, "-c", code], cwd=ROOT))
    heavy = {"slack_sdk", "slack_bolt", "aiohttp", "boto3", "botocore", "matplotlib", "structlog"}
    assert [name for name in loaded if name.split(".")[0] in heavy] == []
    assert "pyarrow.compute" not in loaded
    lazy = ("numpy.ma", "zoneinfo", "difflib", "dataclasses", "bot.config")
    assert [name for name in lazy if name in loaded] == []
    assert "processing.engine" in loaded

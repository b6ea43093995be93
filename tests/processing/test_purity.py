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

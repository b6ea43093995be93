"""The real service on a loopback port, and an HTTP client for it.

`serve(**settings)` starts `bot.app.running(Settings(port=0, ...))` in local mode (no Slack
tokens) and returns a `Web`: the Service plus an aiohttp session pointed at it. Everything
stops when the test ends. S3 staging talks to moto's server mode over real HTTP. What tests
import by name is in tests/web/helpers.py (and tests/helpers.py); only fixtures are here.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from bot.app import running
from bot.config import Settings
from tests.web.helpers import BUCKET, PINNED, SAMPLE, Serve, Web


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    """Start the service with these Settings fields (port 0, local mode, quiet console)."""
    async with contextlib.AsyncExitStack() as stack:

        async def start(**fields: Any) -> Web:
            fields.setdefault("progress_interval_s", 60.0)
            settings = Settings(port=0, **fields)
            service = await stack.enter_async_context(running(settings, console=io.StringIO()))
            session = await stack.enter_async_context(
                aiohttp.ClientSession(base_url=f"http://127.0.0.1:{service.port}")
            )
            return Web(service.port, service.jobs, service.metrics, session, service)

        yield start


@pytest.fixture
async def web(serve: Serve) -> Web:
    """The service with default settings."""
    return await serve()


@pytest.fixture(scope="session")
def pinned_report() -> dict[str, Any]:
    report: dict[str, Any] = json.loads(PINNED.read_text())
    return report


@pytest.fixture(scope="session")
def sample_bytes() -> bytes:
    return SAMPLE.read_bytes()


@pytest.fixture
def s3_client(s3: Any) -> Any:
    """An empty moto (tests/aws.py) with BUCKET in it; the service's client reads the same variables."""
    s3.create_bucket(Bucket=BUCKET)
    return s3

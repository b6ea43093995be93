"""The upload page in a real browser, for the tests that drive it: Debian's Chromium started
by Playwright (the `browser` fixture), and the page opened in it (`open_page`).

A test module imports the fixture by name and marks itself `needs_chromium`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
WAIT_MS = 30_000  # what any one step may take before the test fails, naming the step

needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="needs Debian's Chromium at /usr/bin/chromium (apt-get install -y chromium)",
)


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """A headless Chromium, closed when the test ends."""
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            await browser.close()


async def open_page(browser: Browser, port: int, width: int = 1280) -> tuple[Page, list[str]]:
    """The page in US English (money as $1,234.56), with its script errors collected."""
    context = await browser.new_context(
        locale="en-US", timezone_id="UTC", viewport={"width": width, "height": 900}
    )
    page = await context.new_page()
    page.set_default_timeout(WAIT_MS)
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    await page.goto(f"http://127.0.0.1:{port}/")
    await page.wait_for_selector("body[data-ready]", state="attached")
    return page, problems

"""The upload page, given an export without its header row, in a real browser (Chromium).

The file and what is looked for come from tests/helpers.py; tests/integration/test_headerless.py
covers Slack, the logs, the job store, the job API and the CLI.
"""

from __future__ import annotations

from playwright.async_api import Browser

from tests.helpers import HEADERLESS, MISSING_HEADER, cells_in
from tests.web.browser import browser, needs_chromium, open_page
from tests.web.helpers import Serve

__all__ = ["browser"]  # the fixture, imported to be used here

pytestmark = needs_chromium


async def test_a_headerless_file_shows_the_missing_header_and_no_cell(
    serve: Serve, browser: Browser
) -> None:
    """The page says the header row seems missing and shows no cell of the file anywhere."""
    web = await serve()
    page, problems = await open_page(browser, web.port)
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))

    await page.set_input_files(
        "#file-input", {"name": "events.csv", "mimeType": "text/csv", "buffer": HEADERLESS}
    )

    message = page.locator("#error-message")
    await message.wait_for()
    shown = await message.inner_text()
    assert shown == MISSING_HEADER[0].upper() + MISSING_HEADER[1:]  # the page capitalises it
    [job] = web.jobs.recent()
    assert job.error == MISSING_HEADER
    assert await page.locator("#error-job").inner_text() == (
        f"Job {job.id}: mention it if you ask for help."
    )
    # All of the page's text, hidden parts too, then its markup (attributes and all).
    text = await page.evaluate("document.documentElement.textContent")
    assert MISSING_HEADER[1:] in text
    assert cells_in(text) == [], text
    assert cells_in(await page.content()) == []
    assert cells_in("\n".join(console)) == [], console
    assert problems == []

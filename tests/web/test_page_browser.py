"""The upload page in a real browser: Debian's Chromium driven by Playwright."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, async_playwright

from tests.web.conftest import SAMPLE, TWO_WEEKS, Serve

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
WAIT_MS = 20_000
TOKEN = "page-test-token"
CHART_SHOWN = """() => {
  const chart = document.getElementById("chart");
  return !chart.hidden && chart.complete && chart.naturalWidth > 0;
}"""

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="needs Debian's Chromium at /usr/bin/chromium (apt-get install -y chromium)",
)


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            await browser.close()


async def open_page(browser: Browser, port: int) -> tuple[Page, list[str]]:
    """The page in US English (money as $1,234.56), with its script errors collected."""
    context = await browser.new_context(locale="en-US", timezone_id="UTC")
    page = await context.new_page()
    page.set_default_timeout(WAIT_MS)
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    await page.goto(f"http://127.0.0.1:{port}/")
    await page.wait_for_selector("body[data-ready]", state="attached")
    return page, problems


async def test_upload_shows_the_weekly_table_and_the_chart(
    serve: Serve, browser: Browser, pinned_report: dict[str, Any]
) -> None:
    """Picking the sample shows every week with its revenue, the totals and the chart."""
    web = await serve()
    page, problems = await open_page(browser, web.port)
    assert await page.locator("#token-section").is_hidden()

    await page.set_input_files("#file-input", str(SAMPLE))

    first_week = page.locator('#weeks-body tr[data-week="2024-01-01"]')
    await first_week.wait_for()
    cells = await first_week.locator("th, td").all_inner_texts()
    week = pinned_report["weeks"][0]
    assert cells[:5] == [
        "Jan 1 – 7, 2024",
        "$4,544.08",
        str(week["treatments_completed"]),
        str(week["appointments"]),
        str(week["bookings"]),
    ]
    assert await page.locator("#weeks-body tr").count() == len(pinned_report["weeks"])
    assert "$305,272.95" in await page.locator("#summary").inner_text()
    assert "Orthodontics" in await page.locator("#types-body").inner_text()
    by_type = page.locator('#type-weeks-body tr[data-week="2024-01-01"]')
    assert "$3,005.38" in await by_type.inner_text()  # orthodontics that week
    assert "10 of 3,000 rows are invalid rows" in await page.locator("#invalid-rows").inner_text()
    await page.wait_for_function(CHART_SHOWN)
    async with page.expect_download() as download_info:
        await page.click("#download-csv")
    download = await download_info.value
    assert download.suggested_filename == "weekly-report.csv"
    saved = await download.path()
    assert saved is not None and saved.read_text().startswith("week_start,week_end,revenue")
    assert problems == []


async def test_the_page_asks_for_the_token_and_again_when_refused(
    serve: Serve, browser: Browser
) -> None:
    """With a token set, the page asks for it, asks again after a 401, then uploads."""
    web = await serve(upload_token=TOKEN)
    page, problems = await open_page(browser, web.port)
    await page.locator("#token-section").wait_for(state="visible")

    await page.fill("#token-input", "wrong-token")
    await page.click("#token-form button")
    await page.set_input_files(
        "#file-input",
        {"name": "two-weeks.csv", "mimeType": "text/csv", "buffer": TWO_WEEKS},
    )
    await page.locator("#token-section").wait_for(state="visible")
    assert "not accepted" in await page.locator("#token-message").inner_text()

    await page.fill("#token-input", TOKEN)
    await page.click("#token-form button")  # the page retries the upload by itself

    week = page.locator('#weeks-body tr[data-week="2024-01-01"]')
    await week.wait_for()
    assert "$100.50" in await week.inner_text()
    await page.wait_for_function(CHART_SHOWN)
    stored = await page.evaluate("sessionStorage.getItem('clinic-events.upload-token')")
    assert stored == TOKEN
    assert problems == []


async def test_a_file_the_server_refuses_shows_the_reason(serve: Serve, browser: Browser) -> None:
    """A job that fails shows its reason in words."""
    web = await serve()
    page, problems = await open_page(browser, web.port)

    await page.set_input_files(
        "#file-input",
        {"name": "other.csv", "mimeType": "text/csv", "buffer": b"date,amount\n2024-01-02,1\n"},
    )

    message = page.locator("#error-message")
    await message.wait_for()
    job_line = await page.locator("#error-job").inner_text()
    assert job_line.startswith("Job ") and "ask for help" in job_line
    assert (await message.inner_text()).startswith(
        "The header lacks event_id, clinic_id, patient_id, event_type and event_timestamp; "
        "columns found: date, amount"
    )
    assert problems == []


async def test_control_and_bidi_characters_never_reach_the_page(
    serve: Serve, browser: Browser
) -> None:
    """A treatment type holding ESC sequences and a right-to-left override shows without them."""
    hostile = "\x1b[31mroot\u202ecanal\u2066"
    data = (
        "event_id,clinic_id,patient_id,event_type,event_timestamp,revenue_amount,treatment_type\n"
        f"e1,C1,P1,TREATMENT_COMPLETED,2024-01-02T10:00:00Z,10.00,{hostile}\n"
    ).encode()
    web = await serve()
    page, problems = await open_page(browser, web.port)
    await page.set_input_files(
        "#file-input", {"name": "ev\u202evsc.csv", "mimeType": "text/csv", "buffer": data}
    )
    await page.locator('#weeks-body tr[data-week="2024-01-01"]').wait_for()
    text = await page.evaluate("document.body.innerText")
    assert "canal" in text
    for invisible in ("\x1b", "\u202e", "\u2066"):
        assert invisible not in text
    assert problems == []

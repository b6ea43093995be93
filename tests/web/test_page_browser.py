"""The upload page in a real browser: Debian's Chromium driven by Playwright."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from playwright.async_api import Browser, Page

from processing.words import file_size
from tests.helpers import TWO_WEEKS, UPLOAD_HEADER, tiny_csv
from tests.web.browser import browser, needs_chromium, open_page
from tests.web.helpers import SAMPLE, Serve

__all__ = ["browser"]  # the fixture, imported to be used here

TOKEN = "page-test-token"
WIDTHS = (390, 1024, 1440)
CHART_SHOWN = """() => {
  const chart = document.getElementById("chart");
  return !chart.hidden && chart.complete && chart.naturalWidth > 0;
}"""
# Whatever is wider than its box: the page itself, or any card.
OVERFLOWS = """() => {
  const wide = [];
  const root = document.documentElement;
  if (root.scrollWidth > root.clientWidth) wide.push(`page ${root.scrollWidth} > ${root.clientWidth}`);
  for (const card of document.querySelectorAll(".card")) {
    if (card.offsetParent !== null && card.scrollWidth > card.clientWidth) {
      wide.push(`${card.id || card.className}: ${card.scrollWidth} > ${card.clientWidth}`);
    }
  }
  return wide;
}"""
SECTION_ORDER = """() => ["headline", "chart-card", "download-weekly", "clinics-table", "weeks-table",
  "types-table"].map((id) => document.getElementById(id).getBoundingClientRect().top)"""

pytestmark = needs_chromium


async def texts(page: Page, selector: str) -> list[str]:
    return await page.locator(selector).all_inner_texts()


async def test_the_report_leads_with_the_headline_then_chart_downloads_and_tables(
    serve: Serve, browser: Browser, pinned_report: dict[str, Any]
) -> None:
    """The sample: headline cards, then the chart, the downloads, clinics, the weeks newest
    first and treatment types; every figure as the report has it, dates in one style."""
    web = await serve()
    page, problems = await open_page(browser, web.port)
    assert await page.locator("#token-section").is_hidden()

    await page.set_input_files("#file-input", str(SAMPLE))
    await page.wait_for_selector("body[data-report-shown]", state="attached")

    tops = await page.evaluate(SECTION_ORDER)
    assert tops == sorted(tops)
    headline = await page.locator("#headline").inner_text()
    assert "$305,272.95" in headline
    assert "53 weeks, 1 Jan 2024 – 5 Jan 2025" in headline
    assert "Latest complete week, 23–29 Dec 2024" in headline
    assert "$6,765.23" in headline
    assert "▼ 28.8% vs 16–22 Dec 2024" in headline
    assert await page.get_attribute("#latest-change", "class") == "stat-note down"
    assert "$8,175.68" in headline  # the 4-week average
    assert "⚠ 10 rows (0.3%) left out · last week partial, 1 of 7 days" in headline

    weeks = await texts(page, "#weeks-body tr")
    assert len(weeks) == len(pinned_report["weeks"])
    assert weeks[0].split("\t")[0] == "30 Dec 2024 – 5 Jan 2025"  # newest first
    first_week = page.locator('#weeks-body tr[data-week="2024-01-01"]')
    cells = await first_week.locator("th, td").all_inner_texts()
    week = pinned_report["weeks"][0]
    assert cells[:6] == [
        "1–7 Jan 2024",
        "$4,544.08",
        "–",
        str(week["treatments_completed"]),
        str(week["appointments"]),
        str(week["bookings"]),
    ]
    partial = await page.locator('#weeks-body tr[data-week="2024-12-30"]').inner_text()
    assert "partial, 1 of 7 days" in partial
    # Coloured by the direction that comes with each change, never by its words.
    changes = await page.eval_on_selector_all(
        "#weeks-body tr", "(rows) => rows.map((row) => row.children[2].className)"
    )
    job_id = await page.get_attribute("body", "data-report-shown")
    display = (await web.get_json(f"/api/jobs/{job_id}")).body["display"]
    expected = [" ".join(["num", *filter(None, [w["direction"]])]) for w in display["weeks"]]
    assert changes == expected[::-1]  # newest first
    assert {"num up", "num down"} <= set(changes)
    assert "$305,272.95" in await page.locator("#weeks-foot").inner_text()
    types = await texts(page, "#types-body tr")
    assert types[0].split("\t") == ["Implants", "$95,945.05", "31.4%"]
    assert types[2].startswith("Root canal")
    movers = await texts(page, "#movers p")
    assert movers == [
        "Up most: CL-025 ▲ 799.6%, CL-017 ▲ 9.3%, CL-019 ▲ 3.0%",
        "Down most: CL-006 ▼ 100.0%, CL-007 ▼ 100.0%, CL-008 ▼ 100.0%",
    ]
    assert await page.locator("#clinics-body tr").count() == len(pinned_report["clinics"])
    assert "10 of 3,000 rows are invalid rows" in await page.locator("#invalid-rows").inner_text()
    await page.wait_for_function(CHART_SHOWN)

    for button, name, start in [
        ("#download-weekly", "weekly-report.csv", "week_start,week_end,revenue"),
        ("#download-clinics", "clinic-weekly.csv", "week_start,clinic_id,revenue"),
        ("#download-invalid", "invalid-rows.csv", "row,reason,column,detail"),
    ]:
        async with page.expect_download() as download_info:
            await page.click(button)
        download = await download_info.value
        assert download.suggested_filename == name
        saved = await download.path()
        assert saved is not None
        assert saved.read_text().startswith(start)
    assert problems == []


# Files whose headline has no change to show, and the sentence that says why: the page's
# words come from processing/words.py, as Slack's and the text report's do
# (tests/bot/test_blocks.py holds those three side by side).
NO_CHANGE = {
    "no complete week": (TWO_WEEKS, "no week has data on all seven days"),
    "no earlier complete week": (
        tiny_csv(
            "e1,C1,P1,TREATMENT_COMPLETED,2024-01-01T10:00:00Z,10.00,cleaning",
            "e2,C1,P2,TREATMENT_COMPLETED,2024-01-07T10:00:00Z,20.00,cleaning",
        ),
        "no earlier complete week to compare",
    ),
    "no revenue the week before": (
        tiny_csv(
            "e1,C1,P1,APPOINTMENT_SCHEDULED,2024-01-01T10:00:00Z,,",
            "e2,C1,P2,TREATMENT_COMPLETED,2024-01-14T10:00:00Z,20.00,cleaning",
        ),
        "no revenue in 1–7 Jan 2024 to compare",
    ),
}


@pytest.mark.parametrize("case", NO_CHANGE)
async def test_a_headline_without_a_change_says_why_uncoloured(
    serve: Serve, browser: Browser, case: str
) -> None:
    """Where there is no change to show, the page says why in the server's words, and
    colours nothing."""
    data, words = NO_CHANGE[case]
    web = await serve()
    page, problems = await open_page(browser, web.port)
    await page.set_input_files(
        "#file-input", {"name": "f.csv", "mimeType": "text/csv", "buffer": data}
    )
    await page.wait_for_selector("body[data-report-shown]", state="attached")
    assert await page.locator("#latest-change").inner_text() == words
    assert await page.get_attribute("#latest-change", "class") == "stat-note"
    assert problems == []


async def test_the_analysis_shows_while_the_file_is_still_uploading(
    serve: Serve, browser: Browser
) -> None:
    """With the upload throttled, rows and revenue so far appear before the last byte is
    sent: the job id comes back before the file does."""
    rows = [
        f"e{n},C{n % 7},P{n},TREATMENT_COMPLETED,2024-01-{1 + n % 28:02d}T10:00:00Z,10.00,cleaning"
        for n in range(60_000)
    ]
    data = tiny_csv(*rows)  # about 4.6 MB: several seconds at 1 MB/s
    web = await serve()
    page, problems = await open_page(browser, web.port)
    cdp = await page.context.new_cdp_session(page)
    await cdp.send("Network.enable")
    await cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": 1_000_000},
    )

    await page.set_input_files(
        "#file-input", {"name": "slow.csv", "mimeType": "text/csv", "buffer": data}
    )
    await page.wait_for_function(
        """() => !document.getElementById("live").hidden
              && Number(document.getElementById("live-rows").textContent.replace(/,/g, "")) > 0"""
    )
    sent, detail = await page.evaluate(
        """() => [document.getElementById("upload-progress").value,
                  document.getElementById("detail").textContent]"""
    )
    revenue = await page.locator("#live-revenue").inner_text()
    assert sent < 100, "the live figures should show before the upload ends"
    # The bytes sent, counted by the browser, in the words the server uses for a size.
    assert detail.endswith(f" of {file_size(len(data))} sent"), detail
    assert revenue.startswith("$")
    assert revenue != "$0.00"
    await page.wait_for_selector("body[data-report-shown]", state="attached")
    assert "$600,000.00" in await page.locator("#total-revenue").inner_text()
    assert problems == []


async def test_nothing_overflows_at_phone_tablet_and_desktop_widths(
    serve: Serve, browser: Browser
) -> None:
    """At 390, 1,024 and 1,440 px neither the page nor any card is wider than its box,
    with long names in the file; tables scroll inside their card, first column in view."""
    long_clinic = "CLINIC-" + "X" * 120
    data = tiny_csv(
        *(
            f"e{n},{long_clinic if n % 2 else 'C1'},P{n},TREATMENT_COMPLETED,"
            f"{date(2024, 1, 1) + timedelta(days=n)}T10:00:00Z,1234567.89,"
            f"{'very_long_treatment_name_' * 4}{n % 3}"
            for n in range(120)
        ),
        "bad row",
    )
    web = await serve()
    for width in WIDTHS:
        page, problems = await open_page(browser, web.port, width)
        await page.set_input_files(
            "#file-input",
            {"name": "export-" + "y" * 150 + ".csv", "mimeType": "text/csv", "buffer": data},
        )
        await page.wait_for_selector("body[data-report-shown]", state="attached")
        await page.wait_for_function(CHART_SHOWN)
        assert await page.evaluate(OVERFLOWS) == [], f"at {width} px"
        sticky = await page.evaluate(
            """() => getComputedStyle(document.querySelector("#weeks-body th")).position"""
        )
        assert sticky == "sticky"
        assert problems == []
        await page.context.close()


@pytest.mark.parametrize("shape", ["weeks", "clinics"])
async def test_large_reports_draw_the_first_rows_then_all_on_request(
    serve: Serve, browser: Browser, shape: str
) -> None:
    """15,650 weeks (1900 to 2199), or 10,000 clinics: the report shows with the newest 100
    rows drawn, and "Show all" (its words from the server) draws the rest. How fast that is
    on this machine is bench's to measure, not a test's to assert."""
    if shape == "weeks":
        rows = [
            f"e{n},C1,P{n},TREATMENT_COMPLETED,{date(1900, 1, 1) + timedelta(weeks=n)},1.00,x"
            for n in range(15_650)
        ]
        body, more, total = "#weeks-body tr", "#weeks-more", 15_650
    else:
        rows = [
            f"e{n}-{w},C{n:05d},P,TREATMENT_COMPLETED,{date(2024, 1, 1) + timedelta(weeks=w)},{n}.00,x"
            for n in range(10_000)
            for w in range(2)
        ]
        body, more, total = "#clinics-body tr", "#clinics-more", 10_000
    web = await serve()
    page, problems = await open_page(browser, web.port)
    await page.set_input_files(
        "#file-input", {"name": "big.csv", "mimeType": "text/csv", "buffer": tiny_csv(*rows)}
    )
    await page.wait_for_selector("body[data-report-shown]", state="attached")
    assert await page.locator(body).count() == 100
    assert await page.locator(more).inner_text() == f"Show all {total:,} {shape}"
    await page.click(more)
    assert await page.locator(body).count() == total
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


async def test_a_file_the_server_refuses_shows_the_reason_and_the_job(
    serve: Serve, browser: Browser
) -> None:
    """A job that fails shows its reason and the fix in words, and its job id."""
    web = await serve()
    page, problems = await open_page(browser, web.port)

    await page.set_input_files(
        "#file-input",
        {
            "name": "other.csv",
            "mimeType": "text/csv",
            "buffer": f"{UPLOAD_HEADER.replace('patient_id', 'Patient ID')}\n".encode()
            + b"e,c,p,X,2024-01-02,,\n",
        },
    )

    message = page.locator("#error-message")
    await message.wait_for()
    job_line = await page.locator("#error-job").inner_text()
    [job] = web.jobs.recent()
    assert job_line == f"Job {job.id}: mention it if you ask for help."
    words = await message.inner_text()
    assert "patient_id" in words
    assert "Patient ID" in words
    assert problems == []


async def test_control_and_bidi_characters_never_reach_the_page(
    serve: Serve, browser: Browser
) -> None:
    """A treatment type holding ESC sequences and a right-to-left override shows without them."""
    hostile = "\x1b[31mroot\u202ecanal\u2066"
    data = (
        f"{UPLOAD_HEADER}\ne1,C\u202e1,P1,TREATMENT_COMPLETED,2024-01-02T10:00:00Z,10.00,{hostile}\n"
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

"""The two rules the upload page applies itself, held against processing/'s in a real browser.

The page gets every word of a report from the server, but two things it must do alone: write
the size of a file it is sending (the bytes counted as they go) and show a name from the
reader's own disk before the server has seen it. Its fileSize() and displayable() must say
what processing/words.py file_size() and processing/text.py displayable() say.
"""

from __future__ import annotations

import random

from playwright.async_api import Browser

from processing.text import displayable
from processing.words import file_size
from tests.web.browser import browser, needs_chromium, open_page
from tests.web.helpers import Serve

__all__ = ["browser"]  # the fixture, imported to be used here

pytestmark = needs_chromium

KB, MB = 1024, 1024**2


def sizes() -> list[int]:
    """Every size up to 3 KB; both sides of each tenth and each half of KB and MB up to 20 of
    them, where rounding decides; the units' edges; then sizes at random up to a terabyte."""
    found = set(range(3 * KB))
    for unit in (KB, MB):
        for twentieth in range(1, 401):
            edge = twentieth * unit // 20
            found.update(range(edge - 2, edge + 3))
        found.update(range(1024 * unit - 600, 1024 * unit + 3))
    seeded = random.Random(20261208)
    found.update(seeded.randrange(1 << exponent) for exponent in range(10, 41) for _ in range(300))
    return sorted(size for size in found if size >= 0)


async def test_file_sizes_read_the_same_on_the_page_and_in_processing(
    serve: Serve, browser: Browser
) -> None:
    """The page's fileSize() writes each size as processing/words.py file_size() does."""
    web = await serve()
    page, problems = await open_page(browser, web.port)
    every = sizes()
    on_page = await page.evaluate("(sizes) => sizes.map(window.pageRules.fileSize)", every)
    differ = [
        (size, shown, file_size(size))
        for size, shown in zip(every, on_page, strict=True)
        if shown != file_size(size)
    ]
    assert differ == []
    assert {file_size(size).split()[-1] for size in every} == {"byte", "bytes", "KB", "MB"}
    assert problems == []


# Each code point between two letters: what the page's displayable() makes of those that it
# changes (all others come back as they went).
PAGE_CHANGES = """() => {
  const changed = [];
  for (let code = 0; code <= 0x10ffff; code += 1) {
    const text = "a" + String.fromCodePoint(code) + "b";
    const shown = window.pageRules.displayable(text);
    if (shown !== text) changed.push([code, shown]);
  }
  return changed;
}"""


async def test_the_page_strips_exactly_what_processing_strips(
    serve: Serve, browser: Browser
) -> None:
    """Over every code point, the page's displayable() turns into a space or keeps just
    what processing/text.py displayable() does."""
    web = await serve()
    page, problems = await open_page(browser, web.port)
    on_page = [tuple(pair) for pair in await page.evaluate(PAGE_CHANGES)]
    in_python = []
    for code in range(0x110000):
        text = f"a{chr(code)}b"
        shown = displayable(text)
        if shown != text:
            in_python.append((code, shown))
    assert on_page == in_python
    assert (0x202E, "a b") in in_python  # a right-to-left override: what this is about
    assert problems == []

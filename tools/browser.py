"""Debian's headless Chromium, driven by Playwright, for the pictures and the site's tests.

``apt-get install chromium`` provides /usr/bin/chromium; Playwright's own browser download
is never used (nothing is downloaded at run time).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@contextmanager
def chromium_page(width: int = 1280, height: int = 900) -> Iterator[Any]:
    """A page in Debian's headless chromium, driven by Playwright."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser.new_page(viewport={"width": width, "height": height})
        finally:
            browser.close()


def first_search_result(page: Any, query: str, timeout_ms: float = 30_000) -> str:
    """The href of the first result the site's search box lists for ``query``.

    The whole query goes in at once: typed key by key, a slow machine can list the results
    of a part of it ("golden s") first, and the first link is then another page's.
    """
    box = page.locator(".md-search__input")
    box.click()
    box.fill(query)
    page.keyboard.press("End")  # the search runs on a key, not on fill() alone
    result = page.locator(".md-search-result__link").first
    result.wait_for(timeout=timeout_ms)
    return str(result.get_attribute("href") or "")

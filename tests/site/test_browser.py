"""The built course site as a reader sees it, in headless Chromium (Debian's /usr/bin/chromium).

Each lesson page must show its excerpts with the new lines highlighted (visibly: another
background), its lesson's whole file once the reader opens it, every answer its *Try it*
section promises, and each command's Python and PowerShell tabs when clicked. The site is
served from a temporary folder on 127.0.0.1, and the browser may load nothing from anywhere else.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.site.commands import commands_on
from tests.site.pages import LESSON_PAGES
from tests.site.test_lesson_pages import new_code_lines
from tests.support.lessons import LESSONS
from tools.browser import first_search_result
from tools.make_images import CHROMIUM, chromium_page
from tools.servers import REPO_ROOT
from tools.site import loopback_only, serve_site

pytestmark = pytest.mark.live

if not shutil.which(CHROMIUM):
    if os.environ.get("REQUIRE_CHROMIUM") == "1":
        raise RuntimeError(
            f"REQUIRE_CHROMIUM=1 but {CHROMIUM} is missing: apt-get install chromium"
        )
    pytest.skip(
        f"{CHROMIUM} is missing: install it with `sudo apt-get install chromium`",
        allow_module_level=True,
    )


def solid(text: str) -> str:
    """The text without blank lines (a browser's innerText doubles some line breaks in code)."""
    return "\n".join(line for line in text.splitlines() if line.strip())


@pytest.fixture(scope="module")
def browser_page(site: Path) -> Iterator[tuple[Any, str]]:  # noqa: F811
    with serve_site(site) as url, chromium_page(1280, 900) as page:
        loopback_only(page, url)
        yield page, url


def check_excerpts_and_their_highlights(page: Any, name: str) -> None:
    """The lesson's excerpts are shown, and (after the first lesson) their new lines stand out."""
    excerpts = page.locator("article > .highlight td.code")
    assert excerpts.count() >= 2 and excerpts.first.is_visible()
    if name != LESSONS[0]:
        backgrounds = page.evaluate(
            """() => {
                const style = el => getComputedStyle(el).backgroundColor;
                const marked = document.querySelector("article > .highlight td.code .hll");
                const lines = "article > .highlight td.code code > span";
                const plain = [...document.querySelectorAll(lines)]
                    .find(span => !span.querySelector(".hll"));
                return [style(marked), plain ? style(plain) : null];
            }"""
        )
        assert backgrounds[0] != backgrounds[1], "highlighted lines look like the others"


def check_the_whole_file(page: Any, name: str) -> None:
    """The whole file, collapsed until opened, is the lesson's source with its new lines marked."""
    whole = page.locator("details.example", has_text="The whole file")
    code = whole.locator("td.code code")
    assert whole.count() == 1 and code.count() == 1 and not code.is_visible()
    whole.locator("summary").click()
    assert code.is_visible()
    source = (REPO_ROOT / "lessons" / f"{name}.py").read_text()
    assert (code.text_content() or "").rstrip("\n") == source.rstrip("\n")
    highlighted = whole.locator("td.code code > span:has(> .hll)")
    numbers = [
        int(span_id.split("-")[-1])
        for span_id in highlighted.evaluate_all("spans => spans.map(s => s.id)")
    ]
    assert numbers == new_code_lines(name)
    if numbers:
        caption = whole.get_by_text(re.compile(rf"Highlighted: the {len(numbers)} of \d+ lines"))
        assert caption.is_visible()


def check_the_command_tabs(page: Any) -> None:
    """Each command's other tabs show when clicked, and the reader's choice holds page-wide."""
    tabs = page.locator(".tabbed-set").first
    python = tabs.locator(".tabbed-block").nth(1)
    assert not python.is_visible()
    tabs.locator("label", has_text="Python (requests)").click()
    assert python.is_visible() and "import requests" in python.inner_text()
    # Linked tabs: the reader's choice holds for every command of the page (and the site).
    tabs.locator("label", has_text="PowerShell").click()
    last = page.locator(".tabbed-set").last.locator(".tabbed-block").nth(2)
    assert last.is_visible() and "Invoke-RestMethod" in last.inner_text()


@pytest.mark.parametrize("name", LESSONS)
def test_lesson_page_shows_its_code_highlights_and_answers(
    browser_page: tuple[Any, str], name: str
) -> None:
    page, url = browser_page
    response = page.goto(f"{url}/lessons/{name}/")
    assert response is not None and response.status == 200

    check_excerpts_and_their_highlights(page, name)

    # The whole file: collapsed until the reader opens it.
    check_the_whole_file(page, name)

    # The solution: collapsed too.
    solution = page.locator("details.success", has_text="Solution")
    assert solution.count() == 1 and not solution.locator("code").first.is_visible()

    # Each command's other tabs show when clicked.
    commands = commands_on((LESSON_PAGES / f"{name}.md").read_text())
    check_the_command_tabs(page)

    article = solid(page.locator("article").inner_text())
    answers = [command.answer for command in commands if command.answer]
    assert answers
    for answer in answers:
        assert solid(answer) in article, answer
    assert f"uvicorn lessons.{name}:app --reload" in article


def test_site_search_finds_a_lesson(browser_page: tuple[Any, str]) -> None:
    """The search box lists the lesson's page first."""
    page, url = browser_page
    page.goto(f"{url}/")
    assert "prometheus_01_four_signal_monitor_app" in first_search_result(page, "golden signals")

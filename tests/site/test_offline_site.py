"""The site built for reading from files (`OFFLINE=true python -m mkdocs build`): search works.

Material's offline plugin inlines the search index into search/search_index.js, and the Web
Worker shim that search needs under file:// is committed in docs/javascripts (the plugin would
otherwise load it from unpkg.com). The browser part opens the built index.html from disk, with
every request that is not a file:// one refused, and searches as a reader does.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tools.browser import first_search_result
from tools.make_images import CHROMIUM, chromium_page
from tools.servers import REPO_ROOT
from tools.site import build_site


@pytest.fixture(scope="module")
def offline_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    site_dir = tmp_path_factory.mktemp("offline-site")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("OFFLINE", "true")
        result = build_site(site_dir)
    assert result.returncode == 0, result.stderr
    yield site_dir


def test_the_offline_build_inlines_the_search_index_and_loads_nothing_from_elsewhere(
    offline_site: Path,
) -> None:
    assert (offline_site / "search" / "search_index.js").read_text().startswith("var __index = ")
    assert (offline_site / "lessons" / "prometheus_01_four_signal_monitor_app.html").is_file()
    for page in offline_site.rglob("*.html"):
        text = page.read_text()
        assert "unpkg.com" not in text, page.name
        assert 'src="https://' not in text, page.name
    index = (offline_site / "index.html").read_text()
    assert '<script src="javascripts/iframe-worker-1.0.4-shim.js"></script>' in index


def test_the_default_build_is_the_one_for_a_server() -> None:
    """Without OFFLINE the plugin is off: the published site keeps its lessons/<name>/ URLs."""
    assert os.environ.get("OFFLINE", "false").lower() in ("", "false", "0")
    config = (REPO_ROOT / "mkdocs.yml").read_text()
    assert "enabled: !ENV [OFFLINE, false]" in config


@pytest.mark.live
@pytest.mark.skipif(
    not shutil.which(CHROMIUM) and os.environ.get("REQUIRE_CHROMIUM") != "1",
    reason=f"{CHROMIUM} is missing: install it with `sudo apt-get install chromium`",
)
def test_search_works_in_the_site_opened_from_files(offline_site: Path) -> None:
    refused: list[str] = []

    def local_only(route: Any) -> None:
        if route.request.url.startswith("file://"):
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort()

    with chromium_page(1280, 900) as page:
        page.route("**/*", local_only)
        page.goto((offline_site / "index.html").as_uri())
        href = first_search_result(page, "golden signals")
    assert "prometheus_01_four_signal_monitor_app.html" in href
    assert refused == []

"""Build the course site, serve it on loopback, and take its picture.

The site is the Markdown in ``docs/`` built by MkDocs (``mkdocs.yml``). The tests
(tests/site/test_docs.py, tests/site/test_browser.py) and the picture below build it
into a temporary folder, never into the repository::

    python -m tools.site    # writes images/site_lesson_page.png

The picture is lesson P00's page as headless Chromium shows it, scrolled to its
new ``/metrics`` endpoint, among the lines highlighted as differing from lesson 05.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tools.picture_sources import PICTURED_LESSON
from tools.servers import HOST, REPO_ROOT

PICTURE = REPO_ROOT / "images" / "site_lesson_page.png"


def build_site(site_dir: Path, config_dir: Path = REPO_ROOT) -> subprocess.CompletedProcess[str]:
    """``mkdocs build --strict`` of the site configured in ``config_dir``/mkdocs.yml."""
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site_dir)],
        cwd=config_dir,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        timeout=170,
    )


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def serve_site(site_dir: Path) -> Iterator[str]:
    """Serve the built site on 127.0.0.1 and a free port; yields its base URL."""
    handler = functools.partial(_QuietHandler, directory=str(site_dir))
    server = ThreadingHTTPServer((HOST, 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{HOST}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def loopback_only(page: Any, base_url: str) -> None:
    """Let the page load only from the local site: anything else is refused."""
    page.route(
        "**/*",
        lambda route: (
            route.continue_() if route.request.url.startswith(base_url) else route.abort()
        ),
    )


def main() -> None:
    from tools import picture_sources
    from tools.browser import chromium_page

    with tempfile.TemporaryDirectory() as folder:
        site_dir = Path(folder) / "site"
        result = build_site(site_dir)
        if result.returncode:
            sys.exit(result.stderr)
        with serve_site(site_dir) as url, chromium_page(1280, 800) as page:
            loopback_only(page, url)
            page.goto(f"{url}/lessons/{PICTURED_LESSON}/")
            # Scroll to what the lesson adds: the /metrics endpoint, highlighted.
            endpoint = page.locator("td.code .hll", has_text='@app.get("/metrics"').first
            endpoint.evaluate("line => line.scrollIntoView({block: 'center'})")
            page.wait_for_timeout(1000)  # the header's title changes with a short animation
            page.screenshot(path=str(PICTURE))
    picture_sources.record([PICTURE.name])
    print(f"wrote {PICTURE.relative_to(REPO_ROOT)}")


if __name__ == "__main__":
    main()

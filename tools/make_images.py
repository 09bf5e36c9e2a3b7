"""Regenerate every picture in images/ from the real thing, with one command.

From the repository root::

    python -m tools.make_images            # all pictures, about a minute and a half
    python -m tools.make_images --only diagrams

What it makes (the README, the site's pages and the notebook show them), each by its module:

- ``golden_signals.png`` and ``architecture.png``: diagrams drawn with matplotlib
  (tools/diagrams.py);
- ``swagger_ui.png`` and ``swagger_try_it_out.png``: the final lesson's /docs page and a
  "Try it out" of POST /predict_single with its real response, in a browser with no
  internet (tools/swagger_offline.py);
- ``metrics_page.png``: the lesson's /metrics page after some traffic;
- ``prometheus_graph.png``: the Prometheus UI graphing a PromQL query of live traffic;
- ``grafana_dashboard_preview.png``: the panels of the Grafana dashboard, each query run
  against the same live Prometheus and drawn with matplotlib (tools/grafana_preview.py).
  Grafana itself cannot run here, so this is a *preview*. A maintainer with Grafana can
  add a real screenshot as ``images/grafana_dashboard.png`` (this script never writes
  that name) and show it beside the preview.

The site's lesson page, ``site_lesson_page.png``, is made by ``python -m tools.site``.
Every picture made into images/ has the fingerprint of what it shows recorded in
images/pictures.json (tools/picture_sources.py), so the suite finds a stale one.

How: the lesson runs under uvicorn and Prometheus (Debian's /usr/bin/prometheus) on free
loopback ports, started and stopped by pid with tools.servers; tools.traffic sends the
traffic; the screenshots come from Debian's headless chromium driven by Playwright
(``apt-get install chromium``, tools/browser.py).
"""

from __future__ import annotations

import argparse
import tempfile
import time
import urllib.parse
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from tools import picture_sources, traffic
from tools.browser import CHROMIUM, chromium_page
from tools.diagrams import DIAGRAMS, make_diagrams
from tools.grafana_preview import draw_grafana_preview
from tools.picture_sources import FINAL_LESSON as LESSON
from tools.picture_sources import PROMQL_GRAPH
from tools.servers import REPO_ROOT, LessonServer, PrometheusServer
from tools.swagger_offline import screenshot_swagger, to_openapi_30

__all__ = ["CHROMIUM", "DIAGRAMS", "PICTURES", "chromium_page", "make_diagrams", "to_openapi_30"]

IMAGES = REPO_ROOT / "images"
SCREENSHOTS = (
    "swagger_ui.png",
    "swagger_try_it_out.png",
    "metrics_page.png",
    "prometheus_graph.png",
    "grafana_dashboard_preview.png",
)
# Every picture this script writes, by file name in images/.
PICTURES = DIAGRAMS + SCREENSHOTS
TRAFFIC_SECONDS = 40.0
TRAFFIC_RATE = 10.0


def screenshot_metrics(page: Any, url: str, out: Path) -> Path:
    """/metrics in the browser, scrolled to the HTTP metrics (the process ones come first)."""
    page.goto(url + "/metrics")
    page.evaluate(
        """() => {
            const pre = document.querySelector('pre');
            const node = pre.firstChild;
            const at = node.textContent.indexOf('# HELP titanic_predictions_total');
            const range = document.createRange();
            range.setStart(node, Math.max(at, 0));
            range.setEnd(node, Math.max(at, 0) + 1);
            window.scrollTo(0, range.getBoundingClientRect().top + window.scrollY - 3);
        }"""
    )
    path = out / "metrics_page.png"
    page.screenshot(path=str(path))
    return path


def screenshot_prometheus(page: Any, prometheus: str, out: Path) -> Path:
    """Prometheus' own UI graphing the request rate by endpoint."""
    query = urllib.parse.urlencode(
        {"g0.expr": PROMQL_GRAPH, "g0.tab": "0", "g0.range_input": "1m", "g0.stacked": "0"}
    )
    page.goto(f"{prometheus}/graph?{query}")
    page.wait_for_selector("svg path", state="attached", timeout=30_000)
    page.wait_for_timeout(1500)
    path = out / "prometheus_graph.png"
    page.screenshot(path=str(path))
    return path


def make_live_pictures(out: Path) -> list[Path]:
    """Screenshots and the dashboard preview, from a running lesson and Prometheus."""
    made: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="titanic-images-") as scratch, ExitStack() as stack:
        folder = Path(scratch)
        server = LessonServer(
            LESSON,
            env={"PREDICTION_LOG_DIR": str(folder / "logs")},
            log_path=folder / "uvicorn.log",
        )
        stack.enter_context(server)
        prometheus = stack.enter_context(PrometheusServer(server.port, folder))
        page = stack.enter_context(chromium_page())
        made += screenshot_swagger(page, server.url, out)
        print(f"sending traffic for {TRAFFIC_SECONDS:.0f} s ...", flush=True)
        start = time.time()
        report = traffic.run(server.url, TRAFFIC_SECONDS, TRAFFIC_RATE, seed=7)
        print(report.summary(), flush=True)
        time.sleep(2.5)  # one more scrape after the last request
        end = time.time()
        made.append(screenshot_metrics(page, server.url, out))
        made.append(screenshot_prometheus(page, prometheus.url, out))
        preview = out / "grafana_dashboard_preview.png"
        draw_grafana_preview(prometheus.url, start, end, preview, LESSON)
        made.append(preview)
    return made


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.make_images", description="Regenerate the pictures in images/."
    )
    parser.add_argument("--out", type=Path, default=IMAGES, help="where to write (images/)")
    parser.add_argument(
        "--only", choices=("diagrams", "live"), help="just the diagrams, or just the live pictures"
    )
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    made: list[Path] = []
    if args.only in (None, "diagrams"):
        made += make_diagrams(args.out)
    if args.only in (None, "live"):
        made += make_live_pictures(args.out)
    if args.out.resolve() == IMAGES.resolve():
        picture_sources.record(path.name for path in made)
    for path in made:
        print(f"wrote {path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

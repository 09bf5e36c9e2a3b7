"""Regenerate every picture in images/ from the real thing, with one command.

From the repository root::

    python -m tools.make_images            # all pictures, about a minute and a half
    python -m tools.make_images --only diagrams

What it makes (the README and the notebook show them):

- ``golden_signals.png`` and ``architecture.png``: diagrams drawn with matplotlib;
- ``swagger_ui.png`` and ``swagger_try_it_out.png``: the final lesson's /docs page
  and a "Try it out" of POST /predict_single with its real response;
- ``metrics_page.png``: the lesson's /metrics page after some traffic;
- ``prometheus_graph.png``: the Prometheus UI graphing a PromQL query of live traffic;
- ``grafana_dashboard_preview.png``: the panels of
  grafana_dashboard/titanic_api_simple_app_monitoring.json, each query run against
  the same live Prometheus and drawn with matplotlib. Grafana itself cannot run
  here, so this is a *preview*. A maintainer with Grafana can add a real
  screenshot as ``images/grafana_dashboard.png`` (this script never writes that
  name) and point the README at it.

How: the lesson runs under uvicorn and Prometheus (Debian's /usr/bin/prometheus)
on free loopback ports, started and stopped by pid with tools.servers;
tools.traffic sends the traffic; the screenshots come from Debian's headless
chromium driven by Playwright (``apt-get install chromium``).

FastAPI's /docs page loads Swagger UI from a CDN, which may be unreachable (it
is, on the machine this was written on). The browser here never goes to the
internet: every request that is not for a local server is either answered from
the Swagger UI copy in the PyPI package ``swagger-ui-bundle`` or refused. That
copy is Swagger UI 4.15, which predates OpenAPI 3.1 and refuses FastAPI's 3.1
schema ("Unable to render this definition"), so for the picture the schema is
handed to it in the equivalent OpenAPI 3.0 spelling (``to_openapi_30``). The
lessons are not changed: they still serve 3.1.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no window

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

from tools import traffic  # noqa: E402
from tools.servers import HOST, REPO_ROOT, LessonServer, PrometheusServer  # noqa: E402

IMAGES = REPO_ROOT / "images"
# Every picture this script writes, by file name in images/.
DIAGRAMS = ("golden_signals.png", "architecture.png")
SCREENSHOTS = (
    "swagger_ui.png",
    "swagger_try_it_out.png",
    "metrics_page.png",
    "prometheus_graph.png",
    "grafana_dashboard_preview.png",
)
PICTURES = DIAGRAMS + SCREENSHOTS
LESSON = "prometheus_04_multi_execute_app"
DASHBOARD = REPO_ROOT / "grafana_dashboard" / "titanic_api_simple_app_monitoring.json"
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
# What the Prometheus picture graphs: requests per second, by endpoint.
PROMQL_GRAPH = 'sum by (endpoint) (rate(http_requests_total{job="fastapi_app"}[15s]))'
# Grafana's own variables, replaced by concrete values to run a panel's query directly.
GRAFANA_VARIABLES = {
    "$__rate_interval": "15s",
    "${__rate_interval}": "15s",
    "$__interval": "5s",
    "${__interval}": "5s",
    "$__range": "1m",
    "${__range}": "1m",
    # The Instance menu set to All: every replica.
    "$instance": ".*",
}
TRAFFIC_SECONDS = 40.0
TRAFFIC_RATE = 10.0

COLORS = {
    "traffic": "#4C72B0",
    "latency": "#DD8452",
    "errors": "#C44E52",
    "saturation": "#55A868",
    "box": "#F2F2F2",
    "edge": "#555555",
}


# ------------------------------------------------------------------ diagrams
def _box(ax: Any, x: float, y: float, w: float, h: float, text: str, color: str) -> None:
    ax.add_patch(
        FancyBboxPatch(
            (x, y),
            w,
            h,
            boxstyle="round,pad=0.008,rounding_size=0.02",
            facecolor=color,
            edgecolor=COLORS["edge"],
            linewidth=1.2,
        )
    )
    ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=10)


def _arrow(
    ax: Any,
    start: tuple[float, float],
    end: tuple[float, float],
    label: str = "",
    offset: tuple[float, float] = (0.0, 0.03),
) -> None:
    ax.add_patch(
        FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=16, color=COLORS["edge"])
    )
    if label:
        mid = ((start[0] + end[0]) / 2 + offset[0], (start[1] + end[1]) / 2 + offset[1])
        ax.text(
            mid[0],
            mid[1],
            label,
            ha="center",
            va="center",
            fontsize=8.5,
            style="italic",
            bbox={"facecolor": "white", "edgecolor": "none", "pad": 1.5},
        )


def draw_golden_signals(path: Path) -> None:
    """The four golden signals, the question each answers and this project's metric for it."""
    signals = [
        (
            "Traffic",
            "How much is asked of the service?",
            "http_requests_total\n(Counter, by method, endpoint, status_code)",
            "sum by (endpoint) (rate(http_requests_total[5m]))",
            COLORS["traffic"],
        ),
        (
            "Latency",
            "How long do answers take?",
            "http_request_duration_seconds\n(Histogram, by endpoint)",
            "histogram_quantile(0.95, sum by (le)\n"
            " (rate(http_request_duration_seconds_bucket[5m])))",
            COLORS["latency"],
        ),
        (
            "Errors",
            "How many requests fail?",
            "http_errors_total\n(Counter of 5xx answers, by method, endpoint)",
            "sum(rate(http_errors_total[5m]))\n / sum(rate(http_requests_total[5m]))",
            COLORS["errors"],
        ),
        (
            "Saturation",
            "How full is the service?",
            "http_requests_in_progress (Gauge)\n"
            "process_cpu_seconds_total\nprocess_resident_memory_bytes",
            "http_requests_in_progress\nrate(process_cpu_seconds_total[5m])",
            COLORS["saturation"],
        ),
    ]
    fig, ax = plt.subplots(figsize=(12, 7.2), dpi=110)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.axis("off")
    ax.set_title(
        "The four golden signals, as prometheus_01 and later lessons measure them",
        fontsize=14,
        fontweight="bold",
    )
    positions = [(0.02, 0.5), (0.51, 0.5), (0.02, 0.04), (0.51, 0.04)]
    for (name, question, metric, promql, color), (x, y) in zip(signals, positions, strict=True):
        ax.add_patch(
            FancyBboxPatch(
                (x, y),
                0.47,
                0.4,
                boxstyle="round,pad=0.005,rounding_size=0.02",
                facecolor=color + "22",
                edgecolor=color,
                linewidth=2,
            )
        )
        ax.text(x + 0.02, y + 0.35, name, fontsize=15, fontweight="bold", color=color, va="center")
        ax.text(x + 0.02, y + 0.285, question, fontsize=11, style="italic", va="center")
        ax.text(x + 0.02, y + 0.2, metric, fontsize=9.5, family="monospace", va="center")
        ax.text(
            x + 0.02,
            y + 0.075,
            "PromQL: " + promql,
            fontsize=8.5,
            family="monospace",
            va="center",
            color="#333333",
        )
    ax.text(
        0.5,
        0.465,
        "measured for every request by one HTTP middleware in the lesson,"
        " never for /metrics itself",
        ha="center",
        va="center",
        fontsize=9.5,
        color="#444444",
    )
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)


def draw_architecture(path: Path) -> None:
    """How the pieces connect: lesson -> /metrics -> Prometheus -> Grafana, and the log."""
    fig, ax = plt.subplots(figsize=(13, 6), dpi=110)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.axis("off")
    ax.set_title(
        "How the tutorial fits together (final lesson: prometheus_04_multi_execute_app)",
        fontsize=14,
        fontweight="bold",
    )
    _box(
        ax,
        0.02,
        0.6,
        0.16,
        0.2,
        "client\nrequests, curl,\nSwagger UI (/docs),\ntools.traffic",
        "#E8EEF7",
    )
    _box(ax, 0.02, 0.14, 0.16, 0.2, "MLflow model\nmlruns/\n(scikit-learn pipeline)", "#EFE6F5")
    _box(
        ax,
        0.3,
        0.3,
        0.19,
        0.44,
        "FastAPI lesson\nunder uvicorn\n\nPOST /predict_single\nPOST /predict_batch\n"
        "POST /simulate_predictions\nGET /health",
        "#FFF4E0",
    )
    _box(ax, 0.6, 0.6, 0.14, 0.16, "GET /metrics\n(Prometheus\ntext format)", COLORS["box"])
    _box(
        ax,
        0.6,
        0.12,
        0.14,
        0.22,
        "logs/\npredictions_*.jsonl\none JSON line\nper passenger",
        "#E7F4EA",
    )
    _box(ax, 0.83, 0.6, 0.15, 0.16, "Prometheus :9090\nscrapes, stores,\nPromQL, alerts", "#FBE5E5")
    _box(ax, 0.83, 0.86, 0.15, 0.09, "Grafana :3000\ndashboard JSON", "#E3F1F8")
    _box(
        ax,
        0.83,
        0.12,
        0.15,
        0.22,
        "pandas\n(the notebook)\naudit, drift,\nretraining data",
        "#F5F5DC",
    )
    _arrow(ax, (0.19, 0.7), (0.29, 0.62), "JSON requests", (0.0, 0.05))
    _arrow(ax, (0.19, 0.24), (0.29, 0.4), "loaded once\n(lifespan)", (0.0, -0.07))
    _arrow(ax, (0.5, 0.64), (0.59, 0.68), "counters,\nhistograms", (0.0, 0.07))
    _arrow(ax, (0.5, 0.38), (0.59, 0.26), "append", (0.0, -0.05))
    _arrow(ax, (0.82, 0.68), (0.75, 0.68), "scrapes\nevery 15 s", (0.0, 0.08))
    _arrow(ax, (0.905, 0.77), (0.905, 0.85), "PromQL", (-0.05, 0.0))
    _arrow(ax, (0.75, 0.23), (0.82, 0.23), "read_json", (0.0, 0.05))
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)


# ------------------------------------------------------------------ Swagger UI offline
def to_openapi_30(document: dict[str, Any]) -> dict[str, Any]:
    """FastAPI's OpenAPI 3.1 schema in the 3.0 spelling that Swagger UI 4 understands.

    Only what these lessons use: ``examples`` lists become ``example``, numeric
    ``exclusiveMinimum``/``exclusiveMaximum`` become a bound plus a flag,
    ``anyOf [X, null]`` becomes ``X`` with ``nullable``, ``const`` becomes a
    one-value ``enum``.
    """

    def convert(node: Any) -> Any:
        if isinstance(node, list):
            return [convert(item) for item in node]
        if not isinstance(node, dict):
            return node
        out = {key: convert(value) for key, value in node.items()}
        if isinstance(out.get("examples"), list) and out["examples"]:
            out["example"] = out.pop("examples")[0]
        for bound, plain in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
            if isinstance(out.get(bound), int | float) and not isinstance(out[bound], bool):
                out[plain] = out[bound]
                out[bound] = True
        variants = out.get("anyOf")
        if isinstance(variants, list) and {"type": "null"} in variants:
            rest = [v for v in variants if v != {"type": "null"}]
            del out["anyOf"]
            out.update(rest[0] if len(rest) == 1 else {"anyOf": rest})
            out["nullable"] = True
        if "const" in out:
            out["enum"] = [out.pop("const")]
        return out

    converted: dict[str, Any] = convert(document)
    converted["openapi"] = "3.0.3"
    return converted


def offline_router(local_url: str) -> Callable[[Any], None]:
    """A Playwright route handler: local servers pass, Swagger UI files are served, rest refused."""
    import swagger_ui_bundle  # the Swagger UI dist, shipped on PyPI

    dist = Path(str(swagger_ui_bundle.swagger_ui_path))
    types = {".js": "application/javascript", ".css": "text/css", ".png": "image/png"}

    def handle(route: Any) -> None:
        url = route.request.url
        if url.startswith(local_url + "/openapi.json"):
            with urllib.request.urlopen(url, timeout=10) as response:
                document = json.load(response)
            route.fulfill(body=json.dumps(to_openapi_30(document)), content_type="application/json")
        elif url.startswith(f"http://{HOST}:"):
            route.continue_()
        else:
            name = urllib.parse.urlsplit(url).path.rsplit("/", 1)[-1]
            local = dist / name
            if local.suffix in types and local.is_file():
                route.fulfill(path=str(local), content_type=types[local.suffix])
            else:
                route.abort()  # e.g. FastAPI's favicon on its website: not needed

    return handle


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


def screenshot_swagger(page: Any, url: str, out: Path) -> list[Path]:
    """/docs as a learner first sees it, and a "Try it out" of POST /predict_single."""
    page.route("**/*", offline_router(url))
    page.goto(url + "/docs")
    page.wait_for_selector(".opblock-summary", timeout=30_000)
    overview = out / "swagger_ui.png"
    page.screenshot(path=str(overview))

    operation = page.locator(".opblock-post").filter(has_text="/predict_single").first
    operation.locator(".opblock-summary").click()
    operation.get_by_role("button", name="Try it out").click()
    operation.get_by_role("button", name="Execute").click()
    answer = operation.locator(".live-responses-table").first
    answer.locator(".response-col_status").first.wait_for(timeout=30_000)
    page.wait_for_timeout(500)  # let the response block finish laying out
    # From the operation's header down to the server's response (not the static docs below),
    # measured in page coordinates.
    top, bottom, left, width = page.evaluate(
        """([operation, answer]) => {
            const a = operation.getBoundingClientRect(), b = answer.getBoundingClientRect();
            return [a.top + window.scrollY, b.bottom + window.scrollY, a.left, a.width];
        }""",
        [operation.element_handle(), answer.element_handle()],
    )
    try_it = out / "swagger_try_it_out.png"
    page.screenshot(
        path=str(try_it),
        full_page=True,
        clip={"x": left, "y": top, "width": width, "height": bottom - top + 12},
    )
    page.unroute("**/*")
    return [overview, try_it]


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


# ------------------------------------------------------------------ Prometheus
def prom_query_range(prometheus: str, expr: str, start: float, end: float) -> list[dict[str, Any]]:
    """Run a PromQL range query through Prometheus' HTTP API; the result's series."""
    query = urllib.parse.urlencode({"query": expr, "start": start, "end": end, "step": "2s"})
    with urllib.request.urlopen(f"{prometheus}/api/v1/query_range?{query}", timeout=30) as reply:
        answer = json.load(reply)
    if answer.get("status") != "success":
        raise RuntimeError(f"Prometheus refused {expr!r}: {answer}")
    series: list[dict[str, Any]] = answer["data"]["result"]
    return series


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


# ------------------------------------------------------------------ Grafana preview
def dashboard_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """The dashboard's panels with queries, rows unfolded, in reading order."""
    panels: list[dict[str, Any]] = []
    for panel in dashboard.get("panels", []):
        if panel.get("type") == "row":
            panels.extend(panel.get("panels", []))
        else:
            panels.append(panel)
    with_queries = [p for p in panels if any(t.get("expr") for t in p.get("targets", []))]
    return sorted(
        with_queries, key=lambda p: (p.get("gridPos", {}).get("y", 0), p["gridPos"].get("x", 0))
    )


def concrete(expr: str, window: str) -> str:
    """A panel's PromQL with Grafana's variables replaced by fixed values."""
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    return expr.replace("$__range", window).replace("${__range}", window)


def legend(template: str, labels: dict[str, str]) -> str:
    """Grafana's ``legendFormat``: ``{{label}}`` replaced by the series' label values."""
    if not template or template == "__auto":
        return ", ".join(f"{k}={v}" for k, v in labels.items() if k != "__name__")
    for key, value in labels.items():
        template = template.replace("{{" + key + "}}", value).replace("{{ " + key + " }}", value)
    return template


# How a panel's unit is shown: (scale, suffix).
UNITS = {
    "s": (1000.0, " ms"),
    "bytes": (1 / 2**20, " MiB"),
    "percentunit": (100.0, " %"),
    "reqps": (1.0, " req/s"),
}


def _bucket_bars(series: list[tuple[str, float]]) -> tuple[list[str], list[float]]:
    """Cumulative ``le`` buckets as per-bucket counts, labelled by their range (format heatmap)."""
    ordered = sorted(series, key=lambda item: float(item[0]))
    names, counts, below, lower = [], [], 0.0, "0"
    for le, cumulative in ordered:
        upper = "inf" if le == "+Inf" else f"{float(le):g}"
        names.append(f"{lower}–{upper}" if upper != "inf" else f"> {lower}")
        counts.append(max(cumulative - below, 0.0))
        below, lower = cumulative, upper
    return names, counts


def draw_panel(ax: Any, panel: dict[str, Any], prometheus: str, start: float, end: float) -> None:
    """One panel, drawn the way Grafana draws its type, from live query results."""
    kind = panel.get("type", "timeseries")
    scale, suffix = UNITS.get(panel.get("fieldConfig", {}).get("defaults", {}).get("unit"), (1, ""))
    window = f"{max(int(end - start), 10)}s"
    results: list[tuple[str, list[float], list[float], str]] = []
    for target in panel.get("targets", []):
        if target.get("expr"):
            for series in prom_query_range(
                prometheus, concrete(target["expr"], window), start, end
            ):
                times = [float(t) - start for t, _ in series["values"]]
                values = [float(v) * scale for _, v in series["values"]]
                name = legend(target.get("legendFormat", ""), series["metric"])
                results.append((name, times, values, target.get("format", "")))
    ax.set_title(panel.get("title", ""), fontsize=10, loc="left", color="#d8d9da")
    if not results:
        ax.text(0.5, 0.5, "No data", ha="center", va="center", transform=ax.transAxes)
        ax.axis("off")
        return
    if kind == "stat":
        ax.axis("off")
        # Several values (e.g. Replicas up: up, scraped) side by side, as Grafana lays them out.
        for i, (name, _, values, _) in enumerate(results):
            x, y = (i + 0.5) / len(results), 0.55
            ax.text(
                x,
                y,
                f"{values[-1]:,.4g}{suffix}",
                ha="center",
                va="center",
                fontsize=26,
                color="#73bf69",
                fontweight="bold",
                transform=ax.transAxes,
            )
            ax.text(x, y - 0.22, name, ha="center", va="center", fontsize=8, transform=ax.transAxes)
    elif kind == "piechart":
        last = [(name, values[-1]) for name, _, values, _ in results if values and values[-1] > 0]
        ax.pie(
            [v for _, v in last],
            labels=[f"{n}\n{v:,.0f}" for n, v in last],
            textprops={"fontsize": 8, "color": "#d8d9da"},
            startangle=90,
            wedgeprops={"width": 0.45},
        )
    elif kind == "bargauge":
        if all(fmt == "heatmap" for *_, fmt in results):
            names, counts = _bucket_bars([(n, values[-1]) for n, _, values, _ in results])
        else:
            names, counts = [n for n, *_ in results], [values[-1] for _, _, values, _ in results]
        ax.barh(names, counts, color="#5794f2")
        ax.invert_yaxis()
        ax.tick_params(labelsize=7)
        for name, count in zip(names, counts, strict=True):
            ax.text(count, name, f" {count:,.0f}", va="center", fontsize=7)
    else:
        for name, times, values, _ in results:
            ax.plot(times, values, label=name, linewidth=1.4)
        ax.tick_params(labelsize=7)
        ax.set_xlabel("seconds of traffic", fontsize=7)
        if suffix:
            ax.set_ylabel(suffix.strip(), fontsize=7)
        ax.legend(fontsize=6.5, loc="upper left", framealpha=0.4)
        ax.grid(alpha=0.2)


def draw_grafana_preview(prometheus: str, start: float, end: float, path: Path) -> None:
    """The dashboard laid out as in Grafana (its gridPos), every query run against Prometheus."""
    dashboard = json.loads(DASHBOARD.read_text())
    panels = dashboard_panels(dashboard)
    rows = [p for p in dashboard.get("panels", []) if p.get("type") == "row"]
    height = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in panels)
    unit = 0.3  # inches per Grafana grid row
    top = 1.2  # inches for the title
    fig_h = height * unit + top
    with plt.style.context("dark_background"):
        fig = plt.figure(figsize=(16, fig_h), dpi=90, facecolor="#111217")
        fig.text(
            0.5,
            1 - 0.35 / fig_h,
            f"PREVIEW of the Grafana dashboard \u201c{dashboard.get('title', '')}\u201d",
            ha="center",
            va="center",
            fontsize=15,
            fontweight="bold",
        )
        fig.text(
            0.5,
            1 - 0.75 / fig_h,
            "not a Grafana screenshot: each panel's PromQL was run against a live Prometheus "
            f"scraping {LESSON} and drawn with matplotlib",
            ha="center",
            va="center",
            fontsize=10,
            color="#aaaaaa",
        )
        for row in rows:
            y = row["gridPos"]["y"]
            fig.text(
                0.01,
                1 - (top + (y + 0.5) * unit) / fig_h,
                row.get("title", ""),
                fontsize=11,
                fontweight="bold",
                va="center",
            )
        for panel in panels:
            grid = panel["gridPos"]
            bottom = 1 - (top + (grid["y"] + grid["h"]) * unit) / fig_h
            ax = fig.add_axes(
                (
                    grid["x"] / 24 + 0.03 * grid["w"] / 24 + 0.012,
                    bottom + 0.45 / fig_h,
                    grid["w"] / 24 * 0.94 - 0.018,
                    (grid["h"] * unit - 0.85) / fig_h,
                ),
                facecolor="#181b1f",
            )
            draw_panel(ax, panel, prometheus, start, end)
        fig.savefig(path, facecolor=fig.get_facecolor())
        plt.close(fig)


# ------------------------------------------------------------------ main
def make_diagrams(out: Path) -> list[Path]:
    signals, architecture = (out / name for name in DIAGRAMS)
    draw_golden_signals(signals)
    draw_architecture(architecture)
    return [signals, architecture]


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
        draw_grafana_preview(prometheus.url, start, end, preview)
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
    for path in made:
        print(f"wrote {path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

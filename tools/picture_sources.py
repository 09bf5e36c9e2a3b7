"""What each picture in images/ shows, as a fingerprint, so that a stale picture is found.

A picture is made from the running code (``python -m tools.make_images``, ``python -m
tools.site``), which is slow and needs Chromium and Prometheus, so the suite does not remake
them. Instead, whenever a picture is made, the fingerprint of what it shows (the final
lesson's OpenAPI schema for the Swagger pictures, its metrics for /metrics, the dashboard's
JSON for the Grafana preview, the lesson page and code for the site's picture ...) is written
beside it, into images/pictures.json. tests/site/test_pictures.py recomputes every fingerprint
and fails, naming the command to run, when a picture is older than what it shows.
"""

from __future__ import annotations

import ast
import hashlib
import importlib
import json
from collections.abc import Callable, Iterable
from pathlib import Path

from lessons import LESSONS
from tools.servers import REPO_ROOT

MANIFEST = REPO_ROOT / "images" / "pictures.json"
FINAL_LESSON = LESSONS[-1]
DASHBOARD = REPO_ROOT / "grafana_dashboard" / "titanic_api_simple_app_monitoring.json"
DIAGRAM_CODE = REPO_ROOT / "tools" / "diagrams.py"
PICTURED_LESSON = "prometheus_00_simple_monitoring_app"
GITHUB_ONLY = '<p class="github-only">'  # tools.site_pages' note, hidden on the site
# What the Prometheus picture graphs: requests per second, by endpoint.
PROMQL_GRAPH = 'sum by (endpoint) (rate(http_requests_total{job="fastapi_app"}[15s]))'


def files(*paths: Path) -> str:
    return "\n".join(f"{p.name}\n{p.read_text(encoding='utf-8')}" for p in paths)


def code(path: Path) -> str:
    """A module's code without its docstrings and comments: what runs, not what it says."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        first = body[0] if isinstance(body, list) and body else None
        if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
            body[0] = ast.Pass()  # type: ignore[index]
    return ast.unparse(tree)


def final_lesson_schema() -> str:
    """The final lesson's OpenAPI schema: what /docs (Swagger UI) shows."""
    lesson = importlib.import_module(f"lessons.{FINAL_LESSON}")
    return json.dumps(lesson.app.openapi(), sort_keys=True)


def final_lesson_metrics() -> str:
    """The final lesson's own metrics, each name, type and help text: what /metrics shows."""
    lesson = importlib.import_module(f"lessons.{FINAL_LESSON}")
    families = [
        (family.name, family.type, family.documentation)
        for family in lesson.registry.collect()
        if not family.name.startswith(("process_", "python_"))
    ]
    return json.dumps(sorted(families))


def graphed_requests() -> str:
    """The Prometheus picture: its PromQL, and the lesson's endpoints it draws a line for."""
    lesson = importlib.import_module(f"lessons.{FINAL_LESSON}")
    return PROMQL_GRAPH + "\n" + "\n".join(sorted(lesson.app.openapi()["paths"]))


def site_page() -> str:
    """The site's lesson page: its Markdown (less the note only GitHub shows, which the site
    hides), and the two lessons whose difference it highlights."""
    previous = LESSONS[LESSONS.index(PICTURED_LESSON) - 1]
    page = (REPO_ROOT / "docs" / "lessons" / f"{PICTURED_LESSON}.md").read_text(encoding="utf-8")
    shown = "\n".join(line for line in page.splitlines() if not line.startswith(GITHUB_ONLY))
    return shown + files(
        REPO_ROOT / "lessons" / f"{PICTURED_LESSON}.py",
        REPO_ROOT / "lessons" / f"{previous}.py",
    )


# Picture -> (what it shows, how to remake it, the text that fingerprints what it shows).
SOURCES: dict[str, tuple[str, str, Callable[[], str]]] = {
    "golden_signals.png": (
        "the diagram's code",
        "python -m tools.make_images --only diagrams",
        lambda: code(DIAGRAM_CODE),
    ),
    "architecture.png": (
        "the diagram's code",
        "python -m tools.make_images --only diagrams",
        lambda: code(DIAGRAM_CODE),
    ),
    "swagger_ui.png": (
        "the final lesson's OpenAPI schema",
        "python -m tools.make_images --only live",
        final_lesson_schema,
    ),
    "swagger_try_it_out.png": (
        "the final lesson's OpenAPI schema",
        "python -m tools.make_images --only live",
        final_lesson_schema,
    ),
    "metrics_page.png": (
        "the final lesson's metrics",
        "python -m tools.make_images --only live",
        final_lesson_metrics,
    ),
    "prometheus_graph.png": (
        "the graphed query and the final lesson's endpoints",
        "python -m tools.make_images --only live",
        graphed_requests,
    ),
    "grafana_dashboard_preview.png": (
        "the dashboard's JSON",
        "python -m tools.make_images --only live",
        lambda: files(DASHBOARD),
    ),
    "site_lesson_page.png": (
        f"the page and code of {PICTURED_LESSON}",
        "python -m tools.site",
        site_page,
    ),
}


def fingerprint(picture: str) -> str:
    _, _, shown = SOURCES[picture]
    return hashlib.sha256(shown().encode()).hexdigest()[:16]


def recorded() -> dict[str, str]:
    if not MANIFEST.is_file():
        return {}
    entries: dict[str, dict[str, str]] = json.loads(MANIFEST.read_text())
    return {name: entry["fingerprint"] for name, entry in entries.items()}


def record(pictures: Iterable[str]) -> None:
    """Write the current fingerprints of these (just made) pictures into images/pictures.json."""
    entries = json.loads(MANIFEST.read_text()) if MANIFEST.is_file() else {}
    for picture in pictures:
        shows, remake, _ = SOURCES[picture]
        entries[picture] = {"shows": shows, "remake": remake, "fingerprint": fingerprint(picture)}
    MANIFEST.write_text(json.dumps(dict(sorted(entries.items())), indent=2) + "\n")


def stale_message(picture: str) -> str:
    shows, remake, _ = SOURCES[picture]
    return f"images/{picture} is older than {shows}: remake it with `{remake}`"


def stale() -> list[str]:
    """The pictures older than what they show, each with the command that remakes it."""
    old = recorded()
    return [stale_message(p) for p in SOURCES if old.get(p) != fingerprint(p)]

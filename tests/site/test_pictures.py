"""The pictures are as new as what they show, and the tools that make them stay small.

Each picture's fingerprint of what it shows is recorded in images/pictures.json when it is
made (tools/picture_sources.py); here every fingerprint is computed again from the code.
"""

from __future__ import annotations

import ast
import importlib
import json
import shutil
from pathlib import Path

import pytest

from tools import make_images, picture_sources, site
from tools.servers import REPO_ROOT

PICTURE_TOOLS = (
    "make_images",
    "diagrams",
    "grafana_preview",
    "grafana_dashboard",
    "swagger_offline",
    "browser",
    "picture_sources",
    "site",
    "site_pages",
)


def test_every_picture_is_as_new_as_what_it_shows() -> None:
    assert picture_sources.stale() == []


def test_every_picture_made_has_a_fingerprint() -> None:
    made = {*make_images.PICTURES, site.PICTURE.name}
    assert set(picture_sources.SOURCES) == made
    assert set(picture_sources.recorded()) == made


def test_a_changed_dashboard_makes_its_preview_stale(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check above can fail: edit a panel's title, and only the preview is out of date."""
    dashboard = json.loads(picture_sources.DASHBOARD.read_text())
    dashboard["panels"][1]["title"] += " (renamed)"
    changed = tmp_path / "dashboard.json"
    changed.write_text(json.dumps(dashboard))
    before = set(picture_sources.stale())
    monkeypatch.setattr(picture_sources, "DASHBOARD", changed)
    [message] = set(picture_sources.stale()) - before
    assert message.startswith("images/grafana_dashboard_preview.png is older than")
    assert "python -m tools.make_images --only live" in message


def test_a_changed_lesson_page_makes_the_site_picture_stale(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Add a line to the pictured lesson page, and only the site's picture is out of date."""
    copy = tmp_path / "repo"
    for folder in ("docs/lessons", "lessons"):
        shutil.copytree(REPO_ROOT / folder, copy / folder)
    page = copy / "docs" / "lessons" / f"{picture_sources.PICTURED_LESSON}.md"
    page.write_text(page.read_text() + "\nOne more line.\n")
    before = set(picture_sources.stale()) - {picture_sources.stale_message("site_lesson_page.png")}
    monkeypatch.setattr(picture_sources, "REPO_ROOT", copy)
    [message] = set(picture_sources.stale()) - before
    assert message.startswith("images/site_lesson_page.png is older than")
    assert "`python -m tools.site`" in message


def test_recording_writes_the_current_fingerprint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(picture_sources, "MANIFEST", tmp_path / "pictures.json")
    picture_sources.record(["architecture.png"])
    entry = json.loads((tmp_path / "pictures.json").read_text())["architecture.png"]
    assert entry["fingerprint"] == picture_sources.fingerprint("architecture.png")
    assert entry["remake"] == "python -m tools.make_images --only diagrams"


@pytest.mark.parametrize("name", PICTURE_TOOLS)
def test_picture_tools_are_small(name: str) -> None:
    """Split by concern (issue 22): no module over 400 lines, no function over 60."""
    source = (REPO_ROOT / "tools" / f"{name}.py").read_text()
    assert len(source.splitlines()) <= 400
    long = [
        f"{node.name}: {node.end_lineno - node.lineno + 1} lines"
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.FunctionDef) and node.end_lineno
        if node.end_lineno - node.lineno + 1 > 60
    ]
    assert long == []


def test_the_prometheus_caption_names_the_query_the_picture_graphs() -> None:
    page = (REPO_ROOT / "docs" / "prometheus.md").read_text()
    [caption] = [line for line in page.splitlines() if line.startswith("*Prometheus' **Graph**")]
    assert f"`{picture_sources.PROMQL_GRAPH}`" in caption
    assert "](images/prometheus_graph.png)" in page


# Each live picture on the page that discusses what it shows.
SHOWN_ON = {
    "swagger_ui.png": "lessons/index.md",
    "swagger_try_it_out.png": "lessons/index.md",
    "metrics_page.png": "metrics.md",
    "prometheus_graph.png": "prometheus.md",
    "grafana_dashboard_preview.png": "grafana.md",
}


@pytest.mark.parametrize("picture, page", SHOWN_ON.items())
def test_each_picture_is_on_the_page_that_discusses_it(picture: str, page: str) -> None:
    text = (REPO_ROOT / "docs" / page).read_text()
    up = "../" * page.count("/")
    assert f"]({up}images/{picture})" in text


def test_the_swagger_caption_counts_the_final_lesson_endpoints() -> None:
    final = importlib.import_module(f"lessons.{picture_sources.FINAL_LESSON}")
    operations = [op for path in final.app.openapi()["paths"].values() for op in path]
    words = {5: "five", 6: "six", 7: "seven"}
    text = (REPO_ROOT / "docs" / "lessons" / "index.md").read_text()
    assert f"with its {words[len(operations)]} endpoints (`/metrics` is left out" in text


def test_the_note_only_github_shows_does_not_age_the_site_picture(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The site hides the note (tools/site_pages.py), so the picture cannot show it."""
    copy = tmp_path / "repo"
    for folder in ("docs/lessons", "lessons"):
        shutil.copytree(REPO_ROOT / folder, copy / folder)
    page = copy / "docs" / "lessons" / f"{picture_sources.PICTURED_LESSON}.md"
    text = page.read_text()
    assert picture_sources.GITHUB_ONLY in text
    page.write_text(text.replace(picture_sources.GITHUB_ONLY, picture_sources.GITHUB_ONLY + "X"))
    before = picture_sources.fingerprint("site_lesson_page.png")
    monkeypatch.setattr(picture_sources, "REPO_ROOT", copy)
    assert picture_sources.fingerprint("site_lesson_page.png") == before

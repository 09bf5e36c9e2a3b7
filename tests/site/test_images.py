"""The pictures: every one the README, the site's pages and the notebooks show is a real PNG.

The screenshots need chromium and Prometheus and take a minute, so the suite
does not regenerate them; it checks the committed files, draws the diagrams
again into a temporary folder, and checks the OpenAPI 3.0 rewrite the Swagger
UI screenshot relies on.
"""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path
from typing import Any

import nbformat
import pytest

from tests.support.lessons import FINAL_LESSON
from tools import make_images
from tools.servers import REPO_ROOT

IMAGES = REPO_ROOT / "images"
NOTEBOOKS = sorted((REPO_ROOT / "notebooks").glob("*.ipynb"))
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MIN_WIDTH, MIN_HEIGHT = 300, 200
# Markdown images ![alt](path "title") and HTML <img src="path">.
IMAGE_REFERENCE = re.compile(
    r"!\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)|<img[^>]+src=\"([^\"]+)\""
)


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's header; fails unless the file is a PNG."""
    header = path.read_bytes()[:24]
    assert header[:8] == PNG_SIGNATURE, f"{path.name} is not a PNG"
    assert header[12:16] == b"IHDR", f"{path.name} has no PNG header chunk"
    width, height = struct.unpack(">II", header[16:24])
    return int(width), int(height)


def markdown_texts() -> list[tuple[Path, str]]:
    """(file, markdown) for the README, every page of the site and every notebook markdown cell.

    The site's pages reach the pictures through docs/images, a link to images/.
    """
    pages = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").rglob("*.md"))]
    texts = [(page, page.read_text()) for page in pages]
    for path in NOTEBOOKS:
        notebook = nbformat.read(path, as_version=4)
        texts += [(path, cell.source) for cell in notebook.cells if cell.cell_type == "markdown"]
    return texts


def referenced_pictures() -> list[tuple[Path, str, Path]]:
    """(file, reference as written, resolved path) for every local picture referenced."""
    found = []
    for source, text in markdown_texts():
        for match in IMAGE_REFERENCE.finditer(text):
            reference = match.group(1) or match.group(2)
            if not reference.startswith(("http://", "https://", "data:")):
                found.append((source, reference, (source.parent / reference).resolve()))
    return found


def test_image_reference_pattern() -> None:
    text = '![a](../images/x.png) ![b](<images/y.png> "t") <img src="images/w.png" width=4>'
    assert [m.group(1) or m.group(2) for m in IMAGE_REFERENCE.finditer(text)] == [
        "../images/x.png",
        "images/y.png",
        "images/w.png",
    ]


def test_readme_and_notebooks_show_pictures() -> None:
    sources = {source for source, _, _ in referenced_pictures()}
    assert REPO_ROOT / "README.md" in sources
    assert NOTEBOOKS, "no notebook in notebooks/"
    assert set(NOTEBOOKS) <= sources


@pytest.mark.parametrize(
    "source, reference, path",
    referenced_pictures(),
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_every_referenced_picture_is_a_png_in_images(
    source: Path, reference: str, path: Path
) -> None:
    assert path.parent == IMAGES, f"{source.name}: {reference} is not in images/"
    assert path.is_file(), f"{source.name}: {reference} does not exist"
    width, height = png_size(path)
    assert width >= MIN_WIDTH and height >= MIN_HEIGHT, f"{reference} is {width}x{height}"


def test_every_picture_the_script_makes_is_committed_and_shown() -> None:
    shown = {path.name for _, _, path in referenced_pictures()}
    for name in make_images.PICTURES:
        width, height = png_size(IMAGES / name)
        assert width >= MIN_WIDTH and height >= MIN_HEIGHT, f"{name} is {width}x{height}"
        assert name in shown, f"images/{name} is made but shown nowhere"


def test_the_grafana_picture_is_called_a_preview_wherever_it_is_shown() -> None:
    for source, text in markdown_texts():
        for line in text.splitlines():
            if "grafana_dashboard_preview.png" in line:
                assert "preview" in line.lower().split("](")[0], f"{source.name}: {line}"


def test_diagrams_are_drawn_by_the_script(tmp_path: Path) -> None:
    made = make_images.make_diagrams(tmp_path)
    assert [path.name for path in made] == list(make_images.DIAGRAMS)
    for path in made:
        width, height = png_size(path)
        assert width >= 800 and height >= 400


def walk(node: Any) -> list[dict[str, Any]]:
    """Every JSON object inside ``node``, ``node`` included."""
    if isinstance(node, list):
        return [found for item in node for found in walk(item)]
    if isinstance(node, dict):
        return [node] + [found for value in node.values() for found in walk(value)]
    return []


def test_openapi_30_rewrite_for_swagger_ui_4() -> None:
    """What tools.make_images hands the offline Swagger UI 4 is valid OpenAPI 3.0."""
    lesson = __import__(f"lessons.{FINAL_LESSON}", fromlist=["app"])
    original = lesson.app.openapi()
    converted = make_images.to_openapi_30(json.loads(json.dumps(original)))
    assert original["openapi"].startswith("3.1")
    assert converted["openapi"] == "3.0.3"
    objects = walk(converted)
    assert not any(isinstance(o.get("examples"), list) for o in objects)
    assert not any(o.get("type") == "null" for o in objects)
    assert not any("const" in o for o in objects)
    for o in objects:
        for bound in ("exclusiveMinimum", "exclusiveMaximum"):
            assert o.get(bound, True) is True
    age = converted["components"]["schemas"]["Passenger"]["properties"]["Age"]
    assert (age["minimum"], age["exclusiveMinimum"], age["maximum"], age["exclusiveMaximum"]) == (
        0,
        True,
        100,
        True,
    )
    example = converted["components"]["schemas"]["Passenger"]["example"]
    assert example["Pclass"] == 3 and example["Embarked"] == "S"
    seed = next(
        p
        for p in converted["paths"]["/simulate_predictions"]["post"]["parameters"]
        if p["name"] == "seed"
    )
    assert seed["schema"]["nullable"] is True and seed["schema"]["type"] == "integer"

"""The course site's pages as GitHub shows them: a note at the top, and the lesson tables.

GitHub renders ``docs/*.md`` as plain Markdown: it shows ``--8<-- "lessons/<name>.py"``
where the site shows the code, and nothing where the build hook puts a generated table.
So every page carries, right under its title, one line of HTML that GitHub shows and the
site hides (``.github-only`` in docs/stylesheets/extra.css): where the published page is,
and links to the files it includes. And the lesson tables of docs/index.md and
docs/lessons/index.md are committed, between two markers, exactly as the hook's
``lesson_table`` makes them. Both are written by this tool and checked by
tests/site/test_site_pages.py::

    python -m tools.site_pages          # rewrite the notes and tables that are out of date
    python -m tools.site_pages --check  # list them, exit 1 if any
"""

from __future__ import annotations

import argparse
import html
import importlib.util
import re
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from tools.servers import REPO_ROOT

DOCS = REPO_ROOT / "docs"
PUBLISHED = "https://&lt;owner&gt;.github.io/&lt;repo&gt;/"
NOTE_START = '<p class="github-only">'
INCLUDE = re.compile(r'^\s*--8<-- "([^"]+)"', re.MULTILINE)
TABLE_START = "<!-- lesson-table: written by python -m tools.site_pages from lessons.LESSONS -->"
TABLE_END = "<!-- /lesson-table -->"
SOLUTIONS = "docs/exercises/"
TABLE = re.compile(re.escape(TABLE_START) + r"\n.*?" + re.escape(TABLE_END), re.DOTALL)


def load_hook() -> ModuleType:
    """docs/hooks/lesson_pages.py, the mkdocs hook (not a package: loaded by its path)."""
    path = DOCS / "hooks" / "lesson_pages.py"
    spec = importlib.util.spec_from_file_location("lesson_pages_hook", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def pages() -> list[Path]:
    """Every page of the site (docs/hooks holds code, not pages)."""
    return sorted(p for p in DOCS.rglob("*.md") if DOCS / "hooks" not in p.parents)


def published_path(page: Path) -> str:
    """docs/lessons/x.md -> "lessons/x/", docs/index.md -> "" (MkDocs' directory URLs)."""
    relative = page.relative_to(DOCS).with_suffix("")
    if relative.name == "index":
        return "" if relative.parent == Path(".") else f"{relative.parent.as_posix()}/"
    return f"{relative.as_posix()}/"


def note(page: Path, markdown: str) -> str:
    """The line GitHub shows under the page's title: the published page, the included files."""
    up = "../" * len(page.relative_to(REPO_ROOT).parents[:-1])
    # A snippet may name a section or lines after a colon: README.md:start-posix.
    included = list(dict.fromkeys(path.split(":")[0] for path in INCLUDE.findall(markdown)))
    # An exercise's solution stays folded away on the page: the note does not point at it.
    included = [path for path in included if not path.startswith(SOLUTIONS)]
    where = (
        f"the course site, published at <code>{PUBLISHED}{published_path(page)}</code> "
        "(or on your machine: <code>python -m mkdocs serve</code>)"
    )
    if not included:
        return f"{NOTE_START}<em>Reading this on GitHub? This page is part of {where}.</em></p>"
    links = ", ".join(
        f'<a href="{up}{html.escape(path)}"><code>{html.escape(path)}</code></a>'
        for path in included
    )
    return (
        f"{NOTE_START}<em>Reading this on GitHub? It shows <code>--8&lt;--</code> lines where "
        f"this page includes code from the repository: open {links}, or read the page with "
        f"its code on {where}.</em></p>"
    )


def with_note(page: Path, markdown: str) -> str:
    """The page with its note, as the line after its title (replacing an older note)."""
    lines = markdown.split("\n")
    title = next(i for i, line in enumerate(lines) if line.startswith("# "))
    if lines[title + 2 : title + 3] and lines[title + 2].startswith(NOTE_START):
        del lines[title + 1 : title + 3]
    lines[title + 1 : title + 1] = ["", note(page, markdown)]
    return "\n".join(lines)


def with_tables(page: Path, markdown: str, hook: ModuleType) -> str:
    """The committed lesson table(s) of the page, as the hook's ``lesson_table`` makes them."""
    page_dir = "" if page.parent.name == "lessons" else "lessons/"
    table = f"{TABLE_START}\n{hook.lesson_table(page_dir)}\n{TABLE_END}"
    return TABLE.sub(lambda _: table, markdown)


def refreshed(page: Path, markdown: str, hook: ModuleType) -> str:
    return with_tables(page, with_note(page, markdown), hook)


def out_of_date() -> list[Path]:
    hook = load_hook()
    return [p for p in pages() if refreshed(p, p.read_text(), hook) != p.read_text()]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.site_pages", description=__doc__)
    parser.add_argument("--check", action="store_true", help="only list what is out of date")
    args = parser.parse_args(argv)
    stale = out_of_date()
    hook = load_hook()
    for page in stale:
        print(page.relative_to(REPO_ROOT))
        if not args.check:
            page.write_text(refreshed(page, page.read_text(), hook))
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    raise SystemExit(main())

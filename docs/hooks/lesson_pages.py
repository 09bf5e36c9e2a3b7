"""MkDocs hook: the lesson pages follow ``lessons.LESSONS``, and their code shows what is new.

- ``on_config`` appends one page per lesson, ``lessons/<name>.md``, to the "Lessons"
  section of the nav, in the teaching order of ``LESSONS`` (read from
  ``lessons/__init__.py``, never copied).
- ``on_page_markdown`` finds every code block that includes a whole lesson file,

      ```python title="lessons/<name>.py"
      --8 < --"lessons/<name>.py"
      ```

  and highlights (``hl_lines``) the lines of that file that differ from the previous
  lesson's file, computed with ``difflib`` at build time; no line number is kept by hand.
- ``<!-- lesson-table -->`` on a page becomes a table of the lessons in that order, each
  with its page's title and the first line of its docstring.
"""

from __future__ import annotations

import ast
import difflib
import re
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
LESSONS_DIR = REPO_ROOT / "lessons"

WHOLE_LESSON = re.compile(
    r'^(?P<fence>```python)(?P<attrs>[^\n]*)\n--8<-- "lessons/(?P<name>\w+)\.py"\n```$',
    re.MULTILINE,
)


def lesson_order() -> list[str]:
    """``LESSONS`` from lessons/__init__.py, read without importing the package."""
    tree = ast.parse((LESSONS_DIR / "__init__.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.AnnAssign) and node.value is not None:
            targets: list[ast.expr] = [node.target]
        elif isinstance(node, ast.Assign):
            targets = node.targets
        else:
            continue
        named = any(isinstance(target, ast.Name) and target.id == "LESSONS" for target in targets)
        if named and node.value is not None:
            return list(ast.literal_eval(node.value))
    raise LookupError("lessons/__init__.py defines no LESSONS")


def previous_lesson(name: str) -> str | None:
    order = lesson_order()
    index = order.index(name)
    return order[index - 1] if index else None


def changed_lines(name: str) -> list[int]:
    """1-based numbers of the lines of lesson ``name`` that its predecessor lacks."""
    previous = previous_lesson(name)
    new = (LESSONS_DIR / f"{name}.py").read_text(encoding="utf-8").splitlines()
    if previous is None:
        return []
    old = (LESSONS_DIR / f"{previous}.py").read_text(encoding="utf-8").splitlines()
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    return [
        line + 1
        for tag, _, _, start, end in matcher.get_opcodes()
        if tag in ("replace", "insert")
        for line in range(start, end)
    ]


def as_ranges(lines: list[int]) -> str:
    """[3, 4, 5, 9] -> "3-5 9", the spelling ``hl_lines`` takes."""
    ranges: list[str] = []
    for line in lines:
        if ranges and ranges[-1].split("-")[-1] == str(line - 1):
            ranges[-1] = f"{ranges[-1].split('-')[0]}-{line}"
        else:
            ranges.append(str(line))
    return " ".join(ranges)


def highlight(markdown: str) -> str:
    """Add ``hl_lines`` (and a caption saying what is highlighted) to whole-lesson blocks."""

    def replace(match: re.Match[str]) -> str:
        name = match["name"]
        lines = changed_lines(name)
        previous = previous_lesson(name)
        attrs = match["attrs"]
        if lines:
            attrs += f' hl_lines="{as_ranges(lines)}"'
        block = f'{match["fence"]}{attrs}\n--8<-- "lessons/{name}.py"\n```'
        if previous is None:
            return block
        total = len((LESSONS_DIR / f"{name}.py").read_text(encoding="utf-8").splitlines())
        return (
            f"{block}\n\n*Highlighted: the {len(lines)} of {total} lines that differ from "
            f"the previous lesson, [`{previous}`]({previous}.md).*"
        )

    return WHOLE_LESSON.sub(replace, markdown)


def first_heading(path: Path) -> str:
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    raise LookupError(f"{path} has no title")


def lesson_table(page_dir: str) -> str:
    """The lessons in teaching order: page title (linked) and docstring summary."""
    rows = ["| lesson | module | what it adds |", "| --- | --- | --- |"]
    for name in lesson_order():
        tree = ast.parse((LESSONS_DIR / f"{name}.py").read_text(encoding="utf-8"))
        summary = (ast.get_docstring(tree) or "").split("\n", 1)[0]
        title = first_heading(REPO_ROOT / "docs" / "lessons" / f"{name}.md")
        link = f"{page_dir}{name}.md"
        rows.append(f"| [{title}]({link}) | `{name}` | {summary} |")
    return "\n".join(rows)


def on_config(config: Any) -> Any:
    for section in config["nav"]:
        if isinstance(section, dict) and "Lessons" in section:
            section["Lessons"] = [section["Lessons"][0]] + [
                f"lessons/{name}.md" for name in lesson_order()
            ]
    return config


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    if "<!-- lesson-table -->" in markdown:
        page_dir = "" if page.file.src_uri.startswith("lessons/") else "lessons/"
        markdown = markdown.replace("<!-- lesson-table -->", lesson_table(page_dir))
    return highlight(markdown)

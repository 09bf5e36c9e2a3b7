"""MkDocs hook: the lesson pages follow ``lessons.LESSONS``, and their code shows what is new.

- ``on_config`` appends one page per lesson, ``lessons/<name>.md``, to the "Lessons"
  section of the nav, in the teaching order of ``LESSONS`` (read from
  ``lessons/__init__.py``, never copied).
- ``on_page_markdown`` finds every code block that includes a lesson file, whole or one
  of its definitions (a function, a class, an assignment, a ``for`` loop by its variable,
  ``Class.method``, or ``first..last`` for a run of them; the comment below the docstring
  shows how a page writes them).

  An excerpt becomes snippets' own line range (``"lessons/<name>.py:40:62"``) with its
  line numbers. Both get ``hl_lines``: the lines of that file that differ from the
  previous lesson's file, computed with ``difflib`` at build time, leaving out reworded
  docstrings (of the module, or of a function the previous lesson had: rewording is not
  new code); no line number is kept by hand.
- ``<!-- lesson-table -->`` on a page becomes a table of the lessons in that order, each
  with its page's title and the first line of its docstring.
"""

# A page includes a whole lesson, or one of its definitions, like this (kept in a comment:
# ruff's docstring-code-format would rewrite a ```python block of a docstring as Python,
# turning the include line into `--8 < --"lessons/<name>.py"`):
#
#     ```python title="lessons/<name>.py"
#     --8<-- "lessons/<name>.py"
#     ```
#
#     ```python title="lessons/<name>.py"
#     --8<-- "lessons/<name>.py:predict_single"
#     ```

from __future__ import annotations

import ast
import difflib
import re
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
LESSONS_DIR = REPO_ROOT / "lessons"

INCLUDE = re.compile(
    r"^(?P<indent>[ ]*)(?P<fence>```python)(?P<attrs>[^\n]*)\n"
    r'(?P=indent)--8<-- "lessons/(?P<name>\w+)\.py(?::(?P<part>[\w.]+))?"\n'
    r"(?P=indent)```$",
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


def lesson_lines(name: str) -> list[str]:
    return (LESSONS_DIR / f"{name}.py").read_text(encoding="utf-8").splitlines()


def docstrings(name: str) -> dict[str, range]:
    """The docstrings of lesson ``name``, by the qualified name of what they document
    (``""`` for the module's), as ranges of 1-based line numbers."""
    found: dict[str, range] = {}

    def visit(node: ast.AST, qualified: str) -> None:
        body = getattr(node, "body", [])
        first = body[0] if body else None
        if (
            isinstance(first, ast.Expr)
            and isinstance(first.value, ast.Constant)
            and isinstance(first.value.value, str)
        ):
            found[qualified] = range(first.lineno, (first.end_lineno or first.lineno) + 1)
        for child in body:
            if isinstance(child, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                visit(child, f"{qualified}.{child.name}".lstrip("."))

    visit(ast.parse((LESSONS_DIR / f"{name}.py").read_text(encoding="utf-8")), "")
    return found


def reworded_docstring_lines(name: str) -> set[int]:
    """Lines of lesson ``name``'s docstrings that document what the previous lesson had too:
    the module's, and those of functions and classes it already defined."""
    previous = previous_lesson(name)
    before = docstrings(previous) if previous else {}
    return {
        line
        for qualified, lines in docstrings(name).items()
        if qualified in before
        for line in lines
    }


def changed_lines(name: str) -> list[int]:
    """1-based numbers of the lines of lesson ``name`` that its predecessor lacks.

    Reworded docstrings are left out: rewording is not new code (a new function's
    docstring is new, and stays).
    """
    previous = previous_lesson(name)
    if previous is None:
        return []
    matcher = difflib.SequenceMatcher(None, lesson_lines(previous), lesson_lines(name), False)
    reworded = reworded_docstring_lines(name)
    return [
        line + 1
        for tag, _, _, start, end in matcher.get_opcodes()
        if tag in ("replace", "insert")
        for line in range(start, end)
        if line + 1 not in reworded
    ]


def definition_lines(name: str, part: str) -> tuple[int, int]:
    """First and last line of a definition of lesson ``name``, its decorators included.

    ``part`` names a top-level function, class, assigned name or ``for`` loop variable,
    ``Class.method``, or
    ``first..last`` for everything from one definition to another.
    """
    if ".." in part:
        first, last = part.split("..")
        return definition_lines(name, first)[0], definition_lines(name, last)[1]
    tree = ast.parse((LESSONS_DIR / f"{name}.py").read_text(encoding="utf-8"))
    body: list[ast.stmt] = tree.body
    *outer, wanted = part.split(".")
    for class_name in outer:
        [body] = [
            node.body for node in body if isinstance(node, ast.ClassDef) and node.name == class_name
        ]
    for node in body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names = [node.name]
            start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
        elif isinstance(node, ast.Assign | ast.AnnAssign | ast.For):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = [t.id for t in targets if isinstance(t, ast.Name)]
            start = node.lineno
        else:
            continue
        if wanted in names:
            return start, node.end_lineno or node.lineno
    raise LookupError(f"lessons/{name}.py defines no {part}")


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
    """Expand lesson includes: line ranges for excerpts, ``hl_lines`` for what is new.

    A whole-lesson block also gets a caption saying what is highlighted.
    """

    def replace(match: re.Match[str]) -> str:
        name, part, indent = match["name"], match["part"], match["indent"]
        attrs = match["attrs"]
        changed = changed_lines(name)
        if part:
            first, last = definition_lines(name, part)
            source = f"lessons/{name}.py:{first}:{last}"
            attrs += f' linenums="{first}"'
        else:
            first, last = 1, len(lesson_lines(name))
            source = f"lessons/{name}.py"
        shown = [line - first + 1 for line in changed if first <= line <= last]
        if shown:
            attrs += f' hl_lines="{as_ranges(shown)}"'
        block = f'{indent}{match["fence"]}{attrs}\n{indent}--8<-- "{source}"\n{indent}```'
        previous = previous_lesson(name)
        if part or previous is None:
            return block
        return (
            f"{block}\n\n{indent}*Highlighted: the {len(changed)} of {last} lines that are new "
            f"or changed since the previous lesson, [`{previous}`]({previous}.md), "
            "reworded docstrings aside.*"
        )

    return INCLUDE.sub(replace, markdown)


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

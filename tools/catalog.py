"""What ``python -m lessons`` knows about the lessons, read from the lessons themselves.

The command-line tool's catalogue (the tool itself is tools/lessons_cli.py),
kept out of lessons/ so that folder holds only the lessons. Every fact it
shows comes from the lesson modules, so it cannot drift from them:

- the order is ``lessons.LESSONS``;
- the short id comes from the module name (``fastapi_04_02_...`` is ``04_02``,
  ``prometheus_03_...`` is ``P03``, as the lessons' docstrings call them);
- the summary is the first line of the module docstring;
- the endpoints come from the app's OpenAPI schema, plus the path operations
  hidden from it with ``include_in_schema=False`` (``GET /metrics``);
- the metric names come from the module-level ``registry``.

Only ``resolve`` works without importing a lesson; everything else imports
it (and so MLflow, about two seconds once per process), but never runs its
lifespan, so no model is loaded and no log file is opened.
"""

from __future__ import annotations

import difflib
import functools
import importlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from fastapi import FastAPI
from fastapi.routing import APIRoute

import lessons
from lessons import LESSONS

LESSONS_DIR = Path(lessons.__file__).resolve().parent
_NAME = re.compile(r"(?P<family>fastapi|prometheus)_(?P<number>\d\d(?:_\d\d)?)_")
# How prometheus_client names a family's samples on /metrics (Counter "x" -> "x_total").
_SAMPLE_SUFFIX = {"counter": "_total", "info": "_info"}


class LessonNotFound(LookupError):
    """An unknown or ambiguous lesson name; the message is one line for the user."""


def lesson_id(name: str) -> str:
    """The short id: ``fastapi_04_02_single_app`` -> ``04_02``, ``prometheus_03_...`` -> ``P03``."""
    match = _NAME.match(name)
    if match is None:
        raise ValueError(f"{name} does not look like fastapi_NN_... or prometheus_NN_...")
    prefix = "P" if match["family"] == "prometheus" else ""
    return prefix + match["number"]


def _stem(name: str) -> str:
    """``fastapi_04_02_single_app`` -> ``fastapi_04_02``: the family and number."""
    match = _NAME.match(name)
    assert match is not None
    return match.group(0).rstrip("_")


def choices() -> str:
    """Every lesson as ``id=name``, for error messages."""
    return ", ".join(f"{lesson_id(name)}={name}" for name in LESSONS)


def resolve(query: str) -> str:
    """The lesson module name ``query`` stands for.

    Accepted, case-insensitively: the module name (also as ``lessons.<name>``
    or ``lessons/<name>.py``), the id (``04_02``, ``P03``), the family and
    number (``prometheus_03``), or a prefix of any of those that only one
    lesson has (``p03``, ``fastapi_05``). Exact matches win over prefixes, so
    ``04`` is lesson 04 even though ``04_02`` starts with it too.
    """
    text = query.strip().lower().replace("-", "_").replace("\\", "/")
    text = text.removeprefix("lessons/").removeprefix("lessons.").removesuffix(".py")
    keys = {name: {name, lesson_id(name).lower(), _stem(name)} for name in LESSONS}
    exact = [name for name, names in keys.items() if text in names]
    if len(exact) == 1:
        return exact[0]
    prefixed = [name for name, names in keys.items() if any(k.startswith(text) for k in names)]
    if text and len(prefixed) == 1:
        return prefixed[0]
    if text and prefixed:
        matches = ", ".join(f"{lesson_id(name)}={name}" for name in prefixed)
        raise LessonNotFound(f"ambiguous lesson {query!r}: could be {matches}")
    raise LessonNotFound(f"unknown lesson {query!r}; choose one of {choices()}")


def path_of(name: str) -> Path:
    return LESSONS_DIR / f"{name}.py"


def module(name: str) -> ModuleType:
    """Import the lesson (without starting it: no lifespan, no model)."""
    return importlib.import_module(f"lessons.{name}")


def summary(name: str) -> str:
    """The first line of the lesson's module docstring."""
    doc = module(name).__doc__ or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def endpoints(app: FastAPI) -> list[str]:
    """``METHOD /path`` for every operation in the OpenAPI schema, in its order,
    then those hidden from it (``include_in_schema=False``, such as /metrics).

    The schema is what /docs shows; the hidden ones are read from the app's
    own routes (``APIRoute`` only: FastAPI's /docs and /openapi.json pages are
    plain Starlette routes and are left out).
    """
    schema = app.openapi()
    listed = [
        f"{method.upper()} {path}"
        for path, operations in schema.get("paths", {}).items()
        for method in operations
    ]
    hidden = [
        f"{method} {route.path}"
        for route in app.routes
        if isinstance(route, APIRoute) and not route.include_in_schema
        for method in sorted(route.methods or ())
    ]
    return listed + [endpoint for endpoint in hidden if endpoint not in listed]


def metrics(mod: ModuleType) -> dict[str, str]:
    """Metric name as /metrics shows it -> type, from the module's ``registry``.

    ``registry.collect()`` yields one family per metric, named without the
    suffix prometheus_client adds to a counter's samples, so that suffix is
    added back: the names here are the ones to query in Prometheus
    (histograms also show ``_bucket``, ``_sum`` and ``_count`` samples).
    Lessons before P00 have no registry, hence no metrics.
    """
    registry = getattr(mod, "registry", None)
    if registry is None:
        return {}
    return {
        family.name + _SAMPLE_SUFFIX.get(family.type, ""): family.type
        for family in registry.collect()
    }


@dataclass(frozen=True)
class Lesson:
    """One row of ``python -m lessons list``."""

    id: str
    name: str
    summary: str
    endpoints: list[str]
    metrics: dict[str, str]

    @classmethod
    def load(cls, name: str) -> Lesson:
        mod = module(name)
        return cls(lesson_id(name), name, summary(name), endpoints(mod.app), metrics(mod))


def catalogue() -> list[Lesson]:
    """Every lesson, in teaching order."""
    return [Lesson.load(name) for name in LESSONS]


@functools.cache
def _loaded() -> tuple[Lesson, ...]:
    return tuple(catalogue())


def serving(endpoint: str) -> list[str]:
    """The lessons whose app serves ``endpoint`` (``"POST /predict_batch"``), in teaching order."""
    return [lesson.name for lesson in _loaded() if endpoint in lesson.endpoints]


def exposing(metric: str) -> list[str]:
    """The lessons whose registry holds ``metric`` (as /metrics names it), in teaching order."""
    return [lesson.name for lesson in _loaded() if metric in lesson.metrics]


def declaring(attribute: str) -> list[str]:
    """The lessons whose module declares ``attribute`` (``default_log_path``), in order."""
    return [name for name in LESSONS if hasattr(module(name), attribute)]


def validating() -> list[str]:
    """The lessons whose ``Passenger`` constrains its fields (ranges, allowed values)."""
    return [
        name
        for name in declaring("Passenger")
        if any(field.metadata for field in module(name).Passenger.model_fields.values())
    ]


def _wrap(items: list[str], width: int | None, separator: str) -> list[str]:
    """``items`` joined by ``separator``, packed greedily into lines of ``width`` (None: one)."""
    lines = [""]
    for item in items:
        joined = lines[-1] + separator + item if lines[-1] else item
        if width is None or len(joined) <= width or not lines[-1]:
            lines[-1] = joined
        else:
            lines.append(item)
    return lines


def table(lessons: Iterable[Lesson], width: int | None = None) -> str:
    """The ``list`` table: id, module and summary, then the endpoints below the summary.

    ``width`` (a terminal's) wraps the last column to fit; None never wraps,
    so piped output keeps one summary line and one endpoints line per lesson.
    """
    rows = list(lessons)
    id_width = max(len("ID"), *(len(lesson.id) for lesson in rows))
    name_width = max(len("LESSON"), *(len(lesson.name) for lesson in rows))
    indent = id_width + 2 + name_width + 2
    last = None if width is None else max(width - indent, 30)
    lines = [f"{'ID':<{id_width}}  {'LESSON':<{name_width}}  SUMMARY / ENDPOINTS"]
    for lesson in rows:
        column = _wrap(lesson.summary.split(" "), last, " ")
        column += _wrap(lesson.endpoints, last, "  ")
        heads = [f"{lesson.id:<{id_width}}  {lesson.name:<{name_width}}  "]
        heads += [" " * indent] * (len(column) - 1)
        lines += [head + text for head, text in zip(heads, column, strict=True)]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- diff

_RESET = "\033[0m"
_STYLES = {"+++": "\033[1m", "---": "\033[1m", "@@": "\033[36m", "+": "\033[32m", "-": "\033[31m"}


def _changes(title: str, before: Iterable[str], after: Iterable[str]) -> list[str]:
    """``title: + added`` then ``- removed``, one per line, aligned; ``none`` if equal."""
    old, new = list(before), list(after)
    changes = [f"+ {item}" for item in new if item not in old]
    changes += [f"- {item}" for item in old if item not in new]
    head = f"{title + ':':<11}"
    return [
        (head if i == 0 else " " * len(head)) + text for i, text in enumerate(changes or ["none"])
    ]


def summary_lines(a: Lesson, b: Lesson) -> list[str]:
    """What changed from lesson ``a`` to lesson ``b``: endpoints and metric names."""
    return [
        f"from {a.id:<5} {a.name}: {a.summary}",
        f"to   {b.id:<5} {b.name}: {b.summary}",
        *_changes("endpoints", a.endpoints, b.endpoints),
        *_changes(
            "metrics",
            [f"{name} ({kind})" for name, kind in a.metrics.items()],
            [f"{name} ({kind})" for name, kind in b.metrics.items()],
        ),
    ]


def unified_diff(a: str, b: str) -> Iterator[str]:
    """The unified diff of two lesson files, as ``git diff`` would show it (lines end in \\n)."""
    before = path_of(a).read_text(encoding="utf-8").splitlines(keepends=True)
    after = path_of(b).read_text(encoding="utf-8").splitlines(keepends=True)
    for line in difflib.unified_diff(before, after, f"lessons/{a}.py", f"lessons/{b}.py"):
        yield line if line.endswith("\n") else line + "\n\\ No newline at end of file\n"


def colour(line: str) -> str:
    """A diff line in the usual terminal colours (additions green, removals red)."""
    for start, style in _STYLES.items():
        if line.startswith(start):
            return style + line.rstrip("\n") + _RESET + "\n"
    return line

"""The lesson pages (docs/lessons/<lesson>.md) teach in one order: what you will learn, the
idea, the new code as excerpts of the lesson, run it, try it, a recap, an exercise, and the
whole file last, collapsed. The code is included from the files, and the highlighted lines
are the ones the lesson adds."""

from __future__ import annotations

import ast
import difflib
import html
import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest
from prometheus_client import CollectorRegistry, Summary, generate_latest
from pydantic import BaseModel, Field, ValidationError

from tests.site.commands import commands_on, curl_request
from tests.site.pages import DOCS
from tests.support.lessons import LESSONS
from tools.servers import REPO_ROOT

HOOK = DOCS / "hooks" / "lesson_pages.py"
SECTIONS = ["The idea", "The new code", "Run it", "Try it", "Recap", "Exercise"]


def page_of(name: str) -> str:
    return (DOCS / "lessons" / f"{name}.md").read_text()


def load_hook() -> ModuleType:
    """docs/hooks/lesson_pages.py, the mkdocs hook (not a package: loaded by its path)."""
    spec = importlib.util.spec_from_file_location("lesson_pages_hook", HOOK)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ------------------------------------------------------------------ the order of a page


@pytest.mark.parametrize("name", LESSONS)
def test_the_page_teaches_in_order(name: str) -> None:
    page = page_of(name)
    learn = re.search(
        r'^!!! abstract "What you will learn \(about (\d+) minutes\)"\n\n', page, re.M
    )
    assert learn, "objectives and time first"
    objectives = re.findall(r"^    - \S", page[learn.end() :].split("\n## ", 1)[0], re.M)
    assert len(objectives) >= 3
    headings = re.findall(r"^## (.+)$", page, re.MULTILINE)
    assert headings == SECTIONS
    assert page.index("!!! abstract") < page.index("## The idea")
    whole = (
        '??? example "The whole file"\n\n'
        f'    ```python title="lessons/{name}.py" linenums="1"\n'
        f'    --8<-- "lessons/{name}.py"\n'
        "    ```\n"
    )
    assert page.count(whole) == 1
    assert page.endswith(whole), "the whole file comes last"
    assert f"```bash\nuvicorn lessons.{name}:app --reload\n```" in section(page, "Run it")


def section(page: str, heading: str) -> str:
    return page.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]


EXCERPT = re.compile(
    r'^```python title="lessons/(\w+)\.py"\n--8<-- "lessons/\1\.py:([\w.]+)"\n```$', re.M
)


@pytest.mark.parametrize("name", LESSONS)
def test_the_new_code_comes_first_as_excerpts_of_the_lesson(name: str) -> None:
    new_code = section(page_of(name), "The new code")
    excerpts = EXCERPT.findall(new_code)
    assert len(excerpts) >= 2
    assert {lesson for lesson, _ in excerpts} == {name}
    hook = load_hook()
    for _, part in excerpts:
        first, last = hook.definition_lines(name, part)
        assert first <= last
    # Nothing but excerpts: no whole file, and no code pasted into a python block.
    blocks = re.findall(r"^```python[^\n]*\n(.*?)^```$", new_code, re.M | re.S)
    assert all(block.startswith('--8<-- "lessons/') for block in blocks)


METRIC_TYPES = {"Counter", "Gauge", "Histogram", "Summary"}


def is_taught(node: ast.stmt) -> bool:
    """A function, a class or a metric: what a lesson page must show when it is new."""
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return True
    value = node.value if isinstance(node, ast.Assign) else None
    return isinstance(value, ast.Call) and getattr(value.func, "id", None) in METRIC_TYPES


@pytest.mark.parametrize("name", LESSONS[1:])
def test_the_excerpts_show_every_new_function_class_and_metric(name: str) -> None:
    hook = load_hook()
    changed = set(hook.changed_lines(name))
    shown: set[int] = set()
    for _, part in EXCERPT.findall(section(page_of(name), "The new code")):
        first, last = hook.definition_lines(name, part)
        shown.update(range(first, last + 1))
    tree = ast.parse((REPO_ROOT / "lessons" / f"{name}.py").read_text())
    missing = [
        ast.unparse(node).split("\n", 1)[0]
        for node in tree.body
        if is_taught(node) and set(range(node.lineno, (node.end_lineno or 0) + 1)) & changed - shown
    ]
    assert missing == []


# ------------------------------------------------------------------ the built pages


def code_tables(page_html: str) -> list[tuple[list[int], list[str], list[int]]]:
    """Each line-numbered code block: its line numbers, its lines, the highlighted ones."""
    tables = []
    for code in re.findall(r'<td class="code">.*?<code>(.*?)</code>', page_html, re.DOTALL):
        pieces = re.split(r'<span id="__span-\d+-(\d+)">', code)[1:]
        numbers, bodies = [int(n) for n in pieces[0::2]], pieces[1::2]
        text = [html.unescape(re.sub(r"<[^>]+>", "", body)).removesuffix("\n") for body in bodies]
        marked = [n for n, body in zip(numbers, bodies, strict=True) if 'class="hll"' in body]
        tables.append((numbers, text, marked))
    return tables


Documented = ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef


def documented(source: str) -> dict[str, set[int]]:
    """Docstring lines by what they document: "" for the module, "Class.method" ..."""
    found: dict[str, set[int]] = {}
    stack: list[tuple[Documented, str]] = [(ast.parse(source), "")]
    while stack:
        node, name = stack.pop()
        if ast.get_docstring(node, clean=False) is not None:
            first = node.body[0]
            found[name] = set(range(first.lineno, (first.end_lineno or 0) + 1))
        for child in node.body:
            if isinstance(child, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                stack.append((child, f"{name}.{child.name}" if name else child.name))
    return found


def new_code_lines(name: str) -> list[int]:
    """What a page must highlight: the lines the previous lesson lacks, except reworded
    docstrings (the module's, and those of what the previous lesson already defined)."""
    index = LESSONS.index(name)
    if index == 0:
        return []
    old = (REPO_ROOT / "lessons" / f"{LESSONS[index - 1]}.py").read_text()
    source = (REPO_ROOT / "lessons" / f"{name}.py").read_text()
    before = documented(old)
    reworded = {
        line for what, lines in documented(source).items() if what in before for line in lines
    }
    matcher = difflib.SequenceMatcher(None, old.splitlines(), source.splitlines(), False)
    return [
        number + 1
        for tag, _, _, start, end in matcher.get_opcodes()
        if tag != "equal"
        for number in range(start, end)
        if number + 1 not in reworded
    ]


@pytest.mark.parametrize("name", LESSONS)
def test_every_code_block_is_the_lesson_with_its_new_lines_highlighted(
    site: Path, name: str
) -> None:
    """The whole file once, every excerpt a run of its lines with their own numbers, and
    the highlighted lines exactly the new code lines (no docstring) each block shows."""
    lines = (REPO_ROOT / "lessons" / f"{name}.py").read_text().splitlines()
    new = new_code_lines(name)
    tables = code_tables((site / "lessons" / name / "index.html").read_text())
    assert len(tables) == 1 + len(EXCERPT.findall(page_of(name)))
    for numbers, text, marked in tables:
        assert numbers == list(range(numbers[0], numbers[0] + len(text)))
        assert text == lines[numbers[0] - 1 : numbers[-1]]
        assert marked == [n for n in new if numbers[0] <= n <= numbers[-1]]
    assert [len(text) for numbers, text, _ in tables if numbers[0] == 1].count(len(lines)) == 1
    assert (name == LESSONS[0]) == (new == [])


def test_docstring_rewording_is_not_highlighted() -> None:
    """P00 rewords docstrings it shares with lesson 05: none of those lines is highlighted."""
    name = "prometheus_00_simple_monitoring_app"
    hook = load_hook()
    reworded = sorted(hook.reworded_docstring_lines(name) & set(changed_with_docstrings(name)))
    assert reworded, "the example needs a reworded docstring"
    assert not set(reworded) & set(hook.changed_lines(name))
    # A new function's docstring is new code: P00's metrics endpoint shows it highlighted.
    first, last = hook.definition_lines(name, "metrics")
    assert set(range(first, last + 1)) <= set(hook.changed_lines(name))


def changed_with_docstrings(name: str) -> list[int]:
    index = LESSONS.index(name)
    old = (REPO_ROOT / "lessons" / f"{LESSONS[index - 1]}.py").read_text().splitlines()
    new = (REPO_ROOT / "lessons" / f"{name}.py").read_text().splitlines()
    matcher = difflib.SequenceMatcher(None, old, new, False)
    return [
        n + 1 for tag, _, _, a, b in matcher.get_opcodes() if tag != "equal" for n in range(a, b)
    ]


def test_hook_ranges_and_definitions() -> None:
    hook = load_hook()
    assert hook.as_ranges([3, 4, 5, 9, 11, 12]) == "3-5 9 11-12"
    assert hook.as_ranges([]) == ""
    assert hook.lesson_order() == LESSONS
    source = (REPO_ROOT / "lessons" / "fastapi_02_roles_app.py").read_text().splitlines()
    first, last = hook.definition_lines("fastapi_02_roles_app", "read_public")
    assert source[first - 1] == '@app.get("/public")'
    assert source[last - 1].lstrip().startswith("return ")
    with pytest.raises(LookupError):
        hook.definition_lines("fastapi_02_roles_app", "no_such_thing")


def test_the_hooks_include_example_is_not_mangled_by_the_formatter() -> None:
    source = HOOK.read_text()
    assert '--8<-- "lessons/<name>.py"' in source
    assert "--8 < --" not in source.replace('`--8 < --"lessons/<name>.py"`', "")


# ------------------------------------------------------------------ what the pages say

# What a page may name in `backticks` that its lesson's code does not: a test tool, an
# environment variable MLflow reads, a shell command, HTTP methods, the Python client, the
# units a metric's name ends in, and the sample names /metrics shows (prometheus_client
# adds the suffixes).
NOT_IN_THE_CODE = {
    "TestClient",
    "MLFLOW_TRACKING_URI",
    "grep",
    "BREW",
    "GET",
    "POST",
    "requests",
    "_total",
    "_seconds",
    "_bytes",
}
SAMPLE_SUFFIXES = ("_total", "_bucket", "_sum", "_count", "_created")


def names_not_in_the_code(page: str, code: str) -> list[str]:
    """Python names a page quotes (`name` or `name()`) that the lesson's code lacks."""
    quoted = set(re.findall(r"`([A-Za-z_]\w*)(?:\(\))?`", page))
    return sorted(
        name
        for name in quoted - NOT_IN_THE_CODE
        if not name.endswith(SAMPLE_SUFFIXES) and not re.search(rf"\b{name}\b", code)
    )


@pytest.mark.parametrize("name", LESSONS)
def test_every_name_a_lesson_page_quotes_is_in_the_lesson_or_its_solution(name: str) -> None:
    """A page that names a function, class or setting the lesson no longer has is stale."""
    code = (REPO_ROOT / "lessons" / f"{name}.py").read_text()
    solution = (DOCS / "exercises" / name / "solution.patch").read_text()
    assert names_not_in_the_code(page_of(name), code + solution) == []


def test_a_page_naming_code_the_lesson_lacks_is_found() -> None:
    """The check above can fail: P01's middleware was once a class, ``GoldenSignals``."""
    code = (REPO_ROOT / "lessons" / "prometheus_01_four_signal_monitor_app.py").read_text()
    stale = "The middleware, the class `GoldenSignals`, counts `http_requests_total`."
    assert names_not_in_the_code(stale, code) == ["GoldenSignals"]


@pytest.mark.parametrize("name", LESSONS)
def test_every_request_on_a_lesson_page_shows_its_answer(name: str) -> None:
    """P01 once showed a 422 request without its answer."""
    commands = commands_on(page_of(name))
    assert commands
    assert [command.curl for command in commands if command.answer is None] == []


def test_p04_sends_the_same_seed_twice_and_shows_what_the_counters_then_read() -> None:
    """The page says the same seed gives the same passengers: it sends it twice, and the
    counters it shows afterwards count both requests (4 passengers, 2 simulations)."""
    commands = commands_on(page_of("prometheus_04_multi_execute_app"))
    seeded = [c for c in commands if "seed=" in c.curl]
    assert len(seeded) == 2 and seeded[0] == seeded[1]
    [metrics] = [c for c in commands if curl_request(c.curl).grep]
    assert metrics.answer is not None
    assert "titanic_predictions_total 4.0\n" in metrics.answer
    assert 'prediction_type_total{type="simulation"} 2.0\n' in metrics.answer


def test_the_concepts_are_taught_where_they_belong() -> None:
    """Each concept the course relies on, on the page that first needs it."""
    concepts = {
        "fastapi_01_test_app": ["**GET or POST?**", "Troubleshooting"],
        "fastapi_04_02_single_app": ["**Required fields.**", "(Ellipsis)"],
        "prometheus_00_simple_monitoring_app": ["**A metric's parts.**", "| Summary |"],
        "prometheus_01_four_signal_monitor_app": [
            "- **Latency**:",
            "- **Traffic**:",
            "- **Errors**:",
            "- **Saturation**:",
            "Why not a Summary for latency?",
        ],
        "prometheus_02_model_monitor_app": ["**Why here and not in the middleware?**"],
    }
    for name, phrases in concepts.items():
        for phrase in phrases:
            assert phrase in page_of(name), (name, phrase)
    older = '!!! note "If you have seen older versions of this course"'
    assert [name for name in LESSONS if older in page_of(name)] == LESSONS[-4:-2] + LESSONS[-1:]


def test_a_python_summary_keeps_only_a_sum_and_a_count() -> None:
    """P00's table and P01: prometheus_client's Summary exposes no quantiles."""
    registry = CollectorRegistry()
    Summary("answer_size_bytes", "Sizes.", registry=registry).observe(3)
    samples = [
        line.split(" ")[0]
        for line in generate_latest(registry).decode().splitlines()
        if not line.startswith("#")
    ]
    assert samples == [
        "answer_size_bytes_count",
        "answer_size_bytes_sum",
        "answer_size_bytes_created",
    ]


def test_no_lesson_has_the_old_duration_counter() -> None:
    """P01 and P04 say `http_request_duration_seconds_total` is gone."""
    for name in LESSONS:
        assert (
            "http_request_duration_seconds_total"
            not in (REPO_ROOT / "lessons" / f"{name}.py").read_text()
        )


def test_a_field_without_a_default_is_required_as_with_an_ellipsis() -> None:
    """04_02: `Field(gt=0)` and the older `Field(..., gt=0)` both make a required field."""

    class Old(BaseModel):
        Age: float = Field(..., gt=0)

    class New(BaseModel):
        Age: float = Field(gt=0)

    for model in (Old, New):
        assert model.model_fields["Age"].is_required()
        with pytest.raises(ValidationError, match="Field required"):
            model.model_validate({})


def test_troubleshooting_names_the_port_option_and_the_cdn() -> None:
    page = page_of(LESSONS[0])
    box = page.split("### Troubleshooting", 1)[1].split("\n## ", 1)[0]
    assert f"uvicorn lessons.{LESSONS[0]}:app --reload --port 8001" in box
    assert "CDN" in box
    from fastapi.testclient import TestClient

    from lessons.fastapi_01_test_app import app

    docs = TestClient(app).get("/docs").text
    assert re.search(r'<script src="https://cdn\.[^"]+swagger-ui', docs), "Swagger UI from a CDN"
    for name in LESSONS[1:]:
        assert "(fastapi_01_test_app.md#troubleshooting)" in section(page_of(name), "Run it")


def test_the_contributing_page_describes_the_lesson_pages_as_they_are() -> None:
    text = (DOCS / "contributing.md").read_text()
    order = ", ".join(f"*{heading}*" for heading in ["What you will learn", *SECTIONS])
    assert f"{order}, and the whole file" in text
    named = re.findall(r"`(tests/site/\w+\.py)`", text)
    assert len(named) >= 3
    for path in named:
        assert (REPO_ROOT / path).is_file(), path

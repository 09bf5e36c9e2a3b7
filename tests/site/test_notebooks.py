"""The notebooks run top to bottom from nothing, clean up after themselves, and say true things.

The live test executes every notebook in notebooks/ with nbclient exactly as
*Run All* would (kernel in notebooks/, nothing started beforehand), then checks
that no cell failed or wrote to stderr, that every lesson server the notebook
started is gone, and that the repository has no new files. The static tests
read the committed notebook: it opens on the lessons (its machinery and example
passengers come from tools/), it covers every lesson, the lesson code it shows
still exists, every metric name it mentions is one the final lesson exposes,
and its saved outputs contain no error, local path or host name (the check
tools.execute_notebooks makes before it saves a notebook)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat
import pytest
from fastapi.testclient import TestClient

import tools.notebook
from tests.support.git import git_status
from tests.support.lessons import FINAL_LESSON, LESSONS
from tests.support.metrics import Metrics
from tools.examples import PASSENGER
from tools.execute_notebooks import NOTEBOOK_DIR, execute, problems, refresh, text_outputs
from tools.servers import REPO_ROOT, free_port, is_serving

NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
CELL_TIMEOUT = 120  # seconds for any one cell
# What the notebook prints when it starts a lesson server.
STARTED = re.compile(r"Started `uvicorn lessons\.(\w+):app` at http://127\.0\.0\.1:(\d+)")
# Words that look like a Prometheus sample or metric name: what a typo would most likely hit.
METRIC_NAME = re.compile(
    r"\b[a-z][a-z0-9_]*_(?:total|bucket|sum|count|seconds|bytes|in_progress|distribution"
    r"|probability)\b"
)
# Words of that shape in the notebook that are not metric names.
NOT_METRICS = {"total_seconds"}  # pandas' Series.dt.total_seconds()


def notebook_text(notebook: nbformat.NotebookNode) -> str:
    """Everything the notebook says: its cells and their text outputs."""
    sources = [cell.source for cell in notebook.cells]
    return "\n".join(sources + [text for _, _, text in text_outputs(notebook)])


def notebook_changes() -> set[str]:
    """``git status`` lines for untracked files and for changes under notebooks/.

    (Edits to other tracked files are a developer's work in progress, not the notebook's.)
    """
    lines = git_status() or set()
    return {line for line in lines if line.startswith("??") or " notebooks/" in line}


def processes_serving(port: int) -> list[str]:
    """Command lines of running processes that were started with ``--port <port>``."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        words = [word.decode(errors="replace") for word in argv if word]
        if "--port" in words and words[words.index("--port") + 1 :][:1] == [str(port)]:
            found.append(" ".join(words))
    return found


@pytest.fixture(scope="module", params=NOTEBOOKS, ids=lambda path: path.name)
def committed(request: pytest.FixtureRequest) -> nbformat.NotebookNode:
    return nbformat.read(request.param, as_version=4)


def test_there_is_a_walkthrough() -> None:
    assert NOTEBOOK_DIR / "titanic_mlops_walkthrough.ipynb" in NOTEBOOKS


def test_notebook_covers_every_lesson_in_order(committed: nbformat.NotebookNode) -> None:
    text = "\n".join(cell.source for cell in committed.cells)
    positions = [text.find(lesson) for lesson in LESSONS]
    missing = [lesson for lesson, at in zip(LESSONS, positions, strict=True) if at < 0]
    assert not missing, f"never mentioned: {missing}"
    assert positions == sorted(positions), "the lessons are not introduced in teaching order"
    for lesson in LESSONS:
        assert f'serve("{lesson}")' in text, f"{lesson} is never run"


def test_notebook_covers_the_course(committed: nbformat.NotebookNode) -> None:
    text = notebook_text(committed)
    for topic in (
        "dependency_overrides",
        "TestClient",
        "Query(ge=",
        "text_string_to_metric_families",
        "read_json",
        "/api/v1/query",
        "histogram_quantile",
        "rate(",
        "Counter",
        "Gauge",
        "Histogram",
        "Summary",
        "Traffic",
        "Latency",
        "Errors",
        "Saturation",
        "-> 403",
        "-> 422",
        "/simulate_predictions",
        "uvicorn lessons.",
        "inspect.getsourcelines",
    ):
        assert topic in text, f"the notebook never mentions {topic!r}"


def test_metric_names_in_the_notebook_are_exposed_by_the_final_lesson(
    committed: nbformat.NotebookNode,
) -> None:
    lesson = __import__(f"lessons.{FINAL_LESSON}", fromlist=["app"])
    with TestClient(lesson.app) as client:
        client.post("/simulate_predictions", params={"num_executions": 3})
        scrape = Metrics.parse(client.get("/metrics").text)
    # Sample names, family names, and the samples a family has even before its first
    # observation (a labelled counter shows no http_errors_total line until an error).
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}
    exposed = scrape.names() | set(scrape.types)
    exposed |= {f + s for f, kind in scrape.types.items() for s in suffixes.get(kind, ())}
    mentioned = set(METRIC_NAME.findall(notebook_text(committed))) - NOT_METRICS
    assert "titanic_predictions_total" in mentioned  # the pattern finds what it should
    assert mentioned - exposed == set()


def test_committed_outputs_come_from_a_clean_run(committed: nbformat.NotebookNode) -> None:
    code_cells = [cell for cell in committed.cells if cell.cell_type == "code"]
    counts = [cell.execution_count for cell in code_cells]
    assert counts == list(range(1, len(code_cells) + 1)), "not saved from one Run All"
    assert all(cell.outputs for cell in code_cells), "a cell has no saved output"


def test_committed_outputs_show_no_error_local_path_or_host_name(
    committed: nbformat.NotebookNode,
) -> None:
    assert problems(committed) == []


def test_problems_are_found_in_a_broken_notebook() -> None:
    """The check above (and tools.execute_notebooks, before it saves) can fail."""
    cell = nbformat.v4.new_code_cell("print(1)")
    cell.outputs = [
        nbformat.v4.new_output("stream", name="stdout", text=f"saved {REPO_ROOT}/logs/x.jsonl\n"),
        nbformat.v4.new_output("stream", name="stderr", text="Warning: careful\n"),
        nbformat.v4.new_output("error", ename="KeyError", evalue="'Age'", traceback=[]),
    ]
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# x"), cell])
    found = problems(notebook)
    assert f"cell 1 (stream:stdout) shows {str(REPO_ROOT)!r}" in found
    assert "cell 1 (stream:stderr): Warning: careful\n" in found
    assert "cell 1 (error): KeyError: 'Age'" in found
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="saved logs/x.jsonl\n")]
    assert problems(notebook) == []


def test_notebook_opens_on_the_lessons(committed: nbformat.NotebookNode) -> None:
    """Its machinery is imported from tools/: a short set-up cell, then the first lesson.

    Its example passengers are the tests' own (tools/examples.py): no code cell
    spells out a whole passenger.
    """
    code = [cell.source for cell in committed.cells if cell.cell_type == "code"]
    assert len(code[0].splitlines()) <= 30
    assert code[1].startswith('introduce("fastapi_01_test_app")')
    assert "from tools.examples import" in code[0]
    fields = set(PASSENGER)
    whole = [
        index
        for index, source in enumerate(code)
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Dict)
        and fields <= {key.value for key in node.keys if isinstance(key, ast.Constant)}
    ]
    assert whole == [], f"code cells {whole} define a passenger of their own"


def test_the_code_the_notebook_shows_is_in_the_lessons(
    committed: nbformat.NotebookNode, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every function, class and stretch of lines the notebook shows still exists.

    The cells that introduce a lesson only read it (no server, no HTTP), so they
    run here, in this process, after the set-up cell: a lesson change that
    renames something the notebook shows fails here in seconds, not only in the
    live run or in ``python -m tools.execute_notebooks``.
    """
    shown: list[object] = []
    monkeypatch.setattr(tools.notebook, "display", shown.append)
    monkeypatch.chdir(NOTEBOOK_DIR)
    setup, *code = [cell.source for cell in committed.cells if cell.cell_type == "code"]
    reading = [source for source in code if "introduce(" in source]
    assert len(reading) == len(LESSONS)
    namespace: dict[str, object] = {}
    exec(setup, namespace)
    try:
        for source in reading:
            exec(source, namespace)
    finally:
        namespace["runner"].close()  # type: ignore[attr-defined]
    assert len(shown) > 2 * len(LESSONS)  # each lesson's docstring and at least one piece


@pytest.mark.live
def test_execute_notebooks_saves_only_a_clean_run(tmp_path: Path) -> None:
    """``python -m tools.execute_notebooks`` leaves a notebook whose run had problems alone."""
    cells = {
        "clean": 'print("hello")',
        "stderr": 'import sys\nprint("careful", file=sys.stderr)',
        "failing": "1 / 0",
    }
    paths = {}
    for name, source in cells.items():
        paths[name] = tmp_path / f"{name}.ipynb"
        notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)])
        nbformat.write(notebook, paths[name])
    before = {name: path.read_text() for name, path in paths.items()}
    assert [refresh(path) for path in paths.values()] == [True, False, False]
    [cell] = nbformat.read(paths["clean"], as_version=4).cells
    assert [(cell.execution_count, cell.outputs[0].text)] == [(1, "hello\n")]
    assert paths["stderr"].read_text() == before["stderr"]
    assert paths["failing"].read_text() == before["failing"]


@pytest.mark.live
@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_notebook_runs_top_to_bottom_and_leaves_nothing_behind(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Nothing the developer runs may be mistaken for the notebook's own servers:
    # point the "already running" addresses at ports nobody listens on.
    monkeypatch.setenv("TITANIC_API_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("TITANIC_PROMETHEUS_URL", f"http://127.0.0.1:{free_port()}")
    before = notebook_changes()
    notebook = nbformat.read(path, as_version=4)
    # Raises CellExecutionError, naming the cell, if any cell fails.
    seconds = execute(notebook, NOTEBOOK_DIR, timeout=CELL_TIMEOUT)
    assert problems(notebook) == []  # no error, stderr, local path or host name
    started = [(lesson, int(port)) for lesson, port in STARTED.findall(notebook_text(notebook))]
    assert {lesson for lesson, _ in started} == set(LESSONS), "a lesson was not started"
    for lesson, port in started:
        assert not is_serving(f"http://127.0.0.1:{port}/openapi.json"), f"{lesson} still answers"
        assert processes_serving(port) == [], f"{lesson} is still running"
    assert notebook_changes() - before == set(), "the notebook left files in the repository"
    print(f"{path.name}: {len(notebook.cells)} cells in {seconds:.0f} s")

"""README, CI and code kept in step: where they could disagree, a test pins them together."""

from __future__ import annotations

import ast
import importlib
import json
import re
import shlex
import subprocess
from pathlib import Path

import pytest

from tests.helpers import LESSONS
from tools.servers import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text()
CI = (REPO_ROOT / ".ci" / "run").read_text()


def _section(title: str) -> str:
    start = README.index(f"\n## {title}")
    end = README.find("\n## ", start + 1)
    return README[start : end if end != -1 else None]


def _bash_blocks(text: str) -> list[str]:
    return [block.strip() for block in re.findall(r"```bash\n(.*?)```", text, re.S)]


def test_quick_start_is_two_commands() -> None:
    install_and_run, install_and_test = _bash_blocks(_section("Quick start: two commands"))
    assert install_and_run == (
        "python -m pip install -r requirements.txt"
        " && python -m uvicorn lessons.fastapi_01_test_app:app --reload"
    )
    assert install_and_test.startswith("python -m pip install -r requirements.txt && ")


def test_ci_runs_the_readme_test_command() -> None:
    [_, test_command] = _bash_blocks(_section("Quick start: two commands"))
    ci_commands = [line for line in CI.splitlines() if line and not line.startswith("#")]
    assert ci_commands[-1] == test_command


def test_ci_installs_what_the_suite_needs() -> None:
    assert "apt-get install" in CI and "prometheus" in CI
    assert "pip install --quiet --disable-pip-version-check -r requirements.txt" in CI
    assert "REQUIRE_PROMETHEUS=1" in CI
    for check in ("ruff check .", "ruff format --check .", "mypy"):
        assert f"\n{check}\n" in CI


def test_pre_commit_runs_the_ci_checks() -> None:
    config = (REPO_ROOT / ".pre-commit-config.yaml").read_text()
    for entry in ("entry: ruff check", "entry: ruff format --check", "entry: mypy"):
        assert entry in config


def test_requirements_are_pinned() -> None:
    lines = [
        line.strip()
        for line in (REPO_ROOT / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert lines, "requirements.txt is empty"
    assert all(re.fullmatch(r"[A-Za-z0-9_.\-]+==[\w.]+", line) for line in lines), lines


def _lesson_rows() -> list[list[str]]:
    table = _section("The lessons")
    rows = [line for line in table.splitlines() if line.startswith("| ") and "`" in line]
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in rows]


def test_lesson_map_lists_every_lesson_in_order() -> None:
    assert [row[1].strip("`") for row in _lesson_rows()] == LESSONS
    assert sorted(LESSONS) == sorted(p.stem for p in (REPO_ROOT / "lessons").glob("[fp]*_app.py"))


@pytest.mark.parametrize("name", LESSONS)
def test_lesson_map_endpoints_match_the_app(name: str) -> None:
    [row] = [row for row in _lesson_rows() if row[1] == f"`{name}`"]
    documented = set(re.findall(r"`(GET|POST) (/\S*)`", row[3]))
    app = importlib.import_module(f"lessons.{name}").app
    served = {
        (method, route.path)
        for route in app.routes
        for method in getattr(route, "methods", set()) - {"HEAD"}
        if route.path not in {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}
    }
    assert documented == served


@pytest.mark.parametrize("name", LESSONS)
def test_each_lesson_says_how_to_run_it(name: str) -> None:
    doc = importlib.import_module(f"lessons.{name}").__doc__ or ""
    first_line, _, rest = doc.partition("\n")
    assert first_line.endswith(".") and len(first_line) <= 100
    assert f"uvicorn lessons.{name}:app --reload" in rest


def test_paths_named_in_the_readme_exist() -> None:
    """Every repository path the README names exists, or is one git ignores (made at run time)."""
    folders = (
        "lessons|tests|tools|training|data|notebooks|images|grafana_dashboard|benchmarks|docker"
    )
    named = set(re.findall(rf"`((?:{folders})/[\w./-]+)`", README))
    missing = [path for path in named if "<" not in path and not (REPO_ROOT / path).exists()]
    ignored = subprocess.run(
        ["git", "check-ignore", "--no-index", *missing],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    ).stdout.split()
    assert sorted(set(missing) - set(ignored)) == []


def test_committed_notebooks_hold_no_local_paths() -> None:
    pattern = re.compile(r"(/work/|/tmp/|/root/|/home/\w|C:\\\\Users)")
    for notebook in (REPO_ROOT / "notebooks").glob("*.ipynb"):
        cells = json.loads(notebook.read_text())["cells"]
        outputs = json.dumps([cell.get("outputs", []) for cell in cells])
        assert not pattern.search(outputs), f"{notebook.name} outputs show a local path"


def test_gitignore_covers_generated_files() -> None:
    ignored = (REPO_ROOT / ".gitignore").read_text().split()
    for entry in (
        "__pycache__/",
        ".pytest_cache/",
        ".mypy_cache/",
        ".ruff_cache/",
        "logs/",
        ".hypothesis/",
    ):
        assert entry in ignored


def test_shell_snippets_parse() -> None:
    for block in _bash_blocks(README):
        for line in block.replace("\\\n", " ").splitlines():
            shlex.split(line, comments=True)


def _code_without_prose(path: Path) -> str:
    """The module's code with docstrings and comments dropped (prose may name old APIs)."""
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        first = body[0] if isinstance(body, list) and body else None
        if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
            body[0] = ast.Pass()  # type: ignore[index]
    return ast.unparse(tree)


def test_no_deprecated_spellings_in_code() -> None:
    """lifespan, not on_event; model_config, not class Config; model_dump(), not .dict()."""
    deprecated = re.compile(r"\.on_event\(|class Config\b|\.dict\(\)|parse_obj\(|\.copy\(update=")
    folders = ("lessons", "tools", "training")
    for path in [path for folder in folders for path in REPO_ROOT.glob(f"{folder}/*.py")]:
        assert not deprecated.search(_code_without_prose(path)), path


def test_performance_figures_are_quoted_from_the_committed_result() -> None:
    """docs/performance.md's tables of measurements are the committed report's, row for row."""
    page = (REPO_ROOT / "docs" / "performance.md").read_text()
    committed = page[page.index("\n## The committed result") :]
    committed = committed[: committed.index("\n## ", 1)]
    [name] = re.findall(r"From `(benchmarks/results/[\w.-]+\.md)`", committed)
    report = (REPO_ROOT / name).read_text().splitlines()
    rows = [line for line in committed.splitlines() if line.startswith("| ")]
    assert len(rows) >= 20, "the page should show the report's tables"
    assert [row for row in rows if row not in report] == []
    [workers] = [line for line in committed.splitlines() if line.startswith("For information:")]
    assert workers in report
    assert sorted(p.name for p in (REPO_ROOT / "benchmarks" / "results").iterdir()) == [
        Path(name).name
    ], "one committed result, the one docs/performance.md quotes"

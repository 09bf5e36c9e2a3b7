"""README, docs, CI and code kept in step: where they could disagree, a test pins them together."""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
import json
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.support.lessons import LESSONS
from tools.picture_sources import code as code_without_prose
from tools.servers import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text()
CI = (REPO_ROOT / ".ci" / "run").read_text()
DOCS = sorted((REPO_ROOT / "docs").rglob("*.md"))
README_LIMIT = 15 * 1024


def _section(title: str) -> str:
    start = README.index(f"\n## {title}")
    end = README.find("\n## ", start + 1)
    return README[start : end if end != -1 else None]


def _bash_blocks(text: str) -> list[str]:
    return [block.strip() for block in re.findall(r"```bash\n(.*?)```", text, re.S)]


def test_quick_start_is_two_commands() -> None:
    install_and_run, install_and_test = _bash_blocks(_section("Quick start: two commands"))
    assert install_and_run == (
        "python3 -m venv .venv && . .venv/bin/activate"
        " && python -m pip install -r requirements.txt"
        " && python -m uvicorn lessons.fastapi_01_test_app:app --reload"
    )
    assert install_and_test == "python -m pip install -r requirements-dev.txt && python -m pytest"


def test_ci_runs_the_readme_test_command() -> None:
    """CI runs the README's test command with 3.11, then with a 3.13 venv's python: each
    Python installs requirements-dev.txt once, and its pytest run is among the last commands."""
    [_, test_command] = _bash_blocks(_section("Quick start: two commands"))
    install, test = test_command.split(" && ")
    assert (install, test) == ("python -m pip install -r requirements-dev.txt", "python -m pytest")
    ci_commands = [line for line in CI.splitlines() if line and not line.lstrip().startswith("#")]
    assert ci_commands[-2:] == [test, test.replace("python -m", '"$PY313" -m')]
    quiet = "-m pip install --quiet --disable-pip-version-check -r requirements-dev.txt"
    assert [line for line in ci_commands if "-r requirements-dev.txt" in line] == [
        f"python {quiet}",
        f'"$PY313" {quiet}',
    ]
    assert 'PY313="$VENV313/bin/python"' in ci_commands
    assert '"$PYTHON313" -m venv "$VENV313"' in ci_commands
    assert "/root/" not in CI, "CI finds Python 3.13 on the PATH or through pyenv"


def test_readme_states_the_tested_pythons() -> None:
    assert "run on Python 3.11 and 3.13" in _section("Quick start: two commands")
    assert 'requires-python = ">=3.11"' in (REPO_ROOT / "pyproject.toml").read_text()


def test_ci_installs_what_the_suite_needs() -> None:
    assert "apt-get install" in CI and "prometheus" in CI and "chromium" in CI
    assert "pip install --quiet --disable-pip-version-check -r requirements-dev.txt" in CI
    assert "REQUIRE_PROMETHEUS=1" in CI
    for check in ("ruff check .", "ruff format --check .", "mypy"):
        assert f"\n{check}\n" in CI


def test_pre_commit_runs_the_ci_checks() -> None:
    config = (REPO_ROOT / ".pre-commit-config.yaml").read_text()
    for entry in ("entry: ruff check", "entry: ruff format --check", "entry: mypy"):
        assert entry in config


def _requirements(name: str) -> list[str]:
    return [
        line.strip()
        for line in (REPO_ROOT / name).read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


@pytest.mark.parametrize("name", ["requirements.txt", "requirements-dev.txt"])
def test_requirements_are_pinned(name: str) -> None:
    lines = _requirements(name)
    if name == "requirements-dev.txt":
        assert lines[0] == "-r requirements.txt", "the contributor's file includes the learner's"
        lines = lines[1:]
    assert lines, f"{name} is empty"
    assert all(re.fullmatch(r"[A-Za-z0-9_.\-]+==[\w.]+", line) for line in lines), lines


def _third_party_imports(sources: list[tuple[str, str]]) -> set[str]:
    """Top-level names imported by the given (name, code) sources, minus stdlib and the repo."""
    local = {"lessons", "tools", "training", "tests", "benchmarks", "titanic_api"}
    found = set()
    for name, code in sources:
        for node in ast.walk(ast.parse(code, name)):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found.add(node.module.split(".")[0])
    return {name for name in found - local if name not in sys.stdlib_module_names}


def _learner_sources() -> list[tuple[str, str]]:
    """The code a learner runs: lessons, training, the tools the notebook and pages use."""
    paths = [*REPO_ROOT.glob("lessons/*.py"), *REPO_ROOT.glob("training/*.py")]
    paths += [REPO_ROOT / "tools" / "servers.py", REPO_ROOT / "tools" / "traffic.py"]
    sources = [(str(path), path.read_text()) for path in paths if path.exists()]
    for notebook in REPO_ROOT.glob("notebooks/*.ipynb"):
        for cell in json.loads(notebook.read_text())["cells"]:
            if cell["cell_type"] == "code":
                code = "".join(cell["source"])
                code = "\n".join(
                    line for line in code.splitlines() if not line.startswith(("%", "!"))
                )
                sources.append((str(notebook), code))
    return sources


# Imports that come with a listed package under another name, and the package they come with.
INSTALLED_WITH = {
    "IPython": "jupyter",
    "h11": "uvicorn",  # uvicorn's HTTP/1.1 parser, which titanic_api.server subclasses
    "pydantic_core": "pydantic",
    "sklearn": "scikit-learn",
    "yaml": "mlflow",  # PyYAML: mlflow (mlflow-skinny) requires it
}


def test_the_learners_requirements_cover_what_a_learner_runs() -> None:
    """Every package the lessons, training and the notebook import comes with requirements.txt."""
    listed = {
        line.split("==")[0].lower().replace("_", "-") for line in _requirements("requirements.txt")
    }
    distributions = importlib.metadata.packages_distributions()
    needed = {
        module: {name.lower().replace("_", "-") for name in distributions.get(module, [module])}
        for module in _third_party_imports(_learner_sources())
    }
    missing = {
        module
        for module, names in needed.items()
        if not names & listed and INSTALLED_WITH.get(module) not in listed
    }
    assert missing == set()


def test_the_packages_requirements_cover_its_imports_at_the_course_pins() -> None:
    """pyproject.toml's dependencies (what `pip install .` and the image install) name every
    package titanic_api imports, each pinned in requirements.txt (the image's constraints)."""
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    named = {name.lower() for name in project["dependencies"]}
    pinned = {line.split("==")[0].lower() for line in _requirements("requirements.txt")}
    assert named <= pinned, named - pinned
    distributions = importlib.metadata.packages_distributions()
    code = [(str(path), path.read_text()) for path in REPO_ROOT.glob("titanic_api/*.py")]
    imported = _third_party_imports(code) - {"titanic_api"}
    missing = {
        module
        for module in imported
        if not {name.lower().replace("_", "-") for name in distributions.get(module, [module])}
        & named
        and INSTALLED_WITH.get(module) not in named
    }
    assert missing == set()


def test_the_learners_requirements_leave_out_the_contributors_tools() -> None:
    listed = {line.split("==")[0].lower() for line in _requirements("requirements.txt")}
    for tool in ("pytest", "ruff", "mypy", "playwright", "pre-commit", "schemathesis", "mkdocs"):
        assert tool not in listed


def _lesson_rows() -> list[list[str]]:
    table = _section("The lessons")
    rows = [line for line in table.splitlines() if line.startswith("| ") and "`" in line]
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in rows]


def _lesson_in(cell: str) -> str:
    """ "[`name`](docs/lessons/name.md)" -> "name", checking that the link is the lesson's page."""
    [(name, page)] = re.findall(r"^\[`(\w+)`\]\(docs/lessons/(\w+)\.md\)$", cell)
    assert name == page
    return name


def test_lesson_map_lists_every_lesson_in_order() -> None:
    assert [_lesson_in(row[1]) for row in _lesson_rows()] == LESSONS
    assert sorted(LESSONS) == sorted(p.stem for p in (REPO_ROOT / "lessons").glob("[fp]*_app.py"))


@pytest.mark.parametrize("name", LESSONS)
def test_lesson_map_endpoints_match_the_app(name: str) -> None:
    [row] = [row for row in _lesson_rows() if _lesson_in(row[1]) == name]
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


def test_paths_named_in_the_readme_and_docs_exist() -> None:
    """Every repository path the README and docs name exists, or is one git ignores."""
    folders = "lessons|tests|tools|training|data|notebooks|images|grafana_dashboard|benchmarks"
    folders += "|docker|docs"
    texts = [README, *(page.read_text() for page in DOCS)]
    named = {path for text in texts for path in re.findall(rf"`((?:{folders})/[\w./-]+)`", text)}
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
    for block in [
        b for text in [README, *(p.read_text() for p in DOCS)] for b in _bash_blocks(text)
    ]:
        for line in block.replace("\\\n", " ").splitlines():
            shlex.split(line, comments=True)


def test_no_deprecated_spellings_in_code() -> None:
    """lifespan, not on_event; model_config, not class Config; model_dump(), not .dict()."""
    deprecated = re.compile(r"\.on_event\(|class Config\b|\.dict\(\)|parse_obj\(|\.copy\(update=")
    folders = ("lessons", "tools", "training")
    for path in [path for folder in folders for path in REPO_ROOT.glob(f"{folder}/*.py")]:
        assert not deprecated.search(code_without_prose(path)), path


# ------------------------------------------------------------------ the README as a front page


def _slug(heading: str) -> str:
    """The anchor GitHub and MkDocs give a heading ("Quick start: two commands")."""
    text = re.sub(r"[`*]", "", heading).strip().lower()
    return re.sub(r"\s+", "-", re.sub(r"[^\w\s-]", "", text))


def _anchors(markdown: str) -> set[str]:
    return {_slug(h) for h in re.findall(r"^#{1,6} (.+)$", markdown, re.MULTILINE)}


def test_readme_is_at_most_15_kb() -> None:
    assert len(README.encode()) <= README_LIMIT


def test_readme_table_of_contents_lists_every_section() -> None:
    contents = _section("Contents")
    listed = re.findall(r"^- \[(.+)\]\(#([\w-]+)\)$", contents, re.MULTILINE)
    sections = [h for h in re.findall(r"^## (.+)$", README, re.MULTILINE) if h != "Contents"]
    assert [title for title, _ in listed] == sections
    assert all(anchor == _slug(title) for title, anchor in listed)


def _relative_links(markdown: str) -> list[str]:
    links = re.findall(r"\]\(([^)\s]+)\)", markdown)
    return [link for link in links if not re.match(r"[a-z]+:", link)]


def test_readme_links_lead_to_files_and_anchors_that_exist() -> None:
    """Every relative link of the README: an existing file, and the heading its anchor names."""
    links = _relative_links(README)
    assert len(links) >= 20
    for link in links:
        path, _, anchor = link.partition("#")
        target = REPO_ROOT / path if path else REPO_ROOT / "README.md"
        assert target.exists(), link
        if anchor:
            assert anchor in _anchors(target.read_text()), link


def test_readme_links_into_every_page_of_the_site() -> None:
    linked = {link.partition("#")[0] for link in _relative_links(README)}
    pages = {str(page.relative_to(REPO_ROOT)) for page in DOCS}
    assert pages - linked == {"docs/index.md"}


def test_link_check_fails_on_a_dead_link() -> None:
    assert "docs/no-such-page.md" in _relative_links("[x](docs/no-such-page.md) [y](https://a.b)")
    assert not (REPO_ROOT / "docs/no-such-page.md").exists()


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


def test_every_test_folder_is_a_package() -> None:
    """tests/lessons/test_x.py and tests/titanic_api/test_x.py may share a name: each folder
    holding test modules has an __init__.py, so pytest imports them under different names."""
    folders = {path.parent for path in (REPO_ROOT / "tests").rglob("*.py")}
    assert (
        sorted(str(f.relative_to(REPO_ROOT)) for f in folders if not (f / "__init__.py").exists())
        == []
    )

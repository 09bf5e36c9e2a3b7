"""The course site (docs/, mkdocs.yml): built strictly, every lesson on its page, and every
answer a page promises is the one the lesson really gives.

The browser's view of the built pages is checked in tests/test_docs_browser.py.
"""

from __future__ import annotations

import difflib
import html
import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest

from tests.helpers import LESSONS
from tools.servers import REPO_ROOT, LessonServer
from tools.site import build_site

DOCS = REPO_ROOT / "docs"
LESSON_PAGES = DOCS / "lessons"
PAGE_URL = "http://127.0.0.1:8000"


def load_hook() -> ModuleType:
    """docs/hooks/lesson_pages.py, the mkdocs hook (not a package: loaded by its path)."""
    path = DOCS / "hooks" / "lesson_pages.py"
    spec = importlib.util.spec_from_file_location("lesson_pages_hook", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site, built once per test run into a temporary folder (never into the repository)."""
    site_dir = tmp_path_factory.mktemp("site")
    result = build_site(site_dir)
    assert result.returncode == 0, result.stderr
    assert "WARNING" not in result.stderr, result.stderr
    return site_dir


def changed_lines(name: str) -> list[int]:
    """What a lesson's page must highlight: its lines that the previous lesson lacks."""
    index = LESSONS.index(name)
    if index == 0:
        return []
    old = (REPO_ROOT / "lessons" / f"{LESSONS[index - 1]}.py").read_text().splitlines()
    new = (REPO_ROOT / "lessons" / f"{name}.py").read_text().splitlines()
    return [
        number + 1
        for tag, _, _, start, end in difflib.SequenceMatcher(None, old, new, False).get_opcodes()
        if tag != "equal"
        for number in range(start, end)
    ]


# ------------------------------------------------------------------ the build


def test_site_builds_strictly(site: Path) -> None:
    assert (site / "index.html").is_file()
    assert sorted(p.parent.name for p in (site / "lessons").glob("*/index.html")) == sorted(LESSONS)


def test_a_broken_link_fails_the_strict_build(tmp_path: Path) -> None:
    """The check above can fail: a copy of the site with one dead link does not build."""
    shutil.copy(REPO_ROOT / "mkdocs.yml", tmp_path)
    for folder in ("docs", "lessons", "images", "deploy"):
        shutil.copytree(REPO_ROOT / folder, tmp_path / folder, symlinks=True)
    page = tmp_path / "docs" / "model.md"
    page.write_text(page.read_text() + "\nSee [the missing page](no-such-page.md).\n")
    result = build_site(tmp_path / "site", tmp_path)
    assert result.returncode != 0
    assert "no-such-page.md" in result.stderr


def test_mkdocs_serve_stays_on_this_machine() -> None:
    config = (REPO_ROOT / "mkdocs.yml").read_text()
    assert re.search(r"^dev_addr: 127\.0\.0\.1:\d+$", config, re.MULTILINE)
    assert re.search(r"^strict: true$", config, re.MULTILINE)


def test_site_is_ignored_by_git() -> None:
    assert "site/" in (REPO_ROOT / ".gitignore").read_text().split()


# ------------------------------------------------------------------ the lesson pages


def test_one_page_per_lesson() -> None:
    pages = sorted(p.stem for p in LESSON_PAGES.glob("*.md") if p.stem != "index")
    assert pages == sorted(LESSONS)


@pytest.mark.parametrize("name", LESSONS)
def test_lesson_page_includes_its_file_and_says_how_to_run_it(name: str) -> None:
    page = (LESSON_PAGES / f"{name}.md").read_text()
    include = f'```python title="lessons/{name}.py" linenums="1"\n--8<-- "lessons/{name}.py"\n```'
    assert page.count(include) == 1
    assert f"```bash\nuvicorn lessons.{name}:app --reload\n```" in page
    for heading in ("## The code", "## Run it", "## Try it"):
        assert f"\n{heading}\n" in page


def test_the_nav_follows_the_lesson_order(site: Path) -> None:
    """The hook lists the lesson pages in the order of lessons.LESSONS, after the overview."""
    overview = (site / "lessons" / "index.html").read_text()
    links = re.findall(r'href="(?:\.\./)?((?:\.\./)*lessons/\w+/|\w+/)"', overview)
    named = [link.rstrip("/").split("/")[-1] for link in links]
    in_nav = [name for name in dict.fromkeys(named) if name in LESSONS]
    assert in_nav == LESSONS


@pytest.mark.parametrize("name", LESSONS)
def test_highlighted_lines_are_what_the_lesson_changes(site: Path, name: str) -> None:
    """Each page's code is the whole file, and the highlighted lines are the diff's."""
    page = (site / "lessons" / name / "index.html").read_text()
    [code] = re.findall(r'<td class="code">.*?<code>(.*?)</code>', page, re.DOTALL)
    pieces = re.split(r'<span id="__span-0-(\d+)">', code)[1:]
    numbers, bodies = [int(n) for n in pieces[0::2]], pieces[1::2]
    assert numbers == list(range(1, len(bodies) + 1))
    text = [html.unescape(re.sub(r"<[^>]+>", "", body)).removesuffix("\n") for body in bodies]
    assert text == (REPO_ROOT / "lessons" / f"{name}.py").read_text().splitlines()
    highlighted = [n for n, body in zip(numbers, bodies, strict=True) if 'class="hll"' in body]
    assert highlighted == changed_lines(name)
    assert (name == LESSONS[0]) == (highlighted == [])


def test_hook_ranges() -> None:
    hook = load_hook()
    assert hook.as_ranges([3, 4, 5, 9, 11, 12]) == "3-5 9 11-12"
    assert hook.as_ranges([]) == ""
    assert hook.lesson_order() == LESSONS


def test_search_index_holds_every_lesson(site: Path) -> None:
    index = json.loads((site / "search" / "search_index.json").read_text())
    texts: dict[str, str] = {}
    for doc in index["docs"]:
        page = doc["location"].split("#")[0]
        texts[page] = texts.get(page, "") + " " + doc["title"] + " " + doc["text"]
    for name in LESSONS:
        assert f"uvicorn lessons.{name}:app --reload" in texts[f"lessons/{name}/"], name


# What a page may name in `backticks` that its lesson's code does not: a test tool, an
# environment variable MLflow reads, a shell command, an HTTP method a client invents, and
# the sample names /metrics shows (prometheus_client adds the suffixes).
NOT_IN_THE_CODE = {"TestClient", "MLFLOW_TRACKING_URI", "grep", "BREW", "_total"}
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
def test_every_name_a_lesson_page_quotes_is_in_the_lesson(name: str) -> None:
    """A page that names a function, class or setting the lesson no longer has is stale."""
    page = (LESSON_PAGES / f"{name}.md").read_text()
    code = (REPO_ROOT / "lessons" / f"{name}.py").read_text()
    assert names_not_in_the_code(page, code) == []


def test_a_page_naming_code_the_lesson_lacks_is_found() -> None:
    """The check above can fail: P01's middleware was once a class, ``GoldenSignals``."""
    code = (REPO_ROOT / "lessons" / "prometheus_01_four_signal_monitor_app.py").read_text()
    stale = "The middleware, the class `GoldenSignals`, counts `http_requests_total`."
    assert names_not_in_the_code(stale, code) == ["GoldenSignals"]


# ------------------------------------------------------------------ "Try it": the answers


@dataclass
class Call:
    """A ``curl`` command of a page and, when the page shows one, the answer it promises."""

    command: str
    status: int | None = None
    answer: str | None = None
    kind: str | None = None


TRY = re.compile(
    r"```bash\n(curl [^\n]*)\n```"
    r'(?:\n\n```(json|text) title="status (\d{3})"\n(.*?)```)?',
    re.DOTALL,
)


def calls_on(page: Path) -> list[Call]:
    return [
        Call(command, int(status) if status else None, answer or None, kind or None)
        for command, kind, status, answer in TRY.findall(page.read_text())
    ]


def run_curl(command: str, base_url: str) -> tuple[int, str]:
    """Do what ``curl -s [-X M] URL [-H h] [-d data] [| grep [-E] pattern]`` does, in Python."""
    command, _, grep = command.partition(" | grep ")
    words = shlex.split(command)[1:]
    method, headers, data, url = "GET", {}, None, None
    while words:
        word = words.pop(0)
        if word == "-s":
            continue
        if word == "-X":
            method = words.pop(0)
        elif word == "-H":
            key, _, value = words.pop(0).partition(": ")
            headers[key] = value
        elif word == "-d":
            data = words.pop(0).encode()
        else:
            assert url is None and word.startswith(PAGE_URL), f"curl option not understood: {word}"
            url = base_url + word.removeprefix(PAGE_URL)
    assert url is not None
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, body = response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        status, body = error.code, error.read().decode()
    if grep:
        pattern = shlex.split(grep)[-1]
        body = "".join(line + "\n" for line in body.splitlines() if re.search(pattern, line))
    return status, body


def test_every_lesson_page_promises_answers() -> None:
    for name in LESSONS:
        calls = calls_on(LESSON_PAGES / f"{name}.md")
        assert any(call.answer for call in calls), f"{name}: no answer shown under Try it"


def test_curl_reader_fails_on_an_unknown_option() -> None:
    with pytest.raises(AssertionError, match="not understood"):
        run_curl(f"curl -s --retry 3 {PAGE_URL}/", "http://127.0.0.1:1")


@pytest.mark.live
@pytest.mark.parametrize("name", LESSONS)
def test_try_it_answers_are_the_lessons_answers(name: str, log_dir: Path) -> None:
    """Run a page's curl commands in order against the lesson under uvicorn, as a reader does."""
    calls = calls_on(LESSON_PAGES / f"{name}.md")
    with LessonServer(name, env={"PREDICTION_LOG_DIR": str(log_dir)}) as server:
        for call in calls:
            status, body = run_curl(call.command, server.url)
            if call.answer is None:
                continue
            assert status == call.status, (call.command, body)
            if call.kind == "json":
                assert json.loads(body) == json.loads(call.answer), call.command
            else:
                assert body == call.answer, call.command


# ------------------------------------------------------------------ excerpts


EXCERPT = re.compile(r"^`([^`]+)` \(excerpt[^\n]*\n\n```\w*\n(.*?)```", re.MULTILINE | re.DOTALL)


def excerpts_not_in_their_files(markdown: str) -> list[str]:
    """Pieces of "`file` (excerpt ...)" blocks that their file does not hold, line after line.

    A block is made of pieces separated by "..." lines; each piece must be a run of
    consecutive lines of its file (compared without their indentation), so a line quoted
    next to the wrong neighbours, such as another rule's label, is found too. Blank lines
    are left out on both sides.
    """
    wrong = []
    for name, block in EXCERPT.findall(markdown):
        lines_of_file = [line.strip() for line in (REPO_ROOT / name).read_text().splitlines()]
        text = "\n" + "\n".join(line for line in lines_of_file if line)
        pieces = re.split(r"^\s*\.\.\.\s*$", block, flags=re.MULTILINE)
        for piece in pieces:
            lines = [line.strip() for line in piece.splitlines() if line.strip()]
            if lines and "\n" + "\n".join(lines) + "\n" not in text + "\n":
                wrong.append("\n".join(lines))
    return wrong


def test_every_excerpt_on_the_site_is_quoted_from_its_file() -> None:
    pages = sorted(DOCS.rglob("*.md"))
    assert sum(len(EXCERPT.findall(page.read_text())) for page in pages) >= 5
    for page in pages:
        assert excerpts_not_in_their_files(page.read_text()) == [], page.name


def test_an_excerpt_that_drifted_from_its_file_is_found() -> None:
    drifted = "`prometheus.yml` (excerpt):\n\n```yaml\nglobal:\n  scrape_interval: 99s\n```\n"
    assert excerpts_not_in_their_files(drifted) == ["global:\nscrape_interval: 99s"]


def test_an_excerpt_whose_lines_are_out_of_place_is_found() -> None:
    """Each line exists in the file, but not next to each other: another rule's severity."""
    moved = (
        "`prometheus_rules.yml` (excerpt):\n\n```yaml\n"
        "      - alert: TitanicApiDown\n"
        '        expr: up{job="fastapi_app"} == 0\n'
        "        for: 1m\n        labels:\n          severity: critical\n```\n"
    )
    assert len(excerpts_not_in_their_files(moved)) == 1
    assert excerpts_not_in_their_files(moved.replace("critical", "warning")) == []


# ------------------------------------------------------------------ the alert rules' table


def alert_table(page: str) -> list[list[str]]:
    """The rows of the table under "## Alert rules" whose first cell is an alert's name."""
    section = page.split("\n## Alert rules\n", 1)[1].split("\n## ", 1)[0]
    return [
        [cell.strip() for cell in line.strip("|").split("|")]
        for line in section.splitlines()
        if re.match(r"\| `\w+` \|", line)
    ]


def test_the_alert_table_is_the_rules_file() -> None:
    """Every rule of prometheus_rules.yml, in its order, with its severity and its `for:`."""
    import yaml

    rules = [
        rule
        for group in yaml.safe_load((REPO_ROOT / "prometheus_rules.yml").read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule  # not the recording rules
    ]
    page = (DOCS / "prometheus.md").read_text()
    rows = alert_table(page)
    assert [(name, severity, duration) for name, severity, _, duration in rows] == [
        (f"`{rule['alert']}`", rule["labels"]["severity"], rule["for"]) for rule in rules
    ]
    assert f"holds {NUMBERS[len(rules)]} alerts" in page
    assert f"the {NUMBERS[len(rules)]} alert rules" in (REPO_ROOT / "README.md").read_text()


NUMBERS = {5: "five", 6: "six", 7: "seven", 8: "eight", 9: "nine", 13: "thirteen"}


# ------------------------------------------------------------------ the contributing page


def test_contributing_page_says_what_the_tests_check() -> None:
    """Its limits are test_lessons.py's, and the classes it quotes are real behaviours."""
    from tests import contracts, monitoring_contracts
    from tests.test_lessons import NEIGHBOUR_MAX_CHANGED_LINES

    page = (DOCS / "contributing.md").read_text()
    assert f"differ by more than {NEIGHBOUR_MAX_CHANGED_LINES} changed lines" in page
    example = (REPO_ROOT / "tests" / "test_prometheus_03_logging_app.py").read_text()
    quoted = re.findall(r"`(class Test\w+\((\w+)\): \.\.\.)`", page)
    assert len(quoted) >= 3
    for line, base in quoted:
        assert f"\n{line}\n" in example
        assert hasattr(contracts, base) or hasattr(monitoring_contracts, base), base
    update = (REPO_ROOT / "tests" / "update_openapi.py").read_text()
    for command in re.findall(r"^python -m tests\.update_openapi.*$", page, re.MULTILINE):
        assert command in update, command


# ------------------------------------------------------------------ the instructors' page


def test_the_instructors_page_shows_what_python_m_lessons_prints() -> None:
    """Each "$ python -m lessons ..." block: every line shown is a line the command prints."""
    page = (DOCS / "instructors.md").read_text()
    blocks = re.findall(r"```text\n\$ (python -m lessons[^\n]*)\n(.*?)```", page, re.DOTALL)
    assert len(blocks) >= 2
    for command, shown in blocks:
        printed = subprocess.run(
            [sys.executable, *shlex.split(command)[1:]],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            env={**os.environ, "NO_COLOR": "1"},
            timeout=120,
            check=True,
        ).stdout
        lines = {line.rstrip() for line in printed.splitlines()}
        missing = [line for line in shown.splitlines() if line not in lines | {"..."}]
        assert missing == [], command

"""The course site (docs/, mkdocs.yml): built strictly, every lesson on its page.

The lesson pages themselves are checked in tests/site/test_lesson_pages.py, their
commands and answers in tests/site/test_command_variants.py, their exercises in
tests/site/test_exercises.py, and the browser's view of the built pages in
tests/site/test_browser.py.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from tests.site.pages import DOCS, LESSON_PAGES
from tests.support import (
    contracts,
    golden_signals_contracts,
    model_metrics_contracts,
    prediction_log_contracts,
    simulation_contracts,
    validation_contracts,
)
from tests.support.lessons import LESSONS, NEIGHBOUR_MAX_CHANGED_LINES
from tools.servers import REPO_ROOT
from tools.site import build_site

# ------------------------------------------------------------------ the build


def test_site_builds_strictly(site: Path) -> None:
    assert (site / "index.html").is_file()
    assert sorted(p.parent.name for p in (site / "lessons").glob("*/index.html")) == sorted(LESSONS)


def test_a_broken_link_fails_the_strict_build(tmp_path: Path) -> None:
    """The check above can fail: a copy of the site with one dead link does not build."""
    shutil.copy(REPO_ROOT / "mkdocs.yml", tmp_path)
    shutil.copy(REPO_ROOT / "README.md", tmp_path)  # the home page includes its first command
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
    assert "/site/" in (REPO_ROOT / ".gitignore").read_text().split()


# ------------------------------------------------------------------ the lesson pages


def test_one_page_per_lesson() -> None:
    pages = sorted(p.stem for p in LESSON_PAGES.glob("*.md") if p.stem != "index")
    assert pages == sorted(LESSONS)


def test_the_nav_follows_the_lesson_order(site: Path) -> None:
    """The hook lists the lesson pages in the order of lessons.LESSONS, after the overview."""
    overview = (site / "lessons" / "index.html").read_text()
    links = re.findall(r'href="(?:\.\./)?((?:\.\./)*lessons/\w+/|\w+/)"', overview)
    named = [link.rstrip("/").split("/")[-1] for link in links]
    in_nav = [name for name in dict.fromkeys(named) if name in LESSONS]
    assert in_nav == LESSONS


def test_search_index_holds_every_lesson(site: Path) -> None:
    index = json.loads((site / "search" / "search_index.json").read_text())
    texts: dict[str, str] = {}
    for doc in index["docs"]:
        page = doc["location"].split("#")[0]
        texts[page] = texts.get(page, "") + " " + doc["title"] + " " + doc["text"]
    for name in LESSONS:
        assert f"uvicorn lessons.{name}:app --reload" in texts[f"lessons/{name}/"], name


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


NUMBERS = {5: "five", 6: "six", 7: "seven", 8: "eight", 9: "nine", 13: "thirteen", 14: "fourteen"}


# ------------------------------------------------------------------ the contributing page


# The modules that hold the behaviour classes the lessons and the package share.
CONTRACT_MODULES = [
    contracts,
    validation_contracts,
    golden_signals_contracts,
    model_metrics_contracts,
    prediction_log_contracts,
    simulation_contracts,
]


def test_contributing_page_says_what_the_tests_check() -> None:
    """Its limits are test_course_shape.py's, and the classes it quotes are real behaviours,
    parametrised over the group it names, in the module it names."""
    page = (DOCS / "contributing.md").read_text()
    assert f"differ by more than {NEIGHBOUR_MAX_CHANGED_LINES} changed lines" in page
    quoted = re.findall(
        r"`(tests/lessons/test_\w+\.py)` reads `(@pytest\.mark\.parametrize\(.*?\))` above "
        r"`(class Test\w+\((\w+)\):)`",
        page,
    )
    assert quoted
    for path, parametrize, line, base in quoted:
        module = (REPO_ROOT / path).read_text()
        assert f"\n{parametrize}\n{line}\n" in module
        assert any(hasattr(contract, base) for contract in CONTRACT_MODULES), base
    update = (REPO_ROOT / "tools" / "update_openapi.py").read_text()
    for command in re.findall(r"^python -m tools\.update_openapi.*$", page, re.MULTILINE):
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

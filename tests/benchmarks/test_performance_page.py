"""docs/performance.md says what the committed benchmark report says, and nothing else.

The page quotes the report's tables row for row, and every figure in its prose
(a decimal number, a ratio) is one the report gives.
"""

from __future__ import annotations

import re
from pathlib import Path

from tools.servers import REPO_ROOT

PAGE = REPO_ROOT / "docs" / "performance.md"
RESULTS = REPO_ROOT / "benchmarks" / "results"
FIGURE = re.compile(r"(?<![\w.])\d+\.\d+(?![\w.])")  # 0.80, 13.3; not 3.17.2 or names


def committed_report(page: str) -> Path:
    [name] = set(re.findall(r"`(benchmarks/results/[\w.-]+\.md)`", page))
    return REPO_ROOT / name


def table_rows(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("| ")]


def prose(text: str) -> str:
    """The page without its tables, code blocks and included files."""
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    return "\n".join(line for line in text.splitlines() if not line.startswith("|"))


def figures_not_in(page: str, report: str) -> set[str]:
    return set(FIGURE.findall(prose(page))) - set(FIGURE.findall(report))


def test_the_page_quotes_the_one_committed_report() -> None:
    page = PAGE.read_text()
    report = committed_report(page)
    assert [path.name for path in RESULTS.iterdir()] == [report.name]


def test_every_table_row_of_the_page_is_the_reports() -> None:
    page = PAGE.read_text()
    report = committed_report(page).read_text()
    rows = table_rows(page)
    assert len(rows) >= 40, "the page should show the report's tables"
    assert [row for row in rows if row not in report.splitlines()] == []


def test_the_page_shows_the_peers_the_limit_the_goals_and_where_the_cpu_goes() -> None:
    page = PAGE.read_text()
    report = committed_report(page).read_text()
    for heading in (
        "## The same answers",
        "## `titanic_api` / each peer",
        "## Where `titanic_api`'s CPU per 1,000-passenger batch goes (py-spy)",
        "## Goals",
    ):
        section = report[report.index(heading) :]
        section = section[: section.find("\n## ", 1) if "\n## " in section[1:] else None]
        assert table_rows(section), heading
        assert all(row in page for row in table_rows(section)), heading
    [peers] = [line for line in report.splitlines() if line.startswith("- Peers")]
    assert peers.removeprefix("- ") in page.replace("\n", " ")
    assert "in process: parse the JSON body, `predict_proba`" in page


def test_every_figure_in_the_pages_prose_is_in_the_report() -> None:
    page = PAGE.read_text()
    report = committed_report(page).read_text()
    assert len(FIGURE.findall(prose(page))) >= 10
    assert figures_not_in(page, report) == set()


def test_a_figure_the_report_does_not_give_is_found() -> None:
    report = "| `titanic_api` | 13.3 | 0.80 |\nmlflow 3.17.2"
    assert figures_not_in("costs 13.3 ms, 0.80 times; MLflow 3.17.2", report) == set()
    assert figures_not_in("costs 12.9 ms\n| 99.9 |", report) == {"12.9"}

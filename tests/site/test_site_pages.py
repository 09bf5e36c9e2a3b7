"""The site's pages where learners read them: on GitHub, in the README, and stale words gone.

On GitHub a page shows ``--8<--`` lines instead of code and nothing where the build hook
puts a table: tools/site_pages.py writes a note at the top of every page and commits the
tables, and these tests fail while either is out of date.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from tools import site_pages
from tools.servers import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text()
DOCS = REPO_ROOT / "docs"


def _section(title: str) -> str:
    start = README.index(f"\n## {title}")
    end = README.find("\n## ", start + 1)
    return README[start : end if end != -1 else None]


# ------------------------------------------------------------------ readable on GitHub


def test_every_page_has_its_github_note_and_current_tables() -> None:
    """`python -m tools.site_pages` has nothing left to write."""
    assert site_pages.out_of_date() == []


def test_a_page_without_its_note_or_with_an_old_table_is_found(tmp_path: Path) -> None:
    hook = site_pages.load_hook()
    page = DOCS / "lessons" / "index.md"
    current = page.read_text()
    assert site_pages.refreshed(page, current, hook) == current
    without_note = re.sub(r"\n<p class=\"github-only\">.*</p>\n", "", current)
    assert without_note != current
    assert site_pages.refreshed(page, without_note, hook) == current
    old_table = current.replace("| lesson | module |", "| lesson | file |")
    assert site_pages.refreshed(page, old_table, hook) == current


def test_a_lesson_page_links_its_file_on_github_and_names_the_published_page() -> None:
    page = DOCS / "lessons" / "prometheus_00_simple_monitoring_app.md"
    note = page.read_text().split("\n")[2]
    assert note.startswith('<p class="github-only">')
    link = '<a href="../../lessons/prometheus_00_simple_monitoring_app.py">'
    assert link in note
    assert (
        (page.parent / "../../lessons/prometheus_00_simple_monitoring_app.py").resolve().is_file()
    )
    published = (
        "https://&lt;owner&gt;.github.io/&lt;repo&gt;/lessons/prometheus_00_simple_monitoring_app/"
    )
    assert published in note


def test_every_file_a_note_links_exists() -> None:
    for page in site_pages.pages():
        for target in re.findall(r'<a href="([^"]+)">', page.read_text().split("\n")[2]):
            assert (page.parent / target).resolve().is_file(), f"{page.name}: {target}"


def test_the_site_hides_the_note_and_github_shows_it() -> None:
    css = (DOCS / "stylesheets" / "extra.css").read_text()
    assert re.search(r"\.github-only\s*\{\s*display:\s*none;\s*\}", css)
    assert "stylesheets/extra.css" in (REPO_ROOT / "mkdocs.yml").read_text()


def test_the_lesson_tables_are_committed_not_only_generated() -> None:
    """GitHub shows the committed tables; the hook's bare marker would show nothing there."""
    hook = site_pages.load_hook()
    for page, page_dir in ((DOCS / "index.md", "lessons/"), (DOCS / "lessons" / "index.md", "")):
        text = page.read_text()
        assert "<!-- lesson-table -->" not in text
        assert hook.lesson_table(page_dir) in text


# ------------------------------------------------------------------ the README


def test_readme_makes_the_virtual_environment_part_of_the_first_command() -> None:
    quick_start = _section("Quick start: two commands")
    posix = re.findall(r"```bash\n(.*?)\n```", quick_start, re.S)[0]
    [windows] = re.findall(r"```powershell\n(.*?)\n```", quick_start, re.S)
    assert posix.startswith("python3 -m venv .venv && . .venv/bin/activate && ")
    assert windows.startswith(r"py -m venv .venv; .venv\Scripts\Activate.ps1; ")
    for command in (posix, windows):
        assert "python -m pip install -r requirements.txt" in command
        assert command.endswith("python -m uvicorn lessons.fastapi_01_test_app:app --reload")
    assert "refuse a system-wide `pip install`" in quick_start


def test_readme_names_every_program_whose_tests_skip_without_it() -> None:
    quick_start = _section("Quick start: two commands")
    for program, hint in (
        ("prometheus", "docs/prometheus.md#install-prometheus"),
        ("Chromium", "sudo apt-get install chromium"),
        ("kustomize", "python -m tools.kustomize install"),
        ("HAProxy", "sudo apt-get install haproxy"),
    ):
        assert program in quick_start and hint in quick_start, program
    assert "python -m tools.kustomize install" in (REPO_ROOT / ".ci" / "run").read_text()


def test_readme_names_the_published_site_and_the_local_alternative() -> None:
    site = _section("The course site")
    assert "`https://<owner>.github.io/<repo>/`" in site
    assert ".github/workflows/pages.yml" in site
    assert "```bash\npython -m mkdocs serve\n```" in site
    assert "OFFLINE=true python -m mkdocs build --strict" in site


# ------------------------------------------------------------------ stale words


def test_no_page_says_it_was_moved_from_the_readme() -> None:
    for page in site_pages.pages():
        assert "Moved here from the README" not in page.read_text(), page.name


def test_contributing_does_not_ask_for_a_row_in_a_generated_table() -> None:
    text = (DOCS / "contributing.md").read_text()
    assert "on [the lessons page](lessons/index.md) (" not in text
    assert "python -m tools.site_pages" in text


def test_created_series_is_what_the_metrics_page_says() -> None:
    """`_created` is the metric's creation time, a gauge in the text format: not a reset signal."""
    page = (DOCS / "metrics.md").read_text()
    assert "spot counter resets" not in page
    assert "`# TYPE titanic_predictions_created gauge`" in page
    from lessons import prometheus_00_simple_monitoring_app as lesson

    before = time.time()
    with TestClient(lesson.app) as client:
        text = client.get("/metrics").text
    assert "# TYPE titanic_predictions_created gauge" in text.splitlines()
    [created] = [f for f in text_string_to_metric_families(text) if f.name.endswith("_created")]
    [sample] = created.samples
    # The registry is the module's: created when the lesson was first imported, before now.
    assert 0 < sample.value <= before + 1


def test_the_home_page_includes_the_readme_first_command() -> None:
    """One home for the first command: the README; the site's home page includes it."""
    home = (DOCS / "index.md").read_text()
    for section, fence in (("start-posix", "bash"), ("start-windows", "powershell")):
        assert f'    --8<-- "README.md:{section}"' in home
        included = re.search(
            rf"<!-- --8<-- \[start:{section}\] -->\n(.*?)<!-- --8<-- \[end:{section}\] -->",
            README,
            re.S,
        )
        assert included and included[1].startswith(f"```{fence}\n"), section
        assert "lessons.fastapi_01_test_app:app --reload" in included[1]


def test_the_overview_lists_the_parts_every_lesson_page_has() -> None:
    """docs/lessons/index.md's "How to read a lesson" follows the pages' own sections."""
    overview = (DOCS / "lessons" / "index.md").read_text()
    listed = re.findall(r"^- \*\*([^*]+)\*\*", overview, re.M)
    for page in sorted((DOCS / "lessons").glob("*_app.md")):
        text = page.read_text()
        headings = re.findall(r"^## (.+)$", text, re.M)
        assert listed[1:-1] == headings, page.name
        assert f'"{listed[0]} (about ' in text, page.name
        assert '??? example "The whole file"' in text, page.name
    assert listed[-1] == "The whole file"

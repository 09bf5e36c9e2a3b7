"""Every request a page shows comes as curl, Python (requests) and PowerShell, and all three
send the same thing; curl and requests are run against the lesson, and get the answers the
page promises (tests/site/commands.py reads the pages)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.site.commands import (
    Command,
    commands_on,
    curl_request,
    curls_without_variants,
    is_the_answer,
    lesson_of,
    powershell_request,
    python_request,
    run_curl,
    run_python,
    same_request,
)
from tests.site.pages import DOCS
from tests.support.lessons import LESSONS
from tools.servers import LessonServer

PAGES = sorted(DOCS.rglob("*.md"))
PAGES_WITH_COMMANDS = [page for page in PAGES if commands_on(page.read_text())]


def page_id(page: Path) -> str:
    return str(page.relative_to(DOCS))


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_every_curl_has_its_requests_and_powershell_variants(page: Path) -> None:
    assert curls_without_variants(page.read_text()) == []


@pytest.mark.parametrize("page", PAGES_WITH_COMMANDS, ids=page_id)
def test_each_powershell_variant_sends_what_its_curl_sends(page: Path) -> None:
    for command in commands_on(page.read_text()):
        curl, powershell = curl_request(command.curl), powershell_request(command.powershell)
        assert same_request(curl, powershell), (curl, powershell)


@pytest.mark.parametrize("page", PAGES_WITH_COMMANDS, ids=page_id)
def test_each_requests_variant_sends_what_its_curl_sends(page: Path) -> None:
    for command in commands_on(page.read_text()):
        curl, python = curl_request(command.curl), python_request(command)
        assert same_request(curl, python), (curl, python)


def test_a_requests_variant_that_sends_something_else_is_found() -> None:
    [command] = commands_on(GROUP.replace("json=[]", "json=[{}]"))
    assert not same_request(curl_request(command.curl), python_request(command))
    [command] = commands_on(GROUP.replace("requests.post(", "requests.get("))
    assert not same_request(curl_request(command.curl), python_request(command))


@pytest.mark.parametrize("name", LESSONS)
def test_every_lesson_page_promises_answers(name: str) -> None:
    commands = commands_on((DOCS / "lessons" / f"{name}.md").read_text())
    assert any(command.answer for command in commands), f"{name}: no answer shown under Try it"


# ------------------------------------------------------------------ the checks can fail

POWERSHELL = (
    "Invoke-RestMethod -Method Post -Uri 'http://127.0.0.1:8000/predict_batch'"
    " -ContentType 'application/json' -Body '[]'"
)
GROUP = f"""=== "curl"

    ```bash
    curl -s -X POST http://127.0.0.1:8000/predict_batch -H 'Content-Type: application/json' -d '[]'
    ```

=== "Python (requests)"

    ```python
    import requests

    response = requests.post("http://127.0.0.1:8000/predict_batch", json=[])
    print(response.status_code, response.json())
    ```

=== "PowerShell"

    ```powershell
    {POWERSHELL}
    ```

```json title="status 422"
{{"detail": []}}
```
"""


def test_a_group_is_read_with_its_answer() -> None:
    [command] = commands_on(GROUP)
    assert command.status == 422 and command.kind == "json" and command.answer == '{"detail": []}\n'
    assert command.python.startswith("import requests\n\nresponse = requests.post(")
    assert same_request(curl_request(command.curl), powershell_request(command.powershell))
    assert curls_without_variants(GROUP) == []


@pytest.mark.parametrize(
    ("wrong", "right"),
    [
        ("-Body '[]'", "-Body '[{}]'"),
        ("-Method Post", "-Method Put"),
        ("/predict_batch' -C", "/predict_single' -C"),
        ("'application/json' -B", "'text/plain' -B"),
    ],
)
def test_a_powershell_variant_that_sends_something_else_is_found(wrong: str, right: str) -> None:
    [command] = commands_on(GROUP.replace(wrong, right))
    assert not same_request(curl_request(command.curl), powershell_request(command.powershell))


def test_a_powershell_grep_for_another_pattern_is_found() -> None:
    curl = curl_request("curl -s http://127.0.0.1:8000/metrics | grep '^titanic_predictions_total'")
    fetch = "(Invoke-RestMethod -Method Get -Uri 'http://127.0.0.1:8000/metrics') -split \"`n\""
    same = f"{fetch} | Select-String -Pattern '^titanic_predictions_total'"
    assert same_request(curl, powershell_request(same))
    other = f"{fetch} | Select-String -Pattern '^titanic_'"
    assert not same_request(curl, powershell_request(other))


def test_a_curl_without_variants_is_found() -> None:
    alone = "Try:\n\n```bash\ncurl -s http://127.0.0.1:8000/health\n```\n"
    assert curls_without_variants(alone) == ["curl -s http://127.0.0.1:8000/health"]
    # A group missing its PowerShell tab leaves its curl without variants too.
    [command] = commands_on(GROUP)
    assert curls_without_variants(GROUP.split('=== "PowerShell"')[0]) == [command.curl]


def test_the_readers_fail_on_what_they_do_not_understand() -> None:
    with pytest.raises(AssertionError, match="not understood"):
        curl_request("curl -s --retry 3 http://127.0.0.1:8000/")
    with pytest.raises(AssertionError, match="not understood"):
        powershell_request("Invoke-RestMethod -Uri 'http://127.0.0.1:8000/' -Headers @{a='b'}")


def test_a_wrong_answer_is_found() -> None:
    [command] = commands_on(GROUP)
    assert is_the_answer(command, 422, '{"detail": []}')
    assert not is_the_answer(command, 422, '{"detail": [{}]}')
    assert not is_the_answer(command, 400, '{"detail": []}')


def test_pages_name_the_lesson_their_commands_run_against() -> None:
    lesson_page = DOCS / "lessons" / f"{LESSONS[2]}.md"
    assert lesson_of(lesson_page, "") == LESSONS[2]
    assert lesson_of(DOCS / "metrics.md", "") == LESSONS[-1]
    named = f"<!-- commands run against: {LESSONS[5]} -->"
    assert lesson_of(DOCS / "metrics.md", named) == LESSONS[5]


# ------------------------------------------------------------------ running them


def run(command: Command, variant: str, base_url: str) -> tuple[int, str]:
    return run_curl(command.curl, base_url) if variant == "curl" else run_python(command, base_url)


@pytest.mark.live
@pytest.mark.parametrize("variant", ["curl", "requests"])
@pytest.mark.parametrize("page", PAGES_WITH_COMMANDS, ids=page_id)
def test_the_commands_get_the_answers_the_page_shows(
    page: Path, variant: str, log_dir: Path
) -> None:
    """A page's commands, run in order against its lesson under uvicorn, as a reader does;
    one server for the curl commands and a fresh one for the requests snippets, since the
    answers count what came before."""
    markdown = page.read_text()
    env = {"PREDICTION_LOG_DIR": str(log_dir)}
    with LessonServer(lesson_of(page, markdown), env=env) as server:
        for command in commands_on(markdown):
            status, body = run(command, variant, server.url)
            assert is_the_answer(command, status, body), (command.curl, status, body)

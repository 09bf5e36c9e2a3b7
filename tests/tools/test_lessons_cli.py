"""``python -m lessons``: list, serve and diff the lessons, and refuse unknown names."""

from __future__ import annotations

import errno
import importlib
import os
import pty
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx2
import pytest

from tests.support.lessons import LESSONS, METRICS_LESSONS
from tools import catalog
from tools.lessons_cli import main, use_colour
from tools.servers import HOST, REPO_ROOT, ServerProcess, free_port

IDS = ["01", "02", "03", "04", "04_02", "05", "P00", "P01", "P02", "P03", "P04"]


def run_cli(*args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """``python -m lessons ARGS`` from the repository root, output captured (piped)."""
    return subprocess.run(
        [sys.executable, "-m", "lessons", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        **kwargs,
    )


def openapi_endpoints(name: str) -> list[str]:
    """What the lesson's OpenAPI schema lists, read independently of tools.catalog."""
    schema = importlib.import_module(f"lessons.{name}").app.openapi()
    return [f"{method.upper()} {path}" for path, ops in schema["paths"].items() for method in ops]


# ------------------------------------------------------------------ the catalogue


def test_the_lessons_folder_holds_only_the_lessons() -> None:
    """The tool's code lives in tools/; lessons/__main__.py only hands over to it."""
    files = sorted(path.name for path in (REPO_ROOT / "lessons").glob("*.py"))
    assert files == sorted([*(f"{name}.py" for name in LESSONS), "__init__.py", "__main__.py"])
    shim = (REPO_ROOT / "lessons" / "__main__.py").read_text().splitlines()
    assert "from tools.lessons_cli import main" in shim
    assert len(shim) <= 10


def test_catalogue_is_read_from_the_lessons() -> None:
    catalogue = catalog.catalogue()  # (test_repository checks LESSONS against lessons/*.py)
    assert [lesson.name for lesson in catalogue] == LESSONS
    assert [lesson.id for lesson in catalogue] == IDS
    for lesson in catalogue:
        module = importlib.import_module(f"lessons.{lesson.name}")
        assert module.__doc__ is not None
        assert lesson.summary == module.__doc__.splitlines()[0]
        hidden = ["GET /metrics"] if lesson.name in METRICS_LESSONS else []
        assert lesson.endpoints == openapi_endpoints(lesson.name) + hidden
        assert bool(lesson.metrics) == (lesson.name in METRICS_LESSONS)
    by_id = {lesson.id: lesson for lesson in catalogue}
    assert by_id["02"].endpoints == ["GET /public", "GET /admin"]
    assert by_id["P04"].endpoints == [
        "GET /",
        "GET /health",
        "POST /predict_single",
        "POST /predict_batch",
        "POST /simulate_predictions",
        "GET /metrics",
    ]
    assert by_id["P00"].metrics == {"titanic_predictions_total": "counter"}


def test_list_prints_the_table_in_teaching_order() -> None:
    result = run_cli()  # no command means `list`
    assert result.returncode == 0, result.stderr
    assert "\x1b" not in result.stdout  # piped: plain text, and no wrapping
    header, *rows = result.stdout.splitlines()
    assert header.split() == ["ID", "LESSON", "SUMMARY", "/", "ENDPOINTS"]
    assert len(rows) == 2 * len(LESSONS)
    for index, lesson in enumerate(catalog.catalogue()):
        first, second = rows[2 * index], rows[2 * index + 1]
        assert first.split()[:2] == [lesson.id, lesson.name]
        assert first.endswith("  " + lesson.summary)
        assert second.strip() == "  ".join(lesson.endpoints)


def test_list_command_equals_the_default(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list"]) == 0
    listed = capsys.readouterr().out
    assert main([]) == 0
    assert capsys.readouterr().out == listed
    assert "P02    prometheus_02_model_monitor_app        Model metrics:" in listed


def test_list_wraps_to_a_terminal_width() -> None:
    text = catalog.table(catalog.catalogue(), width=80)
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "                                              POST /simulate_predictions" in text


# ------------------------------------------------------------------ resolving names


@pytest.mark.parametrize(
    ("query", "name"),
    [
        ("04", "fastapi_04_single_app"),  # exact id wins over the prefix of 04_02
        ("04_02", "fastapi_04_02_single_app"),
        ("fastapi_04", "fastapi_04_single_app"),
        ("prometheus_03", "prometheus_03_logging_app"),
        ("p03", "prometheus_03_logging_app"),
        ("P04", "prometheus_04_multi_execute_app"),
        ("fastapi_05_b", "fastapi_05_batch_test_app"),
        ("lessons/fastapi_02_roles_app.py", "fastapi_02_roles_app"),
        ("lessons.fastapi_03_health_app", "fastapi_03_health_app"),
        *((name, name) for name in LESSONS),
        *((lesson_id.lower(), name) for lesson_id, name in zip(IDS, LESSONS, strict=True)),
    ],
)
def test_resolve(query: str, name: str) -> None:
    assert catalog.resolve(query) == name


def starting(prefix: str) -> list[str]:
    """The lessons whose module name starts with ``prefix``: what an ambiguous prefix lists."""
    return [name for name in LESSONS if name.startswith(prefix)]


@pytest.mark.parametrize(
    ("args", "says", "lists"),
    [
        (["serve", "nope"], "python -m lessons serve: error: unknown lesson 'nope'", LESSONS),
        (
            ["diff", "01", "p"],
            "python -m lessons diff: error: ambiguous lesson 'p'",
            [n for n in LESSONS if n.startswith("p")],
        ),
        (
            ["diff", "fastapi_04_", "01"],
            "ambiguous lesson 'fastapi_04_'",
            [n for n in LESSONS if n.startswith("fastapi_04_")],
        ),
    ],
)
def test_unknown_or_ambiguous_lesson_is_one_line_and_exit_2(
    args: list[str], says: str, lists: list[str]
) -> None:
    result = run_cli(*args)
    assert result.returncode == 2
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1
    assert says in result.stderr
    listed = {name for name in LESSONS if f"={name}" in result.stderr}
    assert listed == set(lists)


# ------------------------------------------------------------------ diff


def test_diff_summary_and_code_from_05_to_p00(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diff", "05", "p00"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[:5] == [
        "from 05    fastapi_05_batch_test_app: " + catalog.summary("fastapi_05_batch_test_app"),
        "to   P00   prometheus_00_simple_monitoring_app: "
        + catalog.summary("prometheus_00_simple_monitoring_app"),
        "endpoints: + GET /metrics",
        "metrics:   + titanic_predictions_total (counter)",
        "",
    ]
    assert lines[5:7] == [
        "--- lessons/fastapi_05_batch_test_app.py",
        "+++ lessons/prometheus_00_simple_monitoring_app.py",
    ]
    assert "+registry = CollectorRegistry()" in lines
    assert '+@app.get("/metrics", include_in_schema=False)' in lines
    assert "\x1b" not in out


def test_diff_of_an_added_endpoint_and_removed_ones(capsys: pytest.CaptureFixture[str]) -> None:
    main(["diff", "P03", "P04"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[2:4] == ["endpoints: + POST /simulate_predictions", "metrics:   none"]
    main(["diff", "01", "02"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[2:6] == [
        "endpoints: + GET /public",
        "           + GET /admin",
        "           - GET /",
        "metrics:   none",
    ]


def test_diff_lists_metrics_added_and_removed(capsys: pytest.CaptureFixture[str]) -> None:
    main(["diff", "P02", "P01"])  # backwards: P01 has fewer metrics than P02
    lines = capsys.readouterr().out.splitlines()
    assert lines[2:7] == [
        "endpoints: none",
        "metrics:   - titanic_predictions_output_total (counter)",
        "           - prediction_type_total (counter)",
        "           - passenger_age_distribution (histogram)",
        "           - titanic_survival_probability (histogram)",
    ]
    main(["diff", "P00", "P01"])
    lines = capsys.readouterr().out.splitlines()
    for metric in (
        "http_requests_total (counter)",
        "http_request_duration_seconds (histogram)",
        "http_errors_total (counter)",
        "http_requests_in_progress (gauge)",
        "process_cpu_seconds_total (counter)",
    ):
        assert any(line.endswith("+ " + metric) for line in lines), metric


def test_diff_is_plain_when_piped_and_coloured_on_a_terminal(tmp_path: Path) -> None:
    piped = run_cli("diff", "01", "02")
    assert piped.returncode == 0, piped.stderr
    assert "\x1b" not in piped.stdout
    assert "--- lessons/fastapi_01_test_app.py\n" in piped.stdout

    def on_a_terminal(env: dict[str, str]) -> str:
        leader, follower = pty.openpty()
        with subprocess.Popen(
            [sys.executable, "-m", "lessons", "diff", "01", "02"],
            cwd=REPO_ROOT,
            env={**os.environ, **env},
            stdout=follower,
            stderr=subprocess.DEVNULL,
        ) as process:
            os.close(follower)
            chunks = []
            while True:
                try:
                    chunk = os.read(leader, 65536)
                except OSError as error:  # EIO: the child closed the terminal
                    assert error.errno == errno.EIO
                    break
                if not chunk:
                    break
                chunks.append(chunk)
            os.close(leader)
            assert process.wait(60) == 0
        return b"".join(chunks).decode()

    coloured = on_a_terminal({})
    assert "\x1b[32m+@app.get" in coloured
    assert "\x1b[31m-" in coloured
    assert "\x1b" not in on_a_terminal({"NO_COLOR": "1"})


def test_colour_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    assert use_colour("auto")
    assert use_colour("always") and not use_colour("never")
    monkeypatch.setenv("NO_COLOR", "1")
    assert not use_colour("auto")
    assert use_colour("always")
    monkeypatch.setenv("NO_COLOR", "")  # empty means unset (no-color.org)
    assert use_colour("auto")


# ------------------------------------------------------------------ serve


@pytest.mark.live
def test_serve_answers_on_the_given_port(tmp_path: Path) -> None:
    port = free_port()
    command = [sys.executable, "-m", "lessons", "serve", "01", "--port", str(port)]
    log = tmp_path / "serve.log"
    server = ServerProcess(
        command, f"http://{HOST}:{port}", ready_path="/openapi.json", log_path=log
    )
    with server:
        response = httpx2.get(server.url + "/", timeout=10)
        assert response.status_code == 200
        assert response.json() == {"message": "Hello, FastAPI is working!"}
    output = log.read_text()
    assert f"Running: uvicorn lessons.fastapi_01_test_app:app --host {HOST} --port {port}" in output
    assert "Finished server process" in output  # SIGTERM stopped it cleanly, as it stops uvicorn


def test_serve_passes_host_port_and_reload_to_uvicorn(monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    calls: list[tuple[str, dict[str, Any]]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: calls.append((app, kwargs)))
    main(["serve", "p03", "--host", "0.0.0.0", "--port", "8123", "--reload"])
    main(["serve", "04_02"])
    (reloading, options), (plain, defaults) = calls
    assert reloading == "lessons.prometheus_03_logging_app:app"
    assert (options["host"], options["port"], options["reload"]) == ("0.0.0.0", 8123, True)
    assert options["reload_dirs"] == str(REPO_ROOT)
    assert plain == "lessons.fastapi_04_02_single_app:app"
    assert (defaults["host"], defaults["port"], defaults["reload"]) == ("127.0.0.1", 8000, False)
    assert defaults["reload_dirs"] is None

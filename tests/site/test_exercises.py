"""Each lesson page's exercise has a solution, docs/exercises/<lesson>/solution.patch; the
suite applies it to a copy of the lesson and runs the exercise's checks on the copy.

A solution that no longer applies, or no longer does what its page asks, fails here; and
every check fails on the lesson as it is, so no check passes without the solution.
"""

from __future__ import annotations

import importlib.util
import json
import platform
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest
from fastapi.testclient import TestClient

from tests.support.lessons import LESSONS
from tests.support.metrics import scrape
from tools.examples import PASSENGER, SURVIVOR
from tools.servers import REPO_ROOT

EXERCISES = REPO_ROOT / "docs" / "exercises"

Check = Callable[[ModuleType, TestClient, Path], None]
CHECKS: dict[str, Check] = {}


def check(name: str) -> Callable[[Check], Check]:
    def register(function: Check) -> Check:
        CHECKS[name] = function
        return function

    return register


def lesson_copy(name: str, folder: Path, solved: bool) -> Path:
    """lessons/<name>.py copied into ``folder`` (beside a link to the committed model),
    with its exercise's solution applied when ``solved``."""
    (folder / "lessons").mkdir(parents=True)
    shutil.copy(REPO_ROOT / "lessons" / f"{name}.py", folder / "lessons")
    (folder / "mlruns").symlink_to(REPO_ROOT / "mlruns")
    if solved:
        patch = EXERCISES / name / "solution.patch"
        subprocess.run(["git", "apply", str(patch)], cwd=folder, check=True, timeout=60)
    return folder / "lessons" / f"{name}.py"


@pytest.fixture
def load(monkeypatch: pytest.MonkeyPatch) -> Callable[[Path], ModuleType]:
    def load_module(path: Path) -> ModuleType:
        module_name = f"exercise_{path.stem}"
        spec = importlib.util.spec_from_file_location(module_name, path)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        monkeypatch.setitem(sys.modules, module_name, module)
        spec.loader.exec_module(module)
        return module

    return load_module


def run_check(name: str, module: ModuleType, log_dir: Path) -> None:
    with TestClient(module.app) as client:
        CHECKS[name](module, client, log_dir)


# ------------------------------------------------------------------ the exercises' checks


@check("fastapi_01_test_app")
def greets_by_name(module: ModuleType, client: TestClient, log_dir: Path) -> None:
    response = client.get("/hello/Ada")
    assert (response.status_code, response.json()) == (200, {"message": "Hello, Ada!"})
    assert client.get("/").json() == {"message": "Hello, FastAPI is working!"}


@check("fastapi_02_roles_app")
def reports_for_admins_only(module: ModuleType, client: TestClient, log_dir: Path) -> None:
    response = client.get("/reports")
    assert (response.status_code, response.json()) == (
        403,
        {"detail": "Access denied: Admins only."},
    )
    module.app.dependency_overrides[module.get_current_user_role] = lambda: "admin"
    response = client.get("/reports")
    assert (response.status_code, response.json()) == (
        200,
        {"reports": "Q1, Q2, Q3", "role": "admin"},
    )


@check("fastapi_03_health_app")
def health_names_python(module: ModuleType, client: TestClient, log_dir: Path) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json()["python"] == platform.python_version()
    schema = client.get("/openapi.json").json()["components"]["schemas"]["HealthResponse"]
    assert "python" in schema["required"]


@check("fastapi_04_single_app")
def answers_a_probability(module: ModuleType, client: TestClient, log_dir: Path) -> None:
    for passenger, prediction in ((PASSENGER, 0), (SURVIVOR, 1)):
        response = client.post("/predict_single", json=passenger)
        assert response.status_code == 200
        answer = response.json()
        assert set(answer) == {"prediction", "survival_status", "probability"}
        assert answer["prediction"] == prediction
        assert (answer["probability"] >= 0.5) == (prediction == 1)
        assert 0 <= answer["probability"] <= 1


@check("fastapi_04_02_single_app")
def refuses_a_large_family(module: ModuleType, client: TestClient, log_dir: Path) -> None:
    family = {**PASSENGER, "SibSp": 8, "Parch": 5}
    response = client.post("/predict_single", json=family)
    assert (response.status_code, response.json()) == (
        422,
        {
            "detail": [
                {
                    "type": "family_too_large",
                    "loc": ["body"],
                    "msg": "SibSp and Parch add up to 13, more than 10",
                    "input": family,
                    "ctx": {"family": 13},
                }
            ]
        },
    )
    just_fits = client.post("/predict_single", json={**PASSENGER, "SibSp": 5, "Parch": 5})
    assert just_fits.status_code == 200


@check("fastapi_05_batch_test_app")
def says_the_batch_size(module: ModuleType, client: TestClient, log_dir: Path) -> None:
    response = client.post("/predict_batch", json=[PASSENGER, SURVIVOR])
    assert (response.status_code, response.json()) == (
        200,
        {
            "batch_size": 2,
            "batch_predictions": [
                {"prediction": 0, "survival_status": "Not Survived", "passenger_index": 0},
                {"prediction": 1, "survival_status": "Survived", "passenger_index": 1},
            ],
        },
    )


@check("prometheus_00_simple_monitoring_app")
def counts_batches(module: ModuleType, client: TestClient, log_dir: Path) -> None:
    assert client.post("/predict_single", json=PASSENGER).status_code == 200
    assert client.post("/predict_batch", json=[PASSENGER, SURVIVOR]).status_code == 200
    metrics = scrape(client)
    assert metrics.value("titanic_predictions_total") == 3
    assert metrics.value("titanic_batches_total") == 1
    assert metrics.types["titanic_batches"] == "counter"


@check("prometheus_01_four_signal_monitor_app")
def summarises_response_sizes(module: ModuleType, client: TestClient, log_dir: Path) -> None:
    sizes = [len(client.get("/health").content) for _ in range(2)]
    metrics = scrape(client)
    assert metrics.types["http_response_size_bytes"] == "summary"
    assert metrics.value("http_response_size_bytes_count", endpoint="/health") == 2
    assert metrics.value("http_response_size_bytes_sum", endpoint="/health") == sum(sizes)


@check("prometheus_02_model_monitor_app")
def observes_fares(module: ModuleType, client: TestClient, log_dir: Path) -> None:
    # The page's batch: fares 7.25 and 71.28, "_sum 78.53".
    batch = [PASSENGER, {**SURVIVOR, "Fare": 71.28}]
    assert client.post("/predict_batch", json=batch).status_code == 200
    metrics = scrape(client)
    assert metrics.types["passenger_fare_distribution"] == "histogram"
    assert metrics.value("passenger_fare_distribution_count") == 2
    assert metrics.value("passenger_fare_distribution_sum") == pytest.approx(78.53)
    assert metrics.value("passenger_fare_distribution_bucket", le="10.0") == 1


@check("prometheus_03_logging_app")
def logs_the_status_in_words(module: ModuleType, client: TestClient, log_dir: Path) -> None:
    assert client.post("/predict_batch", json=[PASSENGER, SURVIVOR]).status_code == 200
    [log] = log_dir.glob("*.jsonl")
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(line["execute"], line["survival_status"]) for line in lines] == [
        (1, "Not Survived"),
        (2, "Survived"),
    ]


@check("prometheus_04_multi_execute_app")
def simulates_one_sex(module: ModuleType, client: TestClient, log_dir: Path) -> None:
    url = "/simulate_predictions?num_executions=20&seed=7"
    response = client.post(f"{url}&sex=female")
    assert response.status_code == 200
    passengers = [item["passenger"] for item in response.json()["predictions"]]
    assert [p["Sex"] for p in passengers] == ["female"] * 20
    # Only the sex changed: everything else is what the same seed gives.
    others = [item["passenger"] for item in client.post(url).json()["predictions"]]
    assert [{**p, "Sex": "female"} for p in others] == passengers
    wrong = client.post(f"{url}&sex=other")
    assert (wrong.status_code, wrong.json()) == (
        422,
        {
            "detail": [
                {
                    "type": "literal_error",
                    "loc": ["query", "sex"],
                    "msg": "Input should be 'male' or 'female'",
                    "input": "other",
                    "ctx": {"expected": "'male' or 'female'"},
                }
            ]
        },
    )


# ------------------------------------------------------------------ the tests


def test_every_lesson_has_an_exercise() -> None:
    assert sorted(CHECKS) == sorted(LESSONS)
    assert sorted(path.name for path in EXERCISES.iterdir()) == sorted(LESSONS)


@pytest.mark.parametrize("name", LESSONS)
def test_the_solution_passes_its_check(
    name: str, tmp_path: Path, log_dir: Path, load: Callable[[Path], ModuleType]
) -> None:
    path = lesson_copy(name, tmp_path / "solved", solved=True)
    run_check(name, load(path), log_dir)


@pytest.mark.parametrize("name", LESSONS)
def test_the_check_fails_without_the_solution(
    name: str, tmp_path: Path, log_dir: Path, load: Callable[[Path], ModuleType]
) -> None:
    path = lesson_copy(name, tmp_path / "unsolved", solved=False)
    with pytest.raises((AssertionError, KeyError, ValueError)):
        run_check(name, load(path), log_dir)


@pytest.mark.parametrize("name", LESSONS)
def test_the_solution_is_lint_clean(name: str, tmp_path: Path) -> None:
    """What the solution teaches passes the project's own linter and formatter."""
    path = lesson_copy(name, tmp_path, solved=True)
    config = str(REPO_ROOT / "pyproject.toml")
    for command in (["check"], ["format", "--check"]):
        result = subprocess.run(
            [sys.executable, "-m", "ruff", *command, "--config", config, "--no-cache", str(path)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", LESSONS)
def test_the_page_hides_the_solution_and_shows_the_patch(name: str) -> None:
    page = (REPO_ROOT / "docs" / "lessons" / f"{name}.md").read_text()
    solution = (
        '??? success "Solution"\n\n'
        f'    ```diff title="docs/exercises/{name}/solution.patch"\n'
        f'    --8<-- "docs/exercises/{name}/solution.patch"\n'
        "    ```\n"
    )
    assert page.count(solution) == 1
    exercise = page.split("\n## Exercise\n", 1)[1]
    assert exercise.index("??? success") > 0, "the task comes before its solution"
    # What the page tells a learner to type is what the suite does (from the repository root).
    assert f"`git apply docs/exercises/{name}/solution.patch`" in exercise


def test_a_solution_that_no_longer_applies_is_found(tmp_path: Path) -> None:
    """The patch carries its context: a lesson changed under it refuses the patch."""
    name = LESSONS[0]
    (tmp_path / "lessons").mkdir()
    source = (REPO_ROOT / "lessons" / f"{name}.py").read_text()
    (tmp_path / "lessons" / f"{name}.py").write_text(source.replace("is working", "runs"))
    patch = EXERCISES / name / "solution.patch"
    result = subprocess.run(["git", "apply", str(patch)], cwd=tmp_path, capture_output=True)
    assert result.returncode != 0

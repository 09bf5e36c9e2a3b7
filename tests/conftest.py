"""Fixtures shared by every test module.

A lesson's test module names its lesson in a module-level ``LESSON`` constant; the
``lesson``, ``subject`` and ``client`` fixtures read it. A behaviour class that several
lessons share is parametrised over them instead (``indirect`` on ``subject``), and the
package's tests give ``subject`` the package (tests/titanic_api/conftest.py), so the
behaviour classes of ``tests/support/`` run against every app that keeps them.
"""

from __future__ import annotations

import importlib
import logging
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest
from fastapi.testclient import TestClient

from tests.support.git import git_status
from tests.support.metrics import Metrics, scrape
from tests.support.package import package_subject
from tests.support.subject import Subject, lesson_subject
from tools.servers import QUIET_ENV, REPO_ROOT

os.environ.update(QUIET_ENV)
# Hypothesis (tests/lessons/test_robustness.py, test_limits_and_faults.py) keeps its cache
# outside the repository.
os.environ.setdefault(
    "HYPOTHESIS_STORAGE_DIRECTORY", str(Path(tempfile.gettempdir()) / "titanic-mlops-hypothesis")
)


@pytest.fixture(autouse=True)
def isolated_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No test writes into the repository or sees a learner's settings.

    Prediction logs go to a temporary folder; the model and log overrides (and
    the package's multiprocess mode) start unset.
    """
    log_dir = tmp_path / "prediction-logs"
    monkeypatch.setenv("PREDICTION_LOG_DIR", str(log_dir))
    for name in ("PREDICTION_LOG_PATH", "TITANIC_MODEL_URI", "PROMETHEUS_MULTIPROC_DIR"):
        monkeypatch.delenv(name, raising=False)
    # As in the course's own set-ups: the package serves /simulate_predictions (off by default).
    monkeypatch.setenv("TITANIC_ENABLE_SIMULATION", "true")
    return log_dir


@pytest.fixture
def log_dir(isolated_environment: Path) -> Path:
    """Where the logging lessons write their prediction logs during this test."""
    return isolated_environment


@pytest.fixture
def repo_root() -> Path:
    return REPO_ROOT


def _lesson_name(request: pytest.FixtureRequest) -> str:
    name = getattr(request.module, "LESSON", None)
    if name is None:
        raise pytest.UsageError(f"{request.module.__name__} must define LESSON")
    return str(name)


@pytest.fixture
def lesson(request: pytest.FixtureRequest) -> ModuleType:
    """The lesson module named by the test module's ``LESSON`` constant."""
    return importlib.import_module(f"lessons.{_lesson_name(request)}")


@pytest.fixture
def subject(request: pytest.FixtureRequest) -> Subject:
    """The app under test: the one given as a parameter (a lesson's module name, or
    ``titanic_api`` for the package), else the module's ``LESSON``."""
    name = getattr(request, "param", None) or _lesson_name(request)
    return package_subject() if name == "titanic_api" else lesson_subject(name)


@pytest.fixture
def client(subject: Subject) -> Iterator[TestClient]:
    """A TestClient with the app's lifespan run (model loaded, log opened)."""
    with TestClient(subject.app) as test_client:
        yield test_client
    subject.app.dependency_overrides.clear()


@pytest.fixture
def broken_model(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Point TITANIC_MODEL_URI at a folder with no model in it."""
    missing = tmp_path / "no-model-here"
    monkeypatch.setenv("TITANIC_MODEL_URI", str(missing))
    return missing


@pytest.fixture
def server_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """What the app writes to uvicorn's error log (captured even if it stops propagating)."""
    logger = logging.getLogger("uvicorn.error")
    logger.addHandler(caplog.handler)
    try:
        yield caplog
    finally:
        logger.removeHandler(caplog.handler)


@pytest.fixture
def metrics(client: TestClient) -> Callable[[], Metrics]:
    """A function that scrapes the client's /metrics: ``metrics().value(name, **labels)``."""
    return lambda: scrape(client)


_STATUS_BEFORE = pytest.StashKey[set[str] | None]()


def pytest_sessionstart(session: pytest.Session) -> None:
    session.config.stash[_STATUS_BEFORE] = git_status()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run if the tests left files behind in the working tree."""
    before = session.config.stash.get(_STATUS_BEFORE, None)
    after = git_status()
    if before is None or after is None:
        return
    left_behind = sorted(after - before)
    if left_behind:
        print("\nThe test run changed the working tree (git status):")
        print("\n".join(f"  {line}" for line in left_behind))
        session.exitstatus = pytest.ExitCode.TESTS_FAILED

"""The package under test: as the contract classes read it, and as a real server.

``package_subject`` describes ``titanic_api`` the way the shared contract classes
(tests/support/contracts.py, tests/support/*_contracts.py) read a lesson, so
the same tests run against the package. ``PackageServer`` starts the package on
127.0.0.1 and a free port, under uvicorn, ``python -m titanic_api`` or gunicorn.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import mlflow

from tests.support.lessons import FINAL_LESSON
from tests.support.subject import Subject
from titanic_api import feedback_metrics, prediction_log, routes, schemas
from titanic_api.app import create_app
from titanic_api.settings import COMMITTED_MODEL, Settings
from tools.servers import HOST, ServerProcess, free_port

GUNICORN_CONF = "titanic_api/gunicorn_conf.py"


def package_subject(settings: Settings | None = None) -> Subject:
    """The package as the contracts read it: a fresh ``create_app()``, built on first use
    (the package reads its settings once, when the app is built), keeping the final
    lesson's contract."""
    return Subject(
        "titanic_api",
        FINAL_LESSON,
        lambda: create_app(settings),
        get_model=routes.get_model,
        committed_model=COMMITTED_MODEL,
        passenger=schemas.Passenger,
        loader=mlflow.sklearn,
        default_log_path=lambda: prediction_log.default_log_path(Settings()),
        registry=lambda app: app.state.metrics.registry,
        # What the package adds to the final lesson (model monitoring), checked exactly by
        # tests/titanic_api/test_feedback.py; the lesson's contracts hold for the rest.
        added_answer_fields=frozenset({"prediction_id"}),
        added_log_keys=frozenset({"prediction_id"}),
        # ... and the refusals of its limits (tests/titanic_api/test_hostile_clients.py).
        added_families={**feedback_metrics.FAMILIES, "http_refusals": "counter"},
    )


class PackageServer(ServerProcess):
    """The package on 127.0.0.1 and a free port, started one of three ways.

    ``how``: ``"uvicorn"`` (``uvicorn titanic_api.main:app``), ``"module"``
    (``python -m titanic_api``, with the package's server limits) or
    ``"gunicorn"`` (``gunicorn -c titanic_api/gunicorn_conf.py``).
    """

    def __init__(
        self,
        how: str = "uvicorn",
        *,
        env: Mapping[str, str] | None = None,
        args: Sequence[str] = (),
        log_path: Path | None = None,
        start_timeout: float = 60.0,
    ) -> None:
        self.port = free_port()
        address = {"TITANIC_HOST": HOST, "TITANIC_PORT": str(self.port)}
        address["TITANIC_BIND"] = f"{HOST}:{self.port}"
        commands = {
            "uvicorn": ["-m", "uvicorn", "titanic_api.main:app", "--host", HOST]
            + ["--port", str(self.port)],
            "module": ["-m", "titanic_api"],
            "gunicorn": ["-m", "gunicorn", "-c", GUNICORN_CONF, "titanic_api.main:app"],
        }
        super().__init__(
            [sys.executable, *commands[how], *args],
            f"http://{HOST}:{self.port}",
            ready_path="/ready",
            env={**address, **(env or {})},
            log_path=log_path,
            start_timeout=start_timeout,
        )

    def workers(self) -> list[int]:
        """The process ids of the server's children (gunicorn's workers)."""
        task = Path(f"/proc/{self.pid}/task/{self.pid}/children")
        return [int(pid) for pid in task.read_text().split()]


def gunicorn_env(tmp_path: Path, workers: int = 2, **settings: str) -> dict[str, str]:
    """gunicorn's environment: ``workers`` workers in multiprocess mode, their metric files in
    a fresh, empty folder under ``tmp_path``, plus ``settings`` (the log's, say)."""
    multiproc = tmp_path / "multiproc"
    multiproc.mkdir()
    return {"PROMETHEUS_MULTIPROC_DIR": str(multiproc), "WEB_CONCURRENCY": str(workers), **settings}

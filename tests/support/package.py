"""What the titanic_api test modules share: the contract adapter and a real server.

``PackageUnderTest`` exposes what the shared contract classes
(tests/support/contracts.py, tests/support/monitoring_contracts.py) read from a lesson module,
so the same tests run against the package. ``PackageServer`` starts the
package on 127.0.0.1 and a free port, under uvicorn or gunicorn.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import mlflow
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from titanic_api import feedback_metrics, prediction_log, routes, schemas
from titanic_api.app import create_app
from titanic_api.settings import COMMITTED_MODEL, Settings
from tools.servers import HOST, ServerProcess, free_port

GUNICORN_CONF = "titanic_api/gunicorn_conf.py"


class PackageUnderTest:
    """A fresh ``create_app()``, dressed as the lesson module the contracts expect."""

    COMMITTED_MODEL = COMMITTED_MODEL
    Passenger = schemas.Passenger
    BatchResponse = schemas.BatchResponse
    get_model = staticmethod(routes.get_model)
    get_bookkeeper = staticmethod(routes.get_prediction_service)
    mlflow = mlflow
    # What the package adds to the final lesson (model monitoring), checked exactly by
    # tests/titanic_api/test_feedback.py; the lesson's contracts hold for the rest.
    ADDED_ANSWER_FIELDS = frozenset({"prediction_id"})
    ADDED_LOG_KEYS = frozenset({"prediction_id"})
    ADDED_FAMILIES = feedback_metrics.FAMILIES

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings

    @functools.cached_property
    def app(self) -> FastAPI:
        """Built on first use, as a lesson reads its environment when it starts: the
        package reads its settings once, when the app is built."""
        return create_app(self.settings)

    @property
    def registry(self) -> CollectorRegistry:
        registry: CollectorRegistry = self.app.state.metrics.registry
        return registry

    @staticmethod
    def default_log_path() -> Path:
        return prediction_log.default_log_path(Settings())


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

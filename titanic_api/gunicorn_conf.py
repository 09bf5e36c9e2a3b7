"""gunicorn settings: several worker processes, with exact metrics across them.

    gunicorn -c titanic_api/gunicorn_conf.py titanic_api.main:app

Why gunicorn and not ``uvicorn --workers N``: prometheus_client's multiprocess
mode keeps each worker's values in files, and a dead worker's live gauges
(``http_requests_in_progress``) must be removed with ``mark_process_dead(pid)``
when it exits, or they stay in the totals for good. uvicorn's own supervisor
offers no hook to run code when a worker exits; gunicorn's ``child_exit`` is
exactly that, and gunicorn restarts the worker. Counters and histograms stay
exact across a worker's death: its files are kept and still added up.

Settings from the environment: ``TITANIC_BIND`` (default 127.0.0.1:8000),
``WEB_CONCURRENCY`` (workers, default 2), ``PROMETHEUS_MULTIPROC_DIR`` (default
a new temporary folder), and the limits of ``titanic_api.settings.ServerSettings``.
"""

import os
import tempfile
from pathlib import Path
from typing import Any

# Before prometheus_client is imported anywhere: it picks its storage at import.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="titanic-metrics-"))

from prometheus_client import multiprocess  # noqa: E402

from titanic_api.metrics import archive_dead_worker  # noqa: E402
from titanic_api.settings import ServerSettings  # noqa: E402

_server = ServerSettings()
bind = os.environ.get("TITANIC_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "titanic_api.server.Worker"
backlog = _server.backlog
keepalive = int(_server.idle_timeout)
graceful_timeout = int(_server.graceful_timeout)
# gunicorn 25+ opens a control socket (for `gunicornc`) under $HOME by default: on the
# container's read-only root that is an ERROR at every start, and nothing here uses it.
control_socket_disable = True


def on_starting(server: Any) -> None:
    """A fresh start: the folder exists, with no values left over from an earlier run."""
    folder = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    folder.mkdir(parents=True, exist_ok=True)
    for stale in [*folder.glob("*.db"), *folder.glob("*.lock")]:
        stale.unlink()


def child_exit(server: Any, worker: Any) -> None:
    """A worker exited (normally or killed): its live gauges leave the totals, and its
    counters and histograms join the archive (one file for all dead workers)."""
    multiprocess.mark_process_dead(worker.pid)
    archive_dead_worker(Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]), worker.pid)

"""gunicorn settings: several worker processes, with exact metrics across them.

    gunicorn -c titanic_api/gunicorn_conf.py titanic_api.main:app

Why gunicorn and not ``uvicorn --workers N``: prometheus_client's multiprocess
mode keeps each worker's values in files, and a dead worker's live gauges
(``http_requests_in_progress``) must be removed with ``mark_process_dead(pid)``
when it exits, or they stay in the totals for good. uvicorn's own supervisor
offers no hook to run code when a worker exits; gunicorn's ``child_exit`` is
exactly that, and gunicorn restarts the worker. Counters and histograms stay
exact across a worker's death: its files are kept and still added up.

Every setting comes from ``titanic_api.settings.ServerSettings`` (``TITANIC_BIND``,
``WEB_CONCURRENCY``, the limits), read once here; ``PROMETHEUS_MULTIPROC_DIR``
defaults to a new temporary folder, set before any worker imports prometheus_client.
"""

import os
import tempfile
from pathlib import Path
from typing import Any

# Before prometheus_client is imported anywhere: it picks its storage at import.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="titanic-metrics-"))

from prometheus_client import multiprocess  # noqa: E402

from titanic_api.metrics import archive_dead_worker  # noqa: E402
from titanic_api.settings import ServerSettings, Settings  # noqa: E402

_server = ServerSettings()
bind = _server.bind
workers = _server.workers
worker_class = "titanic_api.server.Worker"
backlog = _server.backlog
keepalive = int(_server.idle_timeout)
graceful_timeout = int(_server.graceful_timeout)
# gunicorn 25+ opens a control socket (for `gunicornc`) under $HOME by default: on the
# container's read-only root that is an ERROR at every start, and nothing here uses it.
control_socket_disable = True


def on_starting(server: Any) -> None:
    """A fresh start: the folder exists, with no values left over from an earlier run."""
    folder = Settings().multiproc_dir
    assert folder is not None  # set above, before prometheus_client was imported
    folder.mkdir(parents=True, exist_ok=True)
    for stale in [*folder.glob("*.db"), *folder.glob("*.lock")]:
        stale.unlink()


def child_exit(server: Any, worker: Any) -> None:
    """A worker exited (normally or killed): its live gauges leave the totals, and its
    counters and histograms join the archive (one file for all dead workers)."""
    multiprocess.mark_process_dead(worker.pid)
    try:
        archive_dead_worker(Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]), worker.pid)
    except OSError as error:  # its files stay where they are, still counted
        server.log.warning("Could not archive worker %s's metric files: %s", worker.pid, error)

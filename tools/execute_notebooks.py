"""Re-run every notebook in notebooks/ and save its outputs, the way they are committed.

From the repository root::

    python -m tools.execute_notebooks

A learner's *Run All* needs nothing running; this command runs the notebooks
the way a learner who also follows the Prometheus steps would, so the saved
outputs show every section live: it starts the final lesson under uvicorn and
a real Prometheus scraping it (both on free loopback ports, stopped by pid),
sends a minute of traffic with tools.traffic, then executes each notebook with
nbclient (kernel in notebooks/) with ``TITANIC_API_URL`` and
``TITANIC_PROMETHEUS_URL`` pointing at them, and writes the results in place.
Prediction logs go to a temporary folder. Needs ``/usr/bin/prometheus``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from tools import traffic
from tools.make_images import LESSON, start_prometheus
from tools.servers import REPO_ROOT, LessonServer

NOTEBOOK_DIR = REPO_ROOT / "notebooks"
CELL_TIMEOUT = 300


def execute(path: Path) -> float:
    """Run one notebook top to bottom and save it with its outputs; the seconds it took."""
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT,
        kernel_name="python3",
        record_timing=False,  # no timestamps in the committed file
        resources={"metadata": {"path": str(path.parent)}},
    )
    start = time.perf_counter()
    client.execute()
    nbformat.write(notebook, path)
    return time.perf_counter() - start


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.execute_notebooks",
        description="Re-run the notebooks against a live lesson and Prometheus; save outputs.",
    )
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: notebooks/*.ipynb")
    parser.add_argument("--traffic", type=float, default=60.0, help="seconds of traffic first")
    args = parser.parse_args(argv)
    paths = [p.resolve() for p in args.notebooks] or sorted(NOTEBOOK_DIR.glob("*.ipynb"))
    with tempfile.TemporaryDirectory(prefix="titanic-notebooks-") as scratch, ExitStack() as stack:
        folder = Path(scratch)
        logs = folder / "logs"
        server = LessonServer(
            LESSON, env={"PREDICTION_LOG_DIR": str(logs)}, log_path=folder / "uvicorn.log"
        )
        stack.enter_context(server)
        prometheus = stack.enter_context(start_prometheus(server.port, folder))
        print(f"sending traffic for {args.traffic:g} s ...", flush=True)
        print(traffic.run(server.url, args.traffic, 5.0, seed=11).summary(), flush=True)
        os.environ.update(
            TITANIC_API_URL=server.url,
            TITANIC_PROMETHEUS_URL=prometheus.url,
            PREDICTION_LOG_DIR=str(logs),  # where the notebook finds the lesson's log
        )
        for path in paths:
            seconds = execute(path)
            print(f"executed {path.relative_to(REPO_ROOT)} in {seconds:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

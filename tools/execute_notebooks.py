"""Re-run every notebook in notebooks/ and save its outputs, the way they are committed.

From the repository root::

    python -m tools.execute_notebooks

A learner's *Run All* needs nothing running; this command runs the notebooks
the way a learner who also follows the Prometheus steps would, so the saved
outputs show every section live: it starts the final lesson under uvicorn and
a real Prometheus scraping it (both on free loopback ports, stopped by pid),
sends a minute of traffic with tools.traffic, then executes each notebook with
nbclient (kernel in notebooks/) with ``TITANIC_API_URL`` and
``TITANIC_PROMETHEUS_URL`` pointing at them. Prediction logs go to a temporary
folder. Needs ``/usr/bin/prometheus``.

A notebook is written back only if every cell ran and its outputs hold no
error, nothing on stderr, no local path and no host name (``problems``, which
tests/site/test_notebooks.py checks on the committed file too); otherwise the
command names the cells and exits 1, leaving the committed file as it was.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from lessons import LESSONS
from tools import traffic
from tools.servers import REPO_ROOT, LessonServer, PrometheusServer

NOTEBOOK_DIR = REPO_ROOT / "notebooks"
CELL_TIMEOUT = 300  # seconds for any one cell


def execute(
    notebook: nbformat.NotebookNode, folder: Path = NOTEBOOK_DIR, timeout: float = CELL_TIMEOUT
) -> float:
    """Run ``notebook`` top to bottom in place, as *Run All* in ``folder`` would; seconds.

    Raises nbclient's CellExecutionError, naming the cell, if a cell fails.
    """
    client = NotebookClient(
        notebook,
        timeout=timeout,
        kernel_name="python3",
        record_timing=False,  # no timestamps in the committed file
        resources={"metadata": {"path": str(folder)}},
    )
    start = time.perf_counter()
    client.execute()
    return time.perf_counter() - start


def text_outputs(notebook: nbformat.NotebookNode) -> Iterator[tuple[int, str, str]]:
    """(cell index, output kind, text) for every textual output; images are left out."""
    for index, cell in enumerate(notebook.cells):
        for output in cell.get("outputs", []):
            if output.output_type == "stream":
                yield index, f"stream:{output.name}", output.text
            elif output.output_type == "error":
                yield index, "error", f"{output.ename}: {output.evalue}"
            else:
                for mime, data in output.get("data", {}).items():
                    if mime.startswith("text/"):
                        yield index, mime, data if isinstance(data, str) else "".join(data)


def local_details() -> list[str]:
    """Strings that would tie a saved output to this machine."""
    details = [str(REPO_ROOT), str(Path.home()), tempfile.gettempdir(), "/work/", "/tmp/"]
    return [d for d in details if d not in ("/", "")]


def problems(notebook: nbformat.NotebookNode) -> list[str]:
    """Outputs that must not be committed: errors, stderr, local paths, the host name."""
    host = re.compile(rf"\b{re.escape(socket.gethostname())}\b")
    found = []
    for index, kind, text in text_outputs(notebook):
        if kind in ("error", "stream:stderr"):
            found.append(f"cell {index} ({kind}): {text[:500]}")
        for detail in local_details():
            if detail in text:
                found.append(f"cell {index} ({kind}) shows {detail!r}")
        if host.search(text):
            found.append(f"cell {index} ({kind}) shows the host name")
    return found


def refresh(path: Path) -> bool:
    """Execute the notebook at ``path`` and save it if its outputs are clean; True if saved."""
    notebook = nbformat.read(path, as_version=4)
    name = path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path
    try:
        seconds = execute(notebook, path.parent)
    except CellExecutionError as error:
        print(f"{name}: a cell failed, file left as it was:\n{error}", flush=True)
        return False
    found = problems(notebook)
    if found:
        print(f"{name}: not saved, the outputs show:", *found, sep="\n  ", flush=True)
        return False
    nbformat.write(notebook, path)
    print(f"executed {name} in {seconds:.0f} s", flush=True)
    return True


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
            LESSONS[-1], env={"PREDICTION_LOG_DIR": str(logs)}, log_path=folder / "uvicorn.log"
        )
        stack.enter_context(server)
        prometheus = stack.enter_context(PrometheusServer(server.port, folder))
        print(f"sending traffic for {args.traffic:g} s ...", flush=True)
        print(traffic.run(server.url, args.traffic, 5.0, seed=11).summary(), flush=True)
        os.environ.update(
            TITANIC_API_URL=server.url,
            TITANIC_PROMETHEUS_URL=prometheus.url,
            PREDICTION_LOG_DIR=str(logs),  # where the notebook finds the lesson's log
        )
        saved = [refresh(path) for path in paths]
    return 0 if all(saved) else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""The walkthrough notebook's helpers: run a lesson when needed, show its code and answers.

notebooks/titanic_mlops_walkthrough.ipynb imports these, so that it opens on
the lessons rather than on the machinery::

    runner = LessonRunner("http://127.0.0.1:8000")
    url = runner.serve("fastapi_01_test_app")  # a running lesson's base URL
    show(requests.get(url + "/", timeout=10))
    runner.close()  # stops the server it started, removes its scratch folder

Servers are started with tools.servers.LessonServer, exactly as a learner
starts a lesson (``uvicorn lessons.<name>:app`` on 127.0.0.1), and stopped by
their own process id.
"""

from __future__ import annotations

import atexit
import importlib
import inspect
import json
import os
import tempfile
import urllib.parse
from pathlib import Path
from types import ModuleType

import requests
from IPython.display import Markdown, display

from tools.servers import REPO_ROOT, LessonServer, is_serving


class LessonRunner:
    """Makes one lesson at a time answer over HTTP.

    ``serve(lesson)`` uses the server at ``api_url`` when it is that lesson (the
    title in its /openapi.json is the lesson app's title), so a learner may run
    a lesson in a terminal; otherwise it starts the lesson on a free port, after
    stopping the one it started before. Those servers write their prediction
    logs and their output into a temporary folder that ``close()`` removes;
    ``close()`` also runs when the Python process exits, so no server outlives
    the notebook's kernel.
    """

    def __init__(self, api_url: str) -> None:
        self.api_url = api_url
        self.started: LessonServer | None = None
        self._scratch = tempfile.TemporaryDirectory(prefix="titanic-notebook-")
        self.scratch_dir = Path(self._scratch.name)
        self._seen_elsewhere: set[str] = set()  # titles at api_url that were not wanted
        atexit.register(self.close)

    def serve(self, lesson: str) -> str:
        """Make ``lesson`` answer over HTTP; its base URL."""
        self.stop()
        wanted = importlib.import_module(f"lessons.{lesson}").app.title
        found = title_at(self.api_url)
        if found == wanted:
            print(f"Using the {lesson} server already running at {self.api_url}")
            return self.api_url
        if found is not None and found not in self._seen_elsewhere:
            self._seen_elsewhere.add(found)
            print(f"({self.api_url} serves {found!r}: for other lessons, this starts its own.)")
        server = LessonServer(
            lesson,
            env={"PREDICTION_LOG_DIR": str(self.scratch_dir)},
            log_path=self.scratch_dir / f"{lesson}.log",  # uvicorn's output, to debug
        )
        server.start()
        self.started = server
        print(
            f"Started `uvicorn lessons.{lesson}:app` at {server.url} "
            f"(pid {server.pid}, answering after {server.ready_after:.1f} s)"
        )
        return server.url

    def stop(self) -> None:
        """Stop the lesson server this runner started, if any."""
        if self.started is not None:
            server, self.started = self.started, None
            server.stop()
            print(f"Stopped {server.lesson} (pid {server.pid})")

    def close(self) -> None:
        """Stop the server and remove the scratch folder (a second call does nothing)."""
        self.stop()
        self._scratch.cleanup()

    def log_dir(self) -> Path:
        """Where the lesson serving now writes its prediction log.

        The scratch folder when this runner started it; otherwise the folder a
        server started by hand uses: ``PREDICTION_LOG_DIR``, or ``logs/``.
        """
        if self.started is not None:
            return self.scratch_dir
        return Path(os.environ.get("PREDICTION_LOG_DIR", REPO_ROOT / "logs"))

    def latest_log(self) -> Path:
        """The newest prediction log (``predictions_*.jsonl``) in ``log_dir()``."""
        logs = list(self.log_dir().glob("predictions_*.jsonl"))
        if not logs:
            raise FileNotFoundError(f"no predictions_*.jsonl in {self.log_dir()}")
        return max(logs, key=lambda path: path.stat().st_mtime)


def title_at(url: str) -> str | None:
    """The title of the FastAPI app answering at ``url``, or None."""
    if not is_serving(url + "/openapi.json"):
        return None
    try:
        title = requests.get(url + "/openapi.json", timeout=5).json()["info"]["title"]
    except (requests.RequestException, ValueError, KeyError, TypeError):
        return None
    return title if isinstance(title, str) else None


def relative(text: str) -> str:
    """``text`` with the repository's location left out (saved outputs name no local path)."""
    return text.replace(f"{REPO_ROOT}{os.sep}", "")


def _where(obj: object) -> Path:
    source = inspect.getsourcefile(obj)  # type: ignore[arg-type]
    if source is None:
        raise TypeError(f"{obj!r} has no source file")
    return Path(source).resolve().relative_to(REPO_ROOT)


def show_source(*objects: object) -> None:
    """Show the source of functions or classes, read from their lesson file right now."""
    for obj in objects:
        obj = inspect.unwrap(obj)  # type: ignore[arg-type]  # past decorators
        lines, first = inspect.getsourcelines(obj)
        code = "".join(lines)
        display(
            Markdown(
                f"`{_where(obj)}`, lines {first}-{first + len(lines) - 1}:\n```python\n{code}```"
            )
        )


def show_lines(module: ModuleType, first: str, last: str) -> None:
    """Show the lines of a lesson file from the one containing ``first`` to the next
    one starting with ``last``."""
    where = _where(module)
    lines = (REPO_ROOT / where).read_text(encoding="utf-8").splitlines()
    start = next((i for i, line in enumerate(lines) if first in line), None)
    if start is None:
        raise ValueError(f"no line of {where} contains {first!r}")
    end = next((i for i in range(start, len(lines)) if lines[i].startswith(last)), None)
    if end is None:
        raise ValueError(f"no line of {where} after line {start + 1} starts with {last!r}")
    code = "\n".join(lines[start : end + 1])
    display(Markdown(f"`{where}`, lines {start + 1}-{end + 1}:\n```python\n{code}\n```"))


def introduce(lesson: str) -> None:
    """The lesson's summary and what it adds, then the rest of its docstring, folded."""
    doc = inspect.getdoc(importlib.import_module(f"lessons.{lesson}")) or ""
    summary, _, rest = doc.partition("\n")
    adds, _, details = rest.strip().partition("\n\n")
    text = f"**`lessons/{lesson}.py`**: {summary}\n\n"
    if adds:
        text += f"> {adds.replace(chr(10), ' ')}\n\n"
    if details.strip():
        text += (
            "<details><summary>The rest of the lesson's docstring</summary>\n\n"
            f"{details.strip()}\n\n</details>\n\n"
        )
    display(Markdown(text + f"Run it yourself: `uvicorn lessons.{lesson}:app --reload`"))


def show(response: requests.Response) -> None:
    """Print a response: method, path, status code, and the body (JSON indented)."""
    url = urllib.parse.urlsplit(str(response.request.url))
    path = url.path + (f"?{url.query}" if url.query else "")
    print(f"{response.request.method} {path} -> {response.status_code}")
    try:
        print(json.dumps(response.json(), indent=2))
    except ValueError:
        print(response.text)

"""Where the package's CPU goes on 1,000-passenger batches: py-spy samples, sorted by part.

While one client sends batches back to back, ``py-spy record`` samples the
server's busy thread; each sample is put under the part of the work its
innermost frame in ``titanic_api`` belongs to (the model's trees when
scikit-learn's ensemble code runs below the model call).
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections import Counter
from pathlib import Path

from benchmarks.load import time_requests
from benchmarks.targets import Target

RATE = 250  # samples per second
HTTP = "HTTP (uvicorn's h11 parser), routing, middleware, the rest"
TREES = "the model: its trees (`predict_proba` of the gradient boosting)"
# The innermost titanic_api frame's file and function -> the part of the work.
PARTS = (
    ("titanic_api/model.py", "", "the model: building its input, the numeric imputer"),
    ("titanic_api/body.py", "", "reading and validating the body (`model_validate_json`)"),
    ("titanic_api/prediction_log.py", "", "the log lines: encoding and appending them"),
    ("titanic_api/profile.py", "", "model quality: counting features into the drift bins"),
    (
        "titanic_api/feedback",
        "",
        "model quality: prediction ids, the feedback store, the drift counts",
    ),
    ("titanic_api/metrics.py", "GoldenSignals", HTTP),
    ("titanic_api/metrics.py", "", "the model metrics (bulk histograms, counters)"),
    ("titanic_api/", "record", "the bookkeeping: building the log records"),
    ("titanic_api/", "predict_batch", "building and encoding the answer"),
)


def part(stack: list[str]) -> str:
    """The part of the work one sampled stack (outermost frame first) belongs to."""
    inner = [frame for frame in stack if "titanic_api/" in frame]
    if not inner:
        return HTTP
    frame = inner[-1]
    if "titanic_api/model.py" in frame and any("sklearn/ensemble" in f for f in stack):
        return TREES
    for path, function, name in PARTS:
        if path in frame and function in frame.split(" (")[0]:
            return name
    return HTTP


def shares(raw: str) -> tuple[dict[str, float], int]:
    """py-spy's raw output (``stack count`` per line) -> each part's share, and the samples."""
    counts: Counter[str] = Counter()
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            counts[part(stack.split(";"))] += int(count)
    total = sum(counts.values())
    return ({name: n / total for name, n in counts.most_common()} if total else {}), total


def profile(target: Target, body: bytes, seconds: float, out: Path) -> tuple[dict[str, float], int]:
    """Sample ``target`` with py-spy while one client sends ``body`` back to back."""
    spy = shutil.which("py-spy")
    if spy is None:
        raise FileNotFoundError("py-spy is not installed (requirements-dev.txt)")
    command = [spy, "record", "-r", str(RATE), "-f", "raw", "-o", str(out)]
    command += ["-p", str(target.server.pid), "-d", str(int(seconds))]
    with subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) as spying:
        deadline = time.monotonic() + seconds + 2
        while time.monotonic() < deadline and spying.poll() is None:
            time_requests(target.server.url, target.api.batch_path or "", [body], repeat=5)
        spying.wait(timeout=30)
    return shares(out.read_text())

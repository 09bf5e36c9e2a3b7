"""What the monitoring behaviour classes share.

The example batches, the metric families each monitoring lesson adds, the scrape
arithmetic (``total``, ``changes``), the prediction log's files and lines, and a
model that counts its calls. The behaviour classes themselves are in
``golden_signals_contracts`` (prometheus_00, 01), ``model_metrics_contracts``
(prometheus_02, with how they are all written), ``prediction_log_contracts``
(prometheus_03) and ``simulation_contracts`` (prometheus_04).
"""

from __future__ import annotations

import json
import signal
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from fastapi.testclient import TestClient

from tests.support.lessons import METRICS_LESSONS
from tests.support.metrics import Metrics
from tests.support.subject import Subject
from tools.examples import CHILD, PASSENGER, SURVIVOR

Scrape = Callable[[], Metrics]

BATCH = [PASSENGER, SURVIVOR, CHILD]
BAD_PASSENGER = {**PASSENGER, "Age": -5}
FEATURES = ["Pclass", "Sex", "Age", "SibSp", "Parch", "Fare", "Embarked"]
LOG_KEYS = {
    "execute",
    "execution_time",
    "experiment_id",
    "run_id",
    "model_id",
    "model_uri",
    "prediction_type",
    *FEATURES,
    "prediction",
    "probability",
}
CLASSES = {0: "Not Survived", 1: "Survived"}
UNMATCHED = "<unmatched>"
# The HTTP methods of RFC 9110 and RFC 5789: the only values the method label may keep.
STANDARD_METHODS = {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}
LATENCY_BUCKETS = [
    "0.001",
    "0.0025",
    "0.005",
    "0.0075",
    "0.01",
    "0.025",
    "0.05",
    "0.1",
    "0.25",
    "0.5",
    "1.0",
    "2.5",
    "+Inf",
]
JSON = {"content-type": "application/json"}
# Last lines an existing prediction log may end with (each a whole line, newline included).
DAMAGED_LAST_LINES = {
    "not-json": b"this is not JSON\n",
    "empty-line": b"\n",
    "not-utf-8": b'{"execute": 3\xff}\n',
    "not-an-object": b"[3]\n",
    "no-execute": b'{"prediction": 0}\n',
    "execute-null": b'{"execute": null}\n',
    "execute-text": b'{"execute": "3"}\n',
    "execute-fraction": b'{"execute": 2.5}\n',
    "execute-negative": b'{"execute": -3}\n',
    "execute-bool": b'{"execute": true}\n',
    "execute-overflows-a-float": b'{"execute": 1e400}\n',
    "execute-huge": b'{"execute": 1' + b"0" * 5_000 + b"}\n",
    "nested-deep": b"[" * 100_000 + b"]" * 100_000 + b"\n",
    "execute-nested-deep": b'{"execute": ' + b'{"a": ' * 50_000 + b"1" + b"}" * 50_001 + b"\n",
}
MODEL_DETAIL = {"detail": "The model is not loaded: see the server log for why."}

# The metric families (as the parser names them, without _total) each lesson adds,
# beside the process collector's process_* families (prometheus_01 on).
FAMILIES_ADDED = {
    "prometheus_00_simple_monitoring_app": {"titanic_predictions": "counter"},
    "prometheus_01_four_signal_monitor_app": {
        "http_requests": "counter",
        "http_request_duration_seconds": "histogram",
        "http_errors": "counter",
        "http_requests_in_progress": "gauge",
    },
    "prometheus_02_model_monitor_app": {
        "titanic_predictions_output": "counter",
        "prediction_type": "counter",
        "passenger_age_distribution": "histogram",
        "titanic_survival_probability": "histogram",
    },
    "prometheus_03_logging_app": {"prediction_log_errors": "counter"},
    "prometheus_04_multi_execute_app": {},
}


def expected_families(lesson_name: str) -> dict[str, str]:
    """Every metric family (name -> type) the lesson's /metrics should show, bar process_*."""
    families: dict[str, str] = {}
    for name in METRICS_LESSONS[: METRICS_LESSONS.index(lesson_name) + 1]:
        families.update(FAMILIES_ADDED[name])
    return families


def own_families(metrics: Metrics) -> dict[str, str]:
    """The scrape's families, without the process collector's and the _created gauges."""
    return {
        name: kind
        for name, kind in metrics.types.items()
        if not name.startswith("process_") and not name.endswith("_created")
    }


def total(metrics: Metrics, name: str, **labels: str) -> float:
    """The sum of every sample called ``name`` whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(
        value
        for (sample, sample_labels), value in metrics.samples.items()
        if sample == name and wanted <= sample_labels
    )


def changes(before: Metrics, after: Metrics, prefix: str = "") -> dict[tuple[str, str], float]:
    """Every sample that changed between two scrapes (name, sorted labels) -> difference.

    Leaves out the process collector, the _created timestamps and the (timing
    dependent) latency histogram's buckets and sum.
    """
    keys = set(before.samples) | set(after.samples)
    changed = {}
    for name, labels in keys:
        if name.startswith("process_") or name.endswith("_created"):
            continue
        if name.startswith("http_request_duration_seconds") and not name.endswith("_count"):
            continue
        difference = after.samples.get((name, labels), 0.0) - before.samples.get((name, labels), 0)
        if difference and name.startswith(prefix):
            changed[(name, ",".join(f"{k}={v}" for k, v in sorted(labels)))] = difference
    return changed


def model_probabilities(subject: Subject, passengers: list[dict[str, object]]) -> list[float]:
    """P(survived) for each passenger, straight from the lesson's loaded model."""
    return subject.app.state.model.predict_proba(pd.DataFrame(passengers))[:, 1].tolist()


def predict_single(client: TestClient, passenger: dict[str, object]) -> int:
    response = client.post("/predict_single", json=passenger)
    assert response.status_code == 200, response.text
    return int(response.json()["prediction"])


def predict_batch(client: TestClient, passengers: list[dict[str, object]]) -> list[int]:
    response = client.post("/predict_batch", json=passengers)
    assert response.status_code == 200, response.text
    items = response.json()["batch_predictions"]
    assert [item["passenger_index"] for item in items] == list(range(len(passengers)))
    return [int(item["prediction"]) for item in items]


def force_failure(subject: Subject) -> TestClient:
    """A client of the lesson whose model dependency raises (answered 500, not re-raised)."""

    def broken_model() -> None:
        raise RuntimeError("forced failure for the test")

    subject.app.dependency_overrides[subject.get_model] = broken_model
    return TestClient(subject.app, raise_server_exceptions=False)


def log_files(log_dir: Path) -> list[Path]:
    return sorted(log_dir.glob("predictions_*.jsonl"))


def the_log(log_dir: Path) -> Path:
    """The one prediction log this test's server start created."""
    [path] = log_files(log_dir)
    return path


def read_log(path: Path) -> list[dict[str, Any]]:
    """Every line of a prediction log, each of which must be whole JSON."""
    data = path.read_bytes()
    assert not data or data.endswith(b"\n"), "the log ends in a torn line"
    return [json.loads(line) for line in data.decode().splitlines()]


def committed_model_details(subject: Subject) -> dict[str, object]:
    """Which model answered, read from the committed model's own MLmodel file."""
    mlmodel = yaml.safe_load((subject.committed_model / "MLmodel").read_text())
    return {
        "experiment_id": "1",
        "run_id": mlmodel["run_id"],
        "model_id": subject.committed_model.parent.name,
        "model_uri": str(subject.committed_model),
    }


def check_log_line(
    line: dict[str, Any], subject: Subject, passenger: dict[str, object], kind: str
) -> None:
    """One log line: the documented keys, the model, the input, a consistent prediction."""
    # The package adds keys to real traffic's lines (the prediction id).
    added = set(subject.added_log_keys) if kind != "simulation" else set()
    assert set(line) == LOG_KEYS | added
    assert {key: line[key] for key in FEATURES} == passenger
    assert line["prediction_type"] == kind
    details = committed_model_details(subject)
    assert {key: line[key] for key in details} == details
    written = pd.Timestamp(line["execution_time"]).to_pydatetime()
    assert written.utcoffset() == timedelta(0), "execution_time must be ISO 8601 in UTC"
    probability = line["probability"]
    assert set(probability) == {"Not Survived", "Survived"}
    assert probability["Not Survived"] + probability["Survived"] == pytest.approx(1, abs=1e-9)
    more_likely = 1 if probability["Survived"] > probability["Not Survived"] else 0
    assert line["prediction"] == more_likely


@contextmanager
def file_size_limit(max_bytes: int) -> Iterator[None]:
    """No file of this process may grow past ``max_bytes``: a disk that fills up mid-write.

    A write that crosses the limit is cut short (the kernel writes what fits and
    says how much); the next one fails with EFBIG. SIGXFSZ, which would kill the
    process, is ignored meanwhile.
    """
    resource = pytest.importorskip("resource", reason="file size limits need a Unix system")
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)


class CountingModel:
    """Wraps the loaded model and counts calls to predict and predict_proba."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.calls: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.model, name)

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            return method(*args, **kwargs)

        return counted

"""What the monitoring lessons promise, written once as behaviour classes.

Each class is one behaviour, tested in the module of the lesson that brings it, over
every lesson that keeps it; the package's tests run them all on ``titanic_api``::

    LESSON = "prometheus_02_model_monitor_app"
    @pytest.mark.parametrize("subject", MODEL_METRICS_LESSONS, indirect=True)
    class TestModelMetrics(ModelMetricsContract):

(tests/lessons/test_course_shape.py checks that this example is what that module says).

- ``MetricsEndpointContract``: prometheus_00 on (GET /metrics, the prediction counter,
  one registry per app);
- ``GoldenSignalsContract``: prometheus_01 on (traffic, latency, errors, saturation,
  bounded labels);
- ``ModelMetricsContract``: prometheus_02 on (predicted class, request kind, ages,
  survival probability);
- ``PredictionLogContract``: prometheus_03 on (the JSON-lines log on disk);
- ``SimulationContract``: prometheus_04 (POST /simulate_predictions).

The classes read only the ``subject`` fixture (tests/support/subject.py): its app, model
dependency, registry, committed model, default log path and ``Passenger`` schema, so
the package is held to them as it is, not dressed as a lesson. Every
value is read back: metrics from /metrics with prometheus_client's parser
(``tests.support.metrics.Metrics``), log lines from the file. An app's metrics live in a
registry that outlives one test, so the tests compare a scrape taken before a
known sequence of requests with one taken after it, and assert the exact
difference.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import prometheus_client
import pytest
import yaml
from fastapi.testclient import TestClient

from tests.support.lessons import GOLDEN_SIGNALS_LESSONS, METRICS_LESSONS
from tests.support.metrics import Metrics, scrape
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


# ---------------------------------------------------------------- prometheus_00 on


class MetricsEndpointContract:
    """prometheus_00 on: GET /metrics itself, one counter of passengers, the lesson's registry."""

    def test_metrics_answers_200_without_redirect(self, client: TestClient) -> None:
        response = client.get("/metrics", follow_redirects=False)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        assert "titanic_predictions" in Metrics.parse(response.text).types

    def test_counter_counts_passengers(self, client: TestClient, metrics: Scrape) -> None:
        start = metrics()
        predict_single(client, PASSENGER)
        after_single = metrics()
        predict_batch(client, BATCH)
        after_batch = metrics()
        assert changes(start, after_single, "titanic_predictions_total") == {
            ("titanic_predictions_total", ""): 1
        }
        assert changes(after_single, after_batch, "titanic_predictions_total") == {
            ("titanic_predictions_total", ""): len(BATCH)
        }
        assert metrics().types["titanic_predictions"] == "counter"

    def test_rejected_requests_are_not_predictions(
        self, client: TestClient, metrics: Scrape
    ) -> None:
        before = metrics()
        assert client.post("/predict_single", json=BAD_PASSENGER).status_code == 422
        assert client.post("/predict_batch", json=[PASSENGER, BAD_PASSENGER]).status_code == 422
        assert client.post("/predict_batch", json=[]).status_code == 422
        assert client.get("/no/such/page").status_code == 404
        assert metrics().value("titanic_predictions_total") == before.value(
            "titanic_predictions_total"
        )

    def test_missing_model_predicts_nothing(
        self, broken_model: Path, client: TestClient, metrics: Scrape
    ) -> None:
        before = metrics()
        response = client.post("/predict_single", json=PASSENGER)
        assert (response.status_code, response.json()) == (503, MODEL_DETAIL)
        assert client.post("/predict_batch", json=BATCH).status_code == 503
        assert metrics().value("titanic_predictions_total") == before.value(
            "titanic_predictions_total"
        )

    def test_metrics_show_only_this_lessons_series(self, subject: Subject, metrics: Scrape) -> None:
        scraped = metrics()
        assert own_families(scraped) == expected_families(subject.keeps) | subject.added_families
        has_process = any(name.startswith("process_") for name in scraped.types)
        # The process collector comes with the golden signals' saturation (CPU, memory).
        assert has_process == (subject.keeps in GOLDEN_SIGNALS_LESSONS)

    def test_own_registry_not_the_default(self, subject: Subject) -> None:
        assert isinstance(subject.registry, prometheus_client.CollectorRegistry)
        assert subject.registry is not prometheus_client.REGISTRY
        assert prometheus_client.REGISTRY.get_sample_value("titanic_predictions_total") is None
        assert subject.registry.get_sample_value("titanic_predictions_total") is not None


# ---------------------------------------------------------------- prometheus_01 on


class GoldenSignalsContract:
    """prometheus_01 on: traffic, latency, errors and saturation for every request."""

    def test_traffic_by_method_route_template_and_status(
        self, client: TestClient, metrics: Scrape
    ) -> None:
        before = metrics()
        assert client.get("/").status_code == 200
        assert client.get("/health").status_code == 200
        predict_single(client, PASSENGER)
        predict_single(client, SURVIVOR)
        predict_batch(client, BATCH)
        assert client.post("/predict_single", json=BAD_PASSENGER).status_code == 422
        assert client.get("/predict_single").status_code == 405
        assert client.get("/no/such/page").status_code == 404
        too_large = client.post("/predict_batch", content=b" " * 2_000_000, headers=JSON)
        assert too_large.status_code == 413
        assert changes(before, metrics(), "http_requests_total") == {
            ("http_requests_total", "endpoint=/,method=GET,status_code=200"): 1,
            ("http_requests_total", "endpoint=/health,method=GET,status_code=200"): 1,
            ("http_requests_total", "endpoint=/predict_single,method=POST,status_code=200"): 2,
            ("http_requests_total", "endpoint=/predict_batch,method=POST,status_code=200"): 1,
            ("http_requests_total", "endpoint=/predict_single,method=POST,status_code=422"): 1,
            ("http_requests_total", "endpoint=/predict_single,method=GET,status_code=405"): 1,
            ("http_requests_total", f"endpoint={UNMATCHED},method=GET,status_code=404"): 1,
            ("http_requests_total", "endpoint=/predict_batch,method=POST,status_code=413"): 1,
        }

    def test_scrapes_of_metrics_are_not_counted(self, client: TestClient, metrics: Scrape) -> None:
        before = metrics()
        for _ in range(5):
            metrics()
        after = metrics()
        assert changes(before, after, "http_") == {}
        assert "/metrics" not in after.label_values("http_requests_total", "endpoint")
        assert "/metrics" not in after.label_values(
            "http_request_duration_seconds_count", "endpoint"
        )

    def test_latency_histogram_per_endpoint(self, client: TestClient, metrics: Scrape) -> None:
        before = metrics()
        for _ in range(3):
            predict_single(client, PASSENGER)
        assert client.get("/").status_code == 200
        after = metrics()
        assert changes(before, after, "http_request_duration_seconds") == {
            ("http_request_duration_seconds_count", "endpoint=/predict_single"): 3,
            ("http_request_duration_seconds_count", "endpoint=/"): 1,
        }
        name = "http_request_duration_seconds"
        assert after.types[name] == "histogram"
        endpoint = "/predict_single"
        bounds = sorted(
            (labels for n, labels in after.samples if n == f"{name}_bucket"),
            key=lambda labels: float(dict(labels)["le"]),
        )
        assert [dict(labels)["le"] for labels in bounds if ("endpoint", endpoint) in labels] == (
            LATENCY_BUCKETS
        )
        cumulative = [
            after.value(f"{name}_bucket", endpoint=endpoint, le=le)
            - before.value(f"{name}_bucket", endpoint=endpoint, le=le)
            for le in LATENCY_BUCKETS
        ]
        assert cumulative == sorted(cumulative), "buckets are cumulative"
        assert cumulative[-1] == 3
        seconds = after.value(f"{name}_sum", endpoint=endpoint) - before.value(
            f"{name}_sum", endpoint=endpoint
        )
        assert 0 < seconds < 60, "seconds, not milliseconds (a bound, not a speed)"

    def test_in_progress_goes_up_during_a_request_and_back_to_zero(
        self, subject: Subject, client: TestClient, metrics: Scrape
    ) -> None:
        model = subject.app.state.model
        inside, release = threading.Event(), threading.Event()

        def slow_model() -> Any:
            inside.set()
            release.wait(30)
            return model

        subject.app.dependency_overrides[subject.get_model] = slow_model
        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(client.post, "/predict_single", json=PASSENGER)
            assert inside.wait(30)
            during = metrics().value("http_requests_in_progress")
            release.set()
            assert pending.result(30).status_code == 200
        assert during == 1
        assert metrics().value("http_requests_in_progress") == 0
        assert metrics().types["http_requests_in_progress"] == "gauge"

    def test_random_unknown_paths_share_one_endpoint_value(
        self, client: TestClient, metrics: Scrape
    ) -> None:
        before = metrics()
        tokens = [uuid.uuid4().hex for _ in range(40)]
        for i, token in enumerate(tokens):
            method = "GET" if i % 2 else "POST"
            assert client.request(method, f"/{token}/x?id={token}").status_code == 404
        after = metrics()
        for name in ("http_requests_total", "http_request_duration_seconds_count"):
            new = after.label_values(name, "endpoint") - before.label_values(name, "endpoint")
            assert new <= {UNMATCHED}
            assert UNMATCHED in after.label_values(name, "endpoint")
        assert changes(before, after, "http_") == {
            ("http_requests_total", f"endpoint={UNMATCHED},method=GET,status_code=404"): 20,
            ("http_requests_total", f"endpoint={UNMATCHED},method=POST,status_code=404"): 20,
            ("http_request_duration_seconds_count", f"endpoint={UNMATCHED}"): 40,
        }
        label_text = " ".join(v for _, labels in after.samples for _, v in labels)
        assert not any(token in label_text for token in tokens)

    def test_invented_methods_share_one_label_value(
        self, client: TestClient, metrics: Scrape
    ) -> None:
        """A method the client makes up is counted as "other", never as a new label value."""
        before = metrics()
        invented = ["FOO", "PROPFIND", "BREW", "X" * 200, f"M{uuid.uuid4().hex.upper()}"]
        for method in invented:
            assert client.request(method, "/predict_single").status_code == 405
            assert client.request(method, "/no/such/page").status_code == 404
        assert client.request("PATCH", "/health").status_code == 405  # a real method keeps its name
        after = metrics()
        assert changes(before, after, "http_requests_total") == {
            ("http_requests_total", "endpoint=/predict_single,method=other,status_code=405"): 5,
            ("http_requests_total", f"endpoint={UNMATCHED},method=other,status_code=404"): 5,
            ("http_requests_total", "endpoint=/health,method=PATCH,status_code=405"): 1,
        }
        methods = after.label_values("http_requests_total", "method")
        assert methods <= {*STANDARD_METHODS, "other"}
        assert total(after, "http_errors_total") == total(before, "http_errors_total")

    def test_unhandled_exception_is_one_500_and_one_error(
        self, subject: Subject, client: TestClient, metrics: Scrape
    ) -> None:
        failing = force_failure(subject)
        before = metrics()
        response = failing.post("/predict_single", json=PASSENGER)
        assert (response.status_code, response.text) == (500, "Internal Server Error")
        after = metrics()
        assert changes(before, after) == {
            ("http_requests_total", "endpoint=/predict_single,method=POST,status_code=500"): 1,
            ("http_errors_total", "endpoint=/predict_single,method=POST"): 1,
            ("http_request_duration_seconds_count", "endpoint=/predict_single"): 1,
        }
        assert after.value("http_requests_in_progress") == 0

    def test_missing_model_is_one_503_and_one_error(
        self, broken_model: Path, client: TestClient, metrics: Scrape
    ) -> None:
        before = metrics()
        assert client.post("/predict_single", json=PASSENGER).status_code == 503
        assert client.post("/predict_batch", json=BATCH).status_code == 503
        assert changes(before, metrics(), "http_errors_total") == {
            ("http_errors_total", "endpoint=/predict_single,method=POST"): 1,
            ("http_errors_total", "endpoint=/predict_batch,method=POST"): 1,
        }
        assert changes(before, metrics(), "http_requests_total") == {
            ("http_requests_total", "endpoint=/predict_single,method=POST,status_code=503"): 1,
            ("http_requests_total", "endpoint=/predict_batch,method=POST,status_code=503"): 1,
        }

    def test_client_errors_are_not_server_errors(self, client: TestClient, metrics: Scrape) -> None:
        before = metrics()
        assert client.post("/predict_single", json=BAD_PASSENGER).status_code == 422
        assert client.get("/no/such/page").status_code == 404
        assert client.get("/predict_batch").status_code == 405
        assert total(metrics(), "http_errors_total") == total(before, "http_errors_total")

    def test_process_cpu_and_memory(self, metrics: Scrape) -> None:
        scraped = metrics()
        assert scraped.types["process_cpu_seconds"] == "counter"
        assert scraped.value("process_cpu_seconds_total") > 0
        assert scraped.value("process_resident_memory_bytes") > 0


# ---------------------------------------------------------------- prometheus_02 on


class ModelMetricsContract:
    """prometheus_02 on: predicted classes, request kinds, input ages, model confidence."""

    def test_known_sequence(self, subject: Subject, client: TestClient, metrics: Scrape) -> None:
        before = metrics()
        singles = [predict_single(client, PASSENGER), predict_single(client, SURVIVOR)]
        batch = predict_batch(client, BATCH)
        after = metrics()
        passengers = [PASSENGER, SURVIVOR, *BATCH]
        predictions = Counter(CLASSES[p] for p in singles + batch)
        ages = [22.0, 38.0, 22.0, 38.0, 4.5]
        assert [p["Age"] for p in passengers] == ages
        assert sorted(predictions.items()) == [("Not Survived", 2), ("Survived", 3)]
        assert changes(before, after, "titanic_predictions") == {
            ("titanic_predictions_total", ""): 5,
            ("titanic_predictions_output_total", "predicted_class=Not Survived"): 2,
            ("titanic_predictions_output_total", "predicted_class=Survived"): 3,
        }
        assert changes(before, after, "prediction_type") == {
            ("prediction_type_total", "type=single"): 2,
            ("prediction_type_total", "type=batch"): 1,
        }
        ages_changed = changes(before, after, "passenger_age_distribution")
        assert ages_changed.pop(("passenger_age_distribution_count", "")) == 5
        assert ages_changed.pop(("passenger_age_distribution_sum", "")) == sum(ages) == 124.5
        for (_, le), count in ages_changed.items():  # only the buckets that moved remain
            assert count == sum(age <= float(le.removeprefix("le=")) for age in ages)
        for le in ("5.0", "25.0", "45.0", "+Inf"):
            moved = after.value("passenger_age_distribution_bucket", le=le) - before.value(
                "passenger_age_distribution_bucket", le=le
            )
            assert moved == {"5.0": 1, "25.0": 3, "45.0": 5, "+Inf": 5}[le]
        probabilities = model_probabilities(subject, passengers)
        name = "titanic_survival_probability"
        assert after.value(f"{name}_count") - before.value(f"{name}_count") == 5
        assert after.value(f"{name}_sum") - before.value(f"{name}_sum") == pytest.approx(
            sum(probabilities), abs=1e-9
        )
        for le in ("0.5", "1.0"):
            moved = after.value(f"{name}_bucket", le=le) - before.value(f"{name}_bucket", le=le)
            assert moved == sum(p <= float(le) for p in probabilities)

    def test_rejected_requests_change_no_model_metric(
        self, client: TestClient, metrics: Scrape
    ) -> None:
        before = metrics()
        assert client.post("/predict_single", json=BAD_PASSENGER).status_code == 422
        assert client.post("/predict_batch", json=[PASSENGER, BAD_PASSENGER]).status_code == 422
        after = metrics()
        for prefix in ("titanic_", "prediction_type", "passenger_age"):
            assert changes(before, after, prefix) == {}

    def test_missing_model_changes_no_model_metric(
        self, broken_model: Path, client: TestClient, metrics: Scrape
    ) -> None:
        before = metrics()
        assert client.post("/predict_single", json=PASSENGER).status_code == 503
        assert client.post("/predict_batch", json=BATCH).status_code == 503
        after = metrics()
        for prefix in ("titanic_", "prediction_type", "passenger_age"):
            assert changes(before, after, prefix) == {}

    def test_one_model_call_per_request(self, subject: Subject, client: TestClient) -> None:
        counting = CountingModel(subject.app.state.model)
        subject.app.state.model = counting
        predict_single(client, PASSENGER)
        assert counting.calls == {"predict_proba": 1}
        predict_batch(client, BATCH)
        assert counting.calls == {"predict_proba": 2}

    def test_labelled_series_exist_before_any_prediction(self, metrics: Scrape) -> None:
        scraped = metrics()
        for predicted_class in ("Survived", "Not Survived"):
            key = (
                "titanic_predictions_output_total",
                frozenset({("predicted_class", predicted_class)}),
            )
            assert key in scraped.samples
        for kind in ("single", "batch"):
            assert ("prediction_type_total", frozenset({("type", kind)})) in scraped.samples

    def test_histogram_buckets(self, metrics: Scrape) -> None:
        scraped = metrics()
        ages = sorted(
            float(dict(labels)["le"])
            for name, labels in scraped.samples
            if name == "passenger_age_distribution_bucket"
        )
        assert ages[-1] == float("inf") and ages[0] <= 5 and ages[-2] >= 80
        probabilities = sorted(
            float(dict(labels)["le"])
            for name, labels in scraped.samples
            if name == "titanic_survival_probability_bucket"
        )
        assert probabilities[-2:] == [1.0, float("inf")] and 0.5 in probabilities


# ---------------------------------------------------------------- prometheus_03 on


class PredictionLogContract:
    """prometheus_03 on: one whole JSON line per predicted passenger, numbered 1, 2, 3 ..."""

    def test_one_line_per_passenger(
        self, subject: Subject, client: TestClient, log_dir: Path, metrics: Scrape
    ) -> None:
        before = metrics()
        single = predict_single(client, PASSENGER)
        batch = predict_batch(client, BATCH)
        lines = read_log(the_log(log_dir))
        assert [line["execute"] for line in lines] == [1, 2, 3, 4]
        assert [line["prediction"] for line in lines] == [single, *batch]
        for line, passenger, kind in zip(
            lines, [PASSENGER, *BATCH], ["single", "batch", "batch", "batch"], strict=True
        ):
            check_log_line(line, subject, passenger, kind)
        probabilities = model_probabilities(subject, [PASSENGER, *BATCH])
        assert [line["probability"]["Survived"] for line in lines] == pytest.approx(
            probabilities, abs=1e-12
        )
        assert metrics().value("prediction_log_errors_total") == before.value(
            "prediction_log_errors_total"
        )

    def test_default_file_named_after_start_time_and_pid(
        self, subject: Subject, log_dir: Path
    ) -> None:
        for _ in range(2):
            with TestClient(subject.app) as client:
                predict_single(client, PASSENGER)
        files = log_files(log_dir)
        assert len(files) == 2, "one new file per server start"
        for path in files:
            assert re.fullmatch(
                rf"predictions_\d{{8}}T\d{{6}}_\d{{6}}Z_{os.getpid()}\.jsonl", path.name
            )
            assert [line["execute"] for line in read_log(path)] == [1]

    def test_default_folder_is_git_ignored(
        self, subject: Subject, monkeypatch: pytest.MonkeyPatch, repo_root: Path
    ) -> None:
        monkeypatch.delenv("PREDICTION_LOG_DIR")
        path = subject.default_log_path()
        assert path.parent == repo_root / "logs"
        assert not path.is_relative_to(repo_root / "mlruns")
        ignored = subprocess.run(
            ["git", "check-ignore", "--quiet", str(path.relative_to(repo_root))],
            cwd=repo_root,
            check=False,
        )
        assert ignored.returncode == 0, "logs/ must be ignored by git"

    def test_rejected_and_failed_requests_are_not_logged(
        self, subject: Subject, client: TestClient, log_dir: Path
    ) -> None:
        assert client.post("/predict_single", json=BAD_PASSENGER).status_code == 422
        assert client.post("/predict_batch", json=[PASSENGER, BAD_PASSENGER]).status_code == 422
        assert force_failure(subject).post("/predict_single", json=PASSENGER).status_code == 500
        assert read_log(the_log(log_dir)) == []

    def test_missing_model_logs_nothing(
        self, broken_model: Path, client: TestClient, log_dir: Path
    ) -> None:
        assert client.post("/predict_batch", json=BATCH).status_code == 503
        assert read_log(the_log(log_dir)) == []

    def test_concurrent_requests_get_unique_gap_free_numbers(
        self, client: TestClient, log_dir: Path, metrics: Scrape
    ) -> None:
        threads, requests_each = 8, 25

        def work(thread: int) -> int:
            passengers = 0
            for i in range(requests_each):
                if (thread + i) % 5 == 0:
                    passengers += len(predict_batch(client, [SURVIVOR, CHILD]))
                else:
                    predict_single(client, {**PASSENGER, "Age": float(thread * 100 + i + 1) / 10})
                    passengers += 1
            return passengers

        before = metrics()
        with ThreadPoolExecutor(threads) as pool:
            passengers = sum(pool.map(work, range(threads)))
        lines = read_log(the_log(log_dir))
        assert len(lines) == passengers == 240
        assert [line["execute"] for line in lines] == list(range(1, passengers + 1))
        singles = sorted(line["Age"] for line in lines if line["prediction_type"] == "single")
        expected = sorted(
            float(t * 100 + i + 1) / 10
            for t in range(threads)
            for i in range(requests_each)
            if (t + i) % 5
        )
        assert singles == expected, "every single prediction logged exactly once"
        after = metrics()
        assert after.value("titanic_predictions_total") - before.value(
            "titanic_predictions_total"
        ) == len(lines)
        assert after.value("http_requests_in_progress") == 0

    def test_append_numbers_on_after_the_last_whole_line(
        self, subject: Subject, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """``execute`` is the line's number in the file: appending goes on from the line count."""
        path = tmp_path / "kept" / "predictions.jsonl"
        path.parent.mkdir()
        earlier = b"".join(
            json.dumps({"execute": n, "prediction": 0}).encode() + b"\n" for n in (1, 2, 41)
        )
        path.write_bytes(earlier + b'{"execute": 42, "Pcla')  # a write cut short by a crash
        monkeypatch.setenv("PREDICTION_LOG_PATH", str(path))
        with TestClient(subject.app) as client:
            predict_single(client, PASSENGER)
            predict_batch(client, [SURVIVOR, CHILD])
        assert path.read_bytes().startswith(earlier)
        lines = read_log(path)
        assert [line["execute"] for line in lines] == [1, 2, 41, 4, 5, 6]
        for line, passenger, kind in zip(
            lines[3:], [PASSENGER, SURVIVOR, CHILD], ["single", "batch", "batch"], strict=True
        ):
            check_log_line(line, subject, passenger, kind)
        assert log_files(tmp_path / "prediction-logs") == [], "no default file when appending"

    @pytest.mark.parametrize("damaged", list(DAMAGED_LAST_LINES), ids=list(DAMAGED_LAST_LINES))
    def test_a_damaged_last_line_never_stops_the_start(
        self,
        subject: Subject,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        server_log: pytest.LogCaptureFixture,
        damaged: str,
    ) -> None:
        """Whatever the existing log's last line holds, the app starts, says so, and numbers on."""
        path = tmp_path / "predictions.jsonl"
        whole = b'{"execute": 1}\n{"execute": 2}\n' + DAMAGED_LAST_LINES[damaged]
        path.write_bytes(whole + b'{"execute": 4, "Pcla')  # and a torn line after it
        monkeypatch.setenv("PREDICTION_LOG_PATH", str(path))
        with TestClient(subject.app) as client:
            assert client.get("/health").json()["status"] == "ok"
            predict_single(client, SURVIVOR)
        data = path.read_bytes()
        assert data.startswith(whole)
        line = json.loads(data[len(whole) :])
        assert line["execute"] == 4, "numbered on after the file's three whole lines"
        check_log_line(line, subject, SURVIVOR, "single")
        assert str(path) in server_log.text, "the server log says what it did with the file"

    def test_file_is_read_once_at_start_not_per_request(
        self, subject: Subject, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The next number is kept in memory: lines someone else appends are not re-counted."""
        path = tmp_path / "predictions.jsonl"
        monkeypatch.setenv("PREDICTION_LOG_PATH", str(path))
        with TestClient(subject.app) as client:
            predict_single(client, PASSENGER)
            with path.open("ab") as file:
                file.write(b'{"note": "appended by hand"}\n' * 5)
            predict_single(client, PASSENGER)
        numbers = [json.loads(line).get("execute") for line in path.read_bytes().splitlines()]
        assert numbers == [1, None, None, None, None, None, 2]

    @pytest.mark.parametrize("where", ["under-a-file", "disk-full"])
    def test_unwritable_log_still_answers_and_counts(
        self, subject: Subject, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
    ) -> None:
        if where == "under-a-file":
            blocker = tmp_path / "file.txt"
            blocker.write_text("a file, not a folder\n")
            path = blocker / "sub" / "log.jsonl"
        else:
            path = Path("/dev/full")
            if not path.exists():
                pytest.skip("no /dev/full on this system")
        monkeypatch.setenv("PREDICTION_LOG_PATH", str(path))
        with TestClient(subject.app) as client:
            before = scrape(client)
            assert predict_single(client, PASSENGER) == 0
            assert predict_batch(client, BATCH) == [0, 1, 1]
            after = scrape(client)
        assert changes(before, after, "prediction_log_errors_total") == {
            ("prediction_log_errors_total", ""): 4
        }
        assert changes(before, after, "titanic_predictions_total") == {
            ("titanic_predictions_total", ""): 4
        }
        if where == "under-a-file":
            assert blocker.read_text() == "a file, not a folder\n"

    def test_disk_filling_up_mid_write_leaves_only_whole_lines(
        self, subject: Subject, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        path = tmp_path / "predictions.jsonl"
        monkeypatch.setenv("PREDICTION_LOG_PATH", str(path))
        with TestClient(subject.app) as client:
            predict_single(client, PASSENGER)
            before = scrape(client)
            line_length = path.stat().st_size
            # Room for one and a half more lines: the batch's write is cut short.
            with file_size_limit(path.stat().st_size + line_length * 3 // 2):
                assert predict_batch(client, BATCH) == [0, 1, 1]
            predict_single(client, SURVIVOR)
            after = scrape(client)
        lines = read_log(path)
        assert [line["execute"] for line in lines] == [1, 2]
        check_log_line(lines[1], subject, SURVIVOR, "single")
        assert changes(before, after, "prediction_log_errors_total") == {
            ("prediction_log_errors_total", ""): len(BATCH)
        }


# ---------------------------------------------------------------- prometheus_04


def simulate(client: TestClient, query: str) -> dict[str, Any]:
    response = client.post(f"/simulate_predictions{query}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def bad_count(kind: str, value: str, msg: str, **ctx: int) -> dict[str, Any]:
    error: dict[str, Any] = {
        "type": kind,
        "loc": ["query", "num_executions"],
        "msg": msg,
        "input": value,
    }
    if ctx:
        error["ctx"] = ctx
    return {"detail": [error]}


BAD_COUNTS = {
    "0": bad_count("greater_than_equal", "0", "Input should be greater than or equal to 1", ge=1),
    "101": bad_count("less_than_equal", "101", "Input should be less than or equal to 100", le=100),
    "-3": bad_count("greater_than_equal", "-3", "Input should be greater than or equal to 1", ge=1),
    "abc": bad_count(
        "int_parsing",
        "abc",
        "Input should be a valid integer, unable to parse string as an integer",
    ),
}


class SimulationContract:
    """prometheus_04: N random valid passengers, predicted, counted and logged like real ones."""

    def test_simulation_counts_and_logs_n_passengers(
        self, subject: Subject, client: TestClient, log_dir: Path, metrics: Scrape
    ) -> None:
        before = metrics()
        body = simulate(client, "?num_executions=7&seed=11")
        after = metrics()
        assert (body["num_executions"], body["seed"]) == (7, 11)
        items = body["predictions"]
        assert [item["passenger_index"] for item in items] == list(range(7))
        passengers = [item["passenger"] for item in items]
        for passenger in passengers:
            subject.passenger.model_validate(passenger)  # valid like real input
        predictions = [item["prediction"] for item in items]
        assert all(item["survival_status"] == CLASSES[item["prediction"]] for item in items)
        survivors = sum(predictions)
        expected = {
            ("titanic_predictions_total", ""): 7,
            ("titanic_predictions_output_total", "predicted_class=Survived"): survivors,
            ("titanic_predictions_output_total", "predicted_class=Not Survived"): 7 - survivors,
            ("prediction_type_total", "type=simulation"): 1,
            ("passenger_age_distribution_count", ""): 7,
            ("titanic_survival_probability_count", ""): 7,
            (
                "http_requests_total",
                "endpoint=/simulate_predictions,method=POST,status_code=200",
            ): 1,
            ("http_request_duration_seconds_count", "endpoint=/simulate_predictions"): 1,
        }
        changed = changes(before, after)
        assert {key: changed.get(key, 0) for key in expected} == expected
        assert changed[("passenger_age_distribution_sum", "")] == pytest.approx(
            sum(p["Age"] for p in passengers), abs=1e-9
        )
        assert changed[("titanic_survival_probability_sum", "")] == pytest.approx(
            sum(model_probabilities(subject, passengers)), abs=1e-9
        )
        for key in changed:
            assert key in expected or key[0].endswith(("_sum", "_bucket")), key
        lines = read_log(the_log(log_dir))
        assert [line["execute"] for line in lines] == list(range(1, 8))
        assert [line["prediction"] for line in lines] == predictions
        for line, passenger in zip(lines, passengers, strict=True):
            check_log_line(line, subject, passenger, "simulation")

    def test_default_is_ten_passengers(self, client: TestClient, metrics: Scrape) -> None:
        before = metrics()
        body = simulate(client, "")
        assert (body["num_executions"], body["seed"], len(body["predictions"])) == (10, None, 10)
        assert changes(before, metrics(), "titanic_predictions_total") == {
            ("titanic_predictions_total", ""): 10
        }

    def test_same_seed_same_passengers(self, client: TestClient) -> None:
        first = simulate(client, "?num_executions=25&seed=7")
        again = simulate(client, "?num_executions=25&seed=7")
        other = simulate(client, "?num_executions=25&seed=8")
        assert first == again
        assert [p["passenger"] for p in other["predictions"]] != [
            p["passenger"] for p in first["predictions"]
        ]

    @pytest.mark.parametrize("count", list(BAD_COUNTS))
    def test_bad_num_executions_gets_422(
        self, client: TestClient, log_dir: Path, metrics: Scrape, count: str
    ) -> None:
        before = metrics()
        response = client.post(f"/simulate_predictions?num_executions={count}&seed=1")
        assert response.status_code == 422
        assert response.json() == BAD_COUNTS[count]
        after = metrics()
        for prefix in ("titanic_", "prediction_", "passenger_age"):
            assert changes(before, after, prefix) == {}
        assert read_log(the_log(log_dir)) == []

    @pytest.mark.parametrize("seed", ["0", "-1", "4294967296", "9" * 100])
    def test_any_whole_number_is_a_seed(self, client: TestClient, seed: str) -> None:
        """``random.Random`` takes any int, so the seed has no bounds; the same one repeats."""
        first = simulate(client, f"?num_executions=3&seed={seed}")
        assert first["seed"] == int(seed)
        assert simulate(client, f"?num_executions=3&seed={seed}") == first

    @pytest.mark.parametrize("seed", ["1.5", "abc", "9" * 5000])
    def test_a_seed_that_is_no_whole_number_gets_422(self, client: TestClient, seed: str) -> None:
        response = client.post(f"/simulate_predictions?num_executions=3&seed={seed}")
        assert response.status_code == 422
        [error] = response.json()["detail"]
        assert error["loc"] == ["query", "seed"]

    def test_edges_1_and_100_are_accepted(self, client: TestClient, metrics: Scrape) -> None:
        before = metrics()
        assert len(simulate(client, "?num_executions=1")["predictions"]) == 1
        assert len(simulate(client, "?num_executions=100")["predictions"]) == 100
        assert changes(before, metrics(), "titanic_predictions_total") == {
            ("titanic_predictions_total", ""): 101
        }

    def test_one_model_call_per_simulation(self, subject: Subject, client: TestClient) -> None:
        counting = CountingModel(subject.app.state.model)
        subject.app.state.model = counting
        simulate(client, "?num_executions=30")
        assert counting.calls == {"predict_proba": 1}

    def test_mixed_traffic_log(self, client: TestClient, log_dir: Path) -> None:
        predict_single(client, PASSENGER)
        predict_batch(client, BATCH)
        simulate(client, "?num_executions=5&seed=3")
        predict_single(client, SURVIVOR)
        lines = read_log(the_log(log_dir))
        assert [line["execute"] for line in lines] == list(range(1, 11))
        assert [line["prediction_type"] for line in lines] == (
            ["single"] + ["batch"] * 3 + ["simulation"] * 5 + ["single"]
        )

    def test_missing_model_simulation_answers_503(
        self, broken_model: Path, client: TestClient, metrics: Scrape, log_dir: Path
    ) -> None:
        before = metrics()
        response = client.post("/simulate_predictions?num_executions=5")
        assert (response.status_code, response.json()) == (503, MODEL_DETAIL)
        assert changes(before, metrics()) == {
            (
                "http_requests_total",
                "endpoint=/simulate_predictions,method=POST,status_code=503",
            ): 1,
            ("http_errors_total", "endpoint=/simulate_predictions,method=POST"): 1,
            ("http_request_duration_seconds_count", "endpoint=/simulate_predictions"): 1,
        }
        assert read_log(the_log(log_dir)) == []

    def test_simulation_series_exists_before_any_simulation(self, metrics: Scrape) -> None:
        key = ("prediction_type_total", frozenset({("type", "simulation")}))
        assert key in metrics().samples

    def test_num_executions_documented_in_openapi(self, client: TestClient) -> None:
        operation = client.get("/openapi.json").json()["paths"]["/simulate_predictions"]["post"]
        [count] = [p for p in operation["parameters"] if p["name"] == "num_executions"]
        assert count["in"] == "query"
        assert count["schema"]["default"] == 10
        assert (count["schema"]["minimum"], count["schema"]["maximum"]) == (1, 100)
        assert count["description"]

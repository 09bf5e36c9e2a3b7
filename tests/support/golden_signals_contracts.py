"""prometheus_00 and prometheus_01 on: GET /metrics and the four golden signals, as
behaviour classes.

Tested in the lessons' modules (tests/lessons/test_prometheus_00_simple_monitoring_app.py,
tests/lessons/test_prometheus_01_four_signal_monitor_app.py) and on ``titanic_api`` by
tests/titanic_api/test_contract.py; ``tests.support.model_metrics_contracts`` says how the
monitoring behaviours are written and read.
"""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import prometheus_client
from fastapi.testclient import TestClient

from tests.support.lessons import GOLDEN_SIGNALS_LESSONS
from tests.support.metrics import Metrics
from tests.support.monitoring import (
    BAD_PASSENGER,
    BATCH,
    JSON,
    LATENCY_BUCKETS,
    MODEL_DETAIL,
    STANDARD_METHODS,
    UNMATCHED,
    Scrape,
    changes,
    expected_families,
    force_failure,
    own_families,
    predict_batch,
    predict_single,
    total,
)
from tests.support.subject import Subject
from tools.examples import PASSENGER, SURVIVOR

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

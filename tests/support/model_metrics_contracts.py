"""prometheus_02 on: the model's own metrics, as a behaviour class; and how all the
monitoring behaviour classes are written.

Each class is one behaviour, tested in the module of the lesson that brings it, over
every lesson that keeps it; the package's tests run them all on ``titanic_api``::

    LESSON = "prometheus_02_model_monitor_app"
    @pytest.mark.parametrize("subject", MODEL_METRICS_LESSONS, indirect=True)
    class TestModelMetrics(ModelMetricsContract):

(tests/lessons/test_course_shape.py checks that this example is what that module says).

- ``MetricsEndpointContract``: prometheus_00 on (GET /metrics, the prediction counter,
  one registry per app) and ``GoldenSignalsContract``: prometheus_01 on (traffic,
  latency, errors, saturation, bounded labels), in ``golden_signals_contracts``;
- ``ModelMetricsContract``: prometheus_02 on (predicted class, request kind, ages,
  survival probability), here;
- ``PredictionLogContract``: prometheus_03 on (the JSON-lines log on disk), in
  ``prediction_log_contracts``;
- ``SimulationContract``: prometheus_04 (POST /simulate_predictions), in
  ``simulation_contracts``;
- what they share (example batches, expected families, log helpers) in ``monitoring``.

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

from collections import Counter
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.support.monitoring import (
    BAD_PASSENGER,
    BATCH,
    CLASSES,
    CountingModel,
    Scrape,
    changes,
    model_probabilities,
    predict_batch,
    predict_single,
)
from tests.support.subject import Subject
from tools.examples import PASSENGER, SURVIVOR

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

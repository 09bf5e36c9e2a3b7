"""prometheus_04: POST /simulate_predictions, as a behaviour class.

Tested in tests/lessons/test_prometheus_04_multi_execute_app.py, and on ``titanic_api``
by tests/titanic_api/test_contract.py; see ``tests.support.model_metrics_contracts`` for how
the monitoring behaviours are read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.support.monitoring import (
    BATCH,
    CLASSES,
    MODEL_DETAIL,
    CountingModel,
    Scrape,
    changes,
    check_log_line,
    model_probabilities,
    predict_batch,
    predict_single,
    read_log,
    the_log,
)
from tests.support.subject import Subject
from tools.examples import PASSENGER, SURVIVOR

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

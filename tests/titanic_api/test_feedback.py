"""Model monitoring in the package: prediction ids, POST /feedback, drift and quality metrics.

In process (TestClient), with the default SQLite store in the test's folder. The live
tests (2 gunicorn workers, 2 replicas on PostgreSQL) are in test_feedback_live.py.
"""

from __future__ import annotations

import json
import re
import shutil
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.support.metrics import Metrics, scrape
from titanic_api import model as model_module
from titanic_api import profile
from titanic_api.app import create_app
from titanic_api.feedback_metrics import PROBABILITY_BUCKETS
from titanic_api.settings import COMMITTED_MODEL
from tools.examples import CHILD, PASSENGER, SURVIVOR

ID = re.compile(r"[0-9a-f]{32}")
VERSION = COMMITTED_MODEL.parent.name  # the model id: the committed model is a folder
REFERENCE = profile.read(COMMITTED_MODEL / profile.PROFILE_PATH)


@pytest.fixture
def serve(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., TestClient]]:
    """Start the package with these environment variables; stopped at the end of the test."""
    clients: list[TestClient] = []

    def start(**env: str) -> TestClient:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        client = TestClient(create_app())
        clients.append(client.__enter__())
        return client

    yield start
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(serve: Callable[..., TestClient]) -> TestClient:
    return serve()


def probability(passenger: dict[str, object]) -> float:
    model = model_module.load(str(COMMITTED_MODEL)).model
    return float(model_module.predict_proba(model, [passenger])[0, 1])


def log_lines(log_dir: Path) -> list[dict[str, Any]]:
    return [
        json.loads(line) for p in log_dir.glob("*.jsonl") for line in p.read_text().splitlines()
    ]


def test_every_real_answer_has_an_id(client: TestClient, log_dir: Path) -> None:
    single = client.post("/predict_single", json=SURVIVOR)
    assert single.status_code == 200
    body = single.json()
    assert ID.fullmatch(body.pop("prediction_id"))
    assert body == {"prediction": 1, "survival_status": "Survived"}
    batch = client.post("/predict_batch", json=[PASSENGER, SURVIVOR]).json()["batch_predictions"]
    ids = [item.pop("prediction_id") for item in batch]
    assert all(ID.fullmatch(i) for i in ids) and len({*ids, single.json()["prediction_id"]}) == 3
    assert batch == [
        {"prediction": 0, "survival_status": "Not Survived", "passenger_index": 0},
        {"prediction": 1, "survival_status": "Survived", "passenger_index": 1},
    ]
    # Each log line carries its id; simulated passengers get none.
    simulated = client.post("/simulate_predictions?num_executions=2&seed=1").json()
    assert all("prediction_id" not in item for item in simulated["predictions"])
    lines = log_lines(log_dir)
    assert [line.get("prediction_id") for line in lines] == [
        single.json()["prediction_id"],
        *ids,
        None,
        None,
    ]


def test_feedback_counts_each_label_once(client: TestClient) -> None:
    [victim, survivor] = [
        item["prediction_id"]
        for item in client.post("/predict_batch", json=[PASSENGER, SURVIVOR]).json()[
            "batch_predictions"
        ]
    ]
    child = client.post("/predict_single", json=CHILD).json()["prediction_id"]
    labels = [
        {"prediction_id": victim, "survived": 1},  # wrong: predicted 0
        {"prediction_id": survivor, "survived": 1},  # right
        {"prediction_id": "f" * 32, "survived": 0},  # no such prediction
        {"prediction_id": victim, "survived": 0},  # a second label for the same prediction
    ]
    response = client.post("/feedback", json=labels)
    assert response.status_code == 200
    assert response.json() == {"accepted": 2, "unknown": 1, "already_labelled": 1}
    again = client.post("/feedback", json=[*labels, {"prediction_id": child, "survived": 1}])
    assert again.json() == {"accepted": 1, "unknown": 1, "already_labelled": 3}

    metrics = scrape(client)
    assert [metrics.value("titanic_feedback_labels_total", result=r) for r in RESULTS] == [3, 2, 4]
    assert metrics.value("titanic_labels_total", model_version=VERSION, outcome="correct") == 2
    assert metrics.value("titanic_labels_total", model_version=VERSION, outcome="wrong") == 1
    p_victim, p_survivor, p_child = (probability(p) for p in (PASSENGER, SURVIVOR, CHILD))
    squared = 0.0
    for p in (p_victim, p_survivor, p_child):  # in the order the labels were accepted
        squared += (p - 1) ** 2
    assert metrics.value("titanic_labels_squared_error_total", model_version=VERSION) == squared
    calibration = {
        (labels["probability_bucket"], labels["actual"]): value
        for (name, labels), value in by_labels(metrics, "titanic_labels_calibration_total")
        if value
    }
    accepted = Counter((bucket(p), "1") for p in (p_victim, p_survivor, p_child))
    assert calibration == dict(accepted)
    assert len(by_labels(metrics, "titanic_labels_calibration_total")) == 20  # all at 0 first


RESULTS = ("accepted", "unknown", "already_labelled")


def bucket(p: float) -> str:
    return PROBABILITY_BUCKETS[min(int(p * 10), 9)]


def by_labels(metrics: Metrics, name: str) -> list[tuple[tuple[str, dict[str, str]], float]]:
    return [
        ((sample, dict(labels)), value)
        for (sample, labels), value in metrics.samples.items()
        if sample == name
    ]


def test_real_passengers_are_counted_into_the_profiles_bins(client: TestClient) -> None:
    before = scrape(client)
    # Every (feature, bin) series exists at 0 from the start, beside its reference ratio.
    observed = by_labels(before, "titanic_feature_observations_total")
    assert sorted((labels["feature"], labels["bin"]) for (_, labels), _ in observed) == sorted(
        (feature, label) for feature, label, _ in REFERENCE.ratios()
    )
    assert all(value == 0 for _, value in observed)
    assert {
        (labels["feature"], labels["bin"]): value
        for (_, labels), value in by_labels(before, "titanic_feature_reference_ratio")
    } == {(feature, label): share for feature, label, share in REFERENCE.ratios()}
    assert before.value("titanic_reference_accuracy", model_version=VERSION) == REFERENCE.accuracy
    assert (
        before.value("titanic_reference_brier_score", model_version=VERSION)
        == REFERENCE.brier_score
    )

    client.post("/predict_batch", json=[PASSENGER, PASSENGER, SURVIVOR])
    client.post("/simulate_predictions?num_executions=50")  # never counted
    after = scrape(client)
    counts = {
        (labels["feature"], labels["bin"]): value
        for (_, labels), value in by_labels(after, "titanic_feature_observations_total")
        if value
    }
    p_passenger, p_survivor = probability(PASSENGER), probability(SURVIVOR)
    probability_bins = REFERENCE.features["survival_probability"]
    expected_probabilities: dict[tuple[str, str], float] = {}
    for p, weight in ((p_passenger, 2), (p_survivor, 1)):
        label = probability_bins.bins[sum(edge <= p for edge in (probability_bins.edges or [])[1:])]
        key = ("survival_probability", label)
        expected_probabilities[key] = expected_probabilities.get(key, 0) + weight
    assert counts == {
        ("Pclass", "3"): 2,
        ("Pclass", "1"): 1,
        ("Sex", "male"): 2,
        ("Sex", "female"): 1,
        ("Age", "[22, 25)"): 2,
        ("Age", "[36, 41)"): 1,
        ("SibSp", "[1, +Inf)"): 3,
        ("Parch", "[0, 1)"): 3,
        ("Fare", "[0, 7.5)"): 2,
        ("Fare", "[47, 78)"): 1,
        ("Embarked", "S"): 2,
        ("Embarked", "C"): 1,
        **expected_probabilities,
    }
    assert after.value("titanic_real_predictions_total", model_version=VERSION) == 3
    assert after.types["titanic_feature_observations"] == "counter"
    assert after.types["titanic_feature_reference_ratio"] == "gauge"


@pytest.mark.parametrize(
    ("body", "location"),
    [
        ([], ["body"]),
        ([{"prediction_id": "a", "survived": 2}], ["body", 0, "survived"]),
        ([{"prediction_id": "a", "survived": True}], ["body", 0, "survived"]),
        ([{"prediction_id": "a", "survived": 1.0}], ["body", 0, "survived"]),
        ([{"prediction_id": 7, "survived": 1}], ["body", 0, "prediction_id"]),
        ([{"prediction_id": "a" * 65, "survived": 1}], ["body", 0, "prediction_id"]),
        ([{"prediction_id": "a", "survived": 1, "extra": 1}], ["body", 0, "extra"]),
        ([{"survived": 1}], ["body", 0, "prediction_id"]),
        ({"prediction_id": "a", "survived": 1}, ["body"]),
    ],
)
def test_bad_feedback_gets_a_422_naming_the_field(
    client: TestClient, body: object, location: list[object]
) -> None:
    response = client.post("/feedback", json=body)
    assert response.status_code == 422
    assert [error["loc"] for error in response.json()["detail"]] == [location]


def test_at_most_1000_labels(client: TestClient) -> None:
    labels = [{"prediction_id": f"{i:032x}", "survived": 1} for i in range(1001)]
    response = client.post("/feedback", json=labels)
    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "too_long"
    assert client.post("/feedback", json=labels[:1000]).json() == {
        "accepted": 0,
        "unknown": 1000,
        "already_labelled": 0,
    }


def test_health_names_the_profile_and_the_store(client: TestClient) -> None:
    body = client.get("/health").json()
    assert (body["reference_profile"], body["feedback_store"]) == ("loaded", "sqlite")


def test_a_model_without_a_profile_serves_without_drift_metrics(
    serve: Callable[..., TestClient], tmp_path: Path
) -> None:
    bare = tmp_path / "model"
    shutil.copytree(COMMITTED_MODEL, bare)
    shutil.rmtree(bare / "extra_files")
    client = serve(TITANIC_MODEL_URI=str(bare))
    body = client.get("/health").json()
    assert (body["status"], body["reference_profile"]) == ("ok", "absent")
    answer = client.post("/predict_single", json=SURVIVOR).json()
    names = scrape(client).names()
    assert not {n for n in names if "reference" in n or "feature_observations" in n}
    assert "titanic_real_predictions_total" in names
    response = client.post(
        "/feedback", json=[{"prediction_id": answer["prediction_id"], "survived": 1}]
    )
    assert response.json() == {"accepted": 1, "unknown": 0, "already_labelled": 0}


def test_the_store_can_be_off(serve: Callable[..., TestClient]) -> None:
    client = serve(TITANIC_FEEDBACK_STORE="off")
    assert client.get("/health").json()["feedback_store"] == "off"
    answer = client.post("/predict_single", json=SURVIVOR).json()
    assert ID.fullmatch(answer["prediction_id"])
    response = client.post(
        "/feedback", json=[{"prediction_id": answer["prediction_id"], "survived": 1}]
    )
    assert response.status_code == 503
    assert response.json() == {
        "detail": "Labels cannot be stored: the feedback store is off (TITANIC_FEEDBACK_STORE=off)."
    }


def test_a_broken_store_never_stops_a_prediction(
    serve: Callable[..., TestClient], tmp_path: Path
) -> None:
    (tmp_path / "a-file").write_text("")
    client = serve(TITANIC_FEEDBACK_STORE=str(tmp_path / "a-file" / "feedback.sqlite3"))
    answer = client.post("/predict_single", json=SURVIVOR)
    assert answer.status_code == 200
    response = client.post(
        "/feedback", json=[{"prediction_id": answer.json()["prediction_id"], "survived": 1}]
    )
    assert response.status_code == 503
    assert response.json()["detail"].startswith("Labels cannot be stored: ")
    metrics = scrape(client)
    assert metrics.value("titanic_feedback_store_errors_total", operation="record") == 1
    assert metrics.value("titanic_feedback_store_errors_total", operation="label") == 1


def test_the_store_defaults_to_a_file_beside_the_logs(client: TestClient, log_dir: Path) -> None:
    client.post("/predict_single", json=SURVIVOR)
    assert (log_dir / "feedback.sqlite3").is_file()


def test_feedback_is_documented(client: TestClient) -> None:
    operation = client.get("/openapi.json").json()["paths"]["/feedback"]["post"]
    assert sorted(operation["responses"]) == ["200", "400", "413", "422", "503"]
    schema = client.get("/openapi.json").json()["components"]["schemas"]
    assert sorted(schema["FeedbackResponse"]["properties"]) == sorted(RESULTS)
    assert "prediction_id" in schema["IdentifiedPrediction"]["properties"]

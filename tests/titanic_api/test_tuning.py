"""titanic_api's speed-ups change nothing a client or a scraper can see.

- the answer goes out before the bookkeeping (metrics, log), and the latency
  metric is the client's wait;
- the hand-encoded batch answer is what ``BatchResponse`` documents;
- the model called without its ColumnTransformer's machinery gives the same
  probabilities, bit for bit;
- the bulk histograms expose what prometheus_client's ``Histogram`` would.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from starlette.types import Message

from benchmarks.run import make_passengers
from tests.support.contracts import lesson_fields
from tests.support.metrics import Metrics
from tests.support.monitoring import log_files, read_log, the_log
from tests.support.package import package_subject
from tests.support.subject import Subject
from titanic_api import model as model_module
from titanic_api.metrics import AGE_BUCKETS, BulkHistogram
from titanic_api.routes import get_prediction_service
from titanic_api.schemas import BatchResponse, Passenger
from titanic_api.service import PredictionService
from tools.examples import PASSENGER, SURVIVOR


@pytest.fixture
def package() -> Subject:
    return package_subject()


@pytest.fixture
def client(package: Subject) -> Iterator[TestClient]:
    with TestClient(package.app) as test_client:
        yield test_client


def registry_now(package: Subject) -> Metrics:
    """The metrics read straight from the registry (no request, so none counted)."""
    assert package.registry is not None
    return Metrics.parse(generate_latest(package.registry).decode())


def log_length(log_dir: Path) -> int:
    return len(read_log(the_log(log_dir))) if log_files(log_dir) else 0


def test_the_answer_is_sent_before_the_metrics_and_the_log(
    client: TestClient, package: Subject, log_dir: Path
) -> None:
    body = json.dumps([PASSENGER, SURVIVOR, PASSENGER]).encode()
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/predict_batch",
        "raw_path": b"/predict_batch",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"application/json")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
    }
    before = registry_now(package)
    lines_before = log_length(log_dir)
    sent: list[Message] = []
    at_answer: dict[str, float] = {}

    async def receive() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            now = registry_now(package)
            at_answer["predictions"] = now.value("titanic_predictions_total")
            at_answer["ages"] = now.value("passenger_age_distribution_count", kind="user")
            at_answer["lines"] = log_length(log_dir)

    asyncio.run(client.app(scope, receive, send))  # type: ignore[arg-type]

    assert sent[0]["status"] == 200
    answer = json.loads(b"".join(m.get("body", b"") for m in sent[1:]))["batch_predictions"]
    assert [lesson_fields(package, item) for item in answer] == [
        {"passenger_index": 0, "prediction": 0, "survival_status": "Not Survived"},
        {"passenger_index": 1, "prediction": 1, "survival_status": "Survived"},
        {"passenger_index": 2, "prediction": 0, "survival_status": "Not Survived"},
    ]
    assert at_answer == {
        "predictions": before.value("titanic_predictions_total"),
        "ages": before.value("passenger_age_distribution_count", kind="user"),
        "lines": lines_before,
    }
    after = registry_now(package)
    assert after.value("titanic_predictions_total") == at_answer["predictions"] + 3
    assert after.value("passenger_age_distribution_count", kind="user") == at_answer["ages"] + 3
    assert log_length(log_dir) == lines_before + 3


def test_latency_is_the_clients_wait_not_the_bookkeeping(
    client: TestClient, package: Subject
) -> None:
    """Slow bookkeeping (1 s), swapped in with dependency_overrides, is not in the latency."""
    recorded: list[str] = []

    class SlowService(PredictionService):
        async def record(self, kind: str, *args: object) -> None:
            time.sleep(1.0)
            recorded.append(kind)

    real: PredictionService = package.app.state.prediction_service
    slow = SlowService(real.metrics, real.log, real.model_details)
    package.app.dependency_overrides[get_prediction_service] = lambda: slow
    before = registry_now(package)
    assert client.post("/predict_single", json=PASSENGER).status_code == 200
    assert recorded == ["single"]  # it ran, before the TestClient returned
    after = registry_now(package)
    labels = {"endpoint": "/predict_single"}
    count = "http_request_duration_seconds_count"
    seconds = "http_request_duration_seconds_sum"
    assert after.value(count, **labels) - before.value(count, **labels) == 1
    assert after.value(seconds, **labels) - before.value(seconds, **labels) < 1.0


def test_batch_answer_is_json_that_matches_its_documented_model(client: TestClient) -> None:
    response = client.post("/predict_batch", json=[PASSENGER, SURVIVOR])
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    answer = BatchResponse.model_validate_json(response.content)
    assert answer.model_dump() == response.json()
    schema = client.get("/openapi.json").json()
    ok = schema["paths"]["/predict_batch"]["post"]["responses"]["200"]
    assert ok["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/BatchResponse"
    }


def test_the_direct_model_call_gives_the_pipelines_probabilities(
    client: TestClient, package: Subject
) -> None:
    model = package.app.state.model
    passengers = make_passengers(1_000)
    assert model_module.is_plain_column_pipeline(model)
    direct = model_module.predict_proba(model, passengers)
    assert np.array_equal(direct, model.predict_proba(pd.DataFrame(passengers)))


def test_other_models_are_called_as_they_are() -> None:
    class Constant:
        def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
            return np.tile([0.25, 0.75], (len(features), 1))

    assert not model_module.is_plain_column_pipeline(Constant())
    assert model_module.predict_proba(Constant(), [PASSENGER]).tolist() == [[0.25, 0.75]]


def test_bulk_histogram_exposes_what_histogram_would() -> None:
    """Values on the bucket bounds, between them and beyond the last one."""
    values = np.array([0.5, 5, 5.0001, 12, 17.9, 18, 100, 100.5, 250, 80, 0.0, 35])
    bulk_registry, classic_registry = CollectorRegistry(), CollectorRegistry()
    bulk = BulkHistogram("ages", "Ages.", AGE_BUCKETS, bulk_registry)
    classic = Histogram("ages", "Ages.", ["kind"], buckets=AGE_BUCKETS, registry=classic_registry)
    bulk.observe_many(values[:5], "user")
    bulk.observe_many(values[5:], "user")
    bulk.observe_many(values[:2], "simulation")
    for value in values:
        classic.labels("user").observe(float(value))
    for value in values[:2]:
        classic.labels("simulation").observe(float(value))
    bulk_samples = Metrics.parse(generate_latest(bulk_registry).decode()).samples
    classic_samples = Metrics.parse(generate_latest(classic_registry).decode()).samples
    assert bulk_samples.keys() == classic_samples.keys()
    for kind in ("user", "simulation"):
        labels = frozenset({("kind", kind)})
        # numpy adds pairwise, Histogram one by one: the sums agree to rounding.
        total = ("ages_sum", labels)
        assert bulk_samples.pop(total) == pytest.approx(classic_samples.pop(total), rel=1e-12)
        del bulk_samples[("ages_created", labels)], classic_samples[("ages_created", labels)]
    assert bulk_samples == classic_samples


GOOD = json.dumps(PASSENGER)
TRICKY_BODIES = [
    GOOD,
    GOOD.replace("22.0", "22"),  # a whole number for a float field
    GOOD.replace("22.0", "1e400"),  # too large for a float: infinity
    GOOD.replace('"SibSp": 1', '"SibSp": 1.0'),  # a float for a whole number
    GOOD.replace('"SibSp": 1', '"SibSp": 1' + "0" * 30),  # beyond 64 bits
    GOOD.replace('"male"', '"m\\u0061le"'),  # an escape that spells the same text
    GOOD.replace('"male"', '"\\ud800"'),  # a lone surrogate
    GOOD.replace("{", '{"Pclass": "1", ', 1),  # a duplicate key, the last one wins
    GOOD.replace("}", ', "Pclass": 2}'),
    "[" + GOOD + "]",
    " " + GOOD + " ",
]


@pytest.mark.parametrize("body", TRICKY_BODIES)
def test_validation_from_bytes_accepts_what_fastapis_path_accepts(body: str) -> None:
    """The fast path (pydantic on the JSON bytes) decides like json.loads + pydantic."""

    def outcome(validate: object) -> object:
        try:
            return validate().model_dump()  # type: ignore[operator]
        except ValueError:
            return "rejected"

    fast = outcome(lambda: Passenger.model_validate_json(body))
    standard = outcome(lambda: Passenger.model_validate(json.loads(body)))
    assert fast == standard

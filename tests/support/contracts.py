"""What the model-serving lessons promise, written once as behaviour classes.

Each class is one behaviour, tested in the module of the lesson that brings it, over
every lesson that keeps it (``subject`` is parametrised with their names)::

    LESSON = "fastapi_05_batch_test_app"
    @pytest.mark.parametrize("subject", BATCH_LESSONS, indirect=True)
    class TestBatch(BatchContract):

(tests/lessons/test_course_shape.py checks that this example is what that module says).
Every check reads real answers: exact JSON, exact status codes, whole 422
bodies, and each lesson's whole OpenAPI schema against its committed snapshot.
"""

from __future__ import annotations

from typing import Any, ClassVar

import httpx2
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from tests.support.subject import Subject
from tools.examples import PASSENGER, SURVIVOR
from tools.servers import REPO_ROOT, LessonServer
from tools.update_openapi import differences, live_schema, snapshot_path

JSON = {"content-type": "application/json"}
# What GET / answers from lesson 04 on (and what a started server is checked with).
API_RUNNING = {"message": "Titanic MLflow API is running"}
FIELDS = ["Pclass", "Sex", "Age", "SibSp", "Parch", "Fare", "Embarked"]


def post_raw(client: TestClient, path: str, body: str | bytes) -> httpx2.Response:
    """POST a body exactly as given (for NaN literals and broken JSON)."""
    return client.post(path, content=body, headers=JSON)


def real_passengers(count: int) -> list[dict[str, Any]]:
    """The first ``count`` complete passengers of the data set, as the API takes them."""
    frame = pd.read_csv(REPO_ROOT / "data" / "titanic.csv")[FIELDS].dropna().head(count)
    return [
        {
            "Pclass": int(row.Pclass),
            "Sex": str(row.Sex),
            "Age": float(row.Age),
            "SibSp": int(row.SibSp),
            "Parch": int(row.Parch),
            "Fare": float(row.Fare),
            "Embarked": str(row.Embarked),
        }
        for row in frame.itertuples()
    ]


class UvicornSmokeContract:
    """The lesson starts the way a learner starts it, and answers over HTTP."""

    smoke_path: ClassVar[str] = "/"
    smoke_json: ClassVar[dict[str, Any]] = {}

    @pytest.mark.live
    def test_runs_under_uvicorn(self, subject: Subject) -> None:
        name = subject.name
        with LessonServer(name) as server:
            response = httpx2.get(server.url + self.smoke_path, timeout=10)
            schema = httpx2.get(server.url + "/openapi.json", timeout=10).json()
        assert response.status_code == 200
        assert response.json() == self.smoke_json
        assert schema["info"]["title"] == subject.app.title


class OpenAPISnapshotContract:
    """Every lesson: its whole OpenAPI schema is its committed tests/lessons/openapi/ snapshot."""

    def test_openapi_schema_is_the_committed_snapshot(self, subject: Subject) -> None:
        name = subject.name
        path = snapshot_path(name)
        assert path.exists(), f"no snapshot: run python -m tools.update_openapi {name}"
        changed = differences(live_schema(name), path.read_text(encoding="utf-8"), name)
        assert not changed, (
            "The lesson's public contract changed. If that is intended, run "
            f"`python -m tools.update_openapi {name}` and commit the snapshot:\n{changed}"
        )

    def test_served_schema_is_the_apps(self, client: TestClient, subject: Subject) -> None:
        assert client.get("/openapi.json").json() == live_schema(subject.name)


def lesson_fields(subject: Subject, item: dict[str, Any]) -> dict[str, Any]:
    """An answer item with only the final lesson's fields.

    The package adds fields to the lesson's answers (``added_answer_fields``: the
    prediction id), checked exactly by its own tests; the contract holds for the rest.
    """
    return {key: value for key, value in item.items() if key not in subject.added_answer_fields}


class ModelApiContract:
    """Lessons 04 on: the model served at /predict_single, loaded once, 503 without it."""

    def test_root(self, client: TestClient) -> None:
        response = client.get("/")
        assert response.status_code == 200
        assert response.json() == API_RUNNING

    def test_health_with_model(self, client: TestClient) -> None:
        response = client.get("/health")
        assert response.status_code == 200
        body = response.json()
        assert body["status"] == "ok"
        assert body["service"] == "titanic-api"
        assert body["dependencies"]["model"] == "loaded"

    @pytest.mark.parametrize(
        ("passenger", "expected"),
        [
            (PASSENGER, {"prediction": 0, "survival_status": "Not Survived"}),
            (SURVIVOR, {"prediction": 1, "survival_status": "Survived"}),
        ],
    )
    def test_predict_single(
        self,
        client: TestClient,
        subject: Subject,
        passenger: dict[str, Any],
        expected: dict[str, Any],
    ) -> None:
        response = client.post("/predict_single", json=passenger)
        assert response.status_code == 200
        assert lesson_fields(subject, response.json()) == expected

    def test_prediction_matches_the_model(self, client: TestClient, subject: Subject) -> None:
        model = subject.app.state.model
        for passenger in real_passengers(20):
            expected = int(model.predict(pd.DataFrame([passenger]))[0])
            assert client.post("/predict_single", json=passenger).json()["prediction"] == expected

    def test_model_loaded_once_at_start(
        self, subject: Subject, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        loads: list[str] = []
        real_load = subject.loader.load_model

        def counting_load(uri: str) -> Any:
            loads.append(uri)
            return real_load(uri)

        monkeypatch.setattr(subject.loader, "load_model", counting_load)
        with TestClient(subject.app) as client:
            for _ in range(5):
                assert client.post("/predict_single", json=PASSENGER).status_code == 200
        assert loads == [str(subject.committed_model)]

    def test_model_uri_override(self, subject: Subject, monkeypatch: pytest.MonkeyPatch) -> None:
        uri = subject.committed_model.as_uri()  # file:// form: a different spelling, same model
        monkeypatch.setenv("TITANIC_MODEL_URI", uri)
        with TestClient(subject.app) as client:
            response = client.post("/predict_single", json=PASSENGER)
        assert response.status_code == 200
        assert response.json()["prediction"] == 0

    def test_missing_model_answers_503(self, subject: Subject, broken_model: object) -> None:
        with TestClient(subject.app) as client:
            response = client.post("/predict_single", json=PASSENGER)
            health = client.get("/health").json()
            root = client.get("/")
        assert response.status_code == 503
        assert response.json() == {"detail": "The model is not loaded: see the server log for why."}
        assert health["status"] == "degraded"
        assert health["dependencies"]["model"] == "not loaded"
        assert root.status_code == 200

    def test_openapi_shows_the_example(self, client: TestClient) -> None:
        schema = client.get("/openapi.json").json()
        passenger = schema["components"]["schemas"]["Passenger"]
        assert passenger["examples"] == [PASSENGER]
        assert set(passenger["required"]) == set(FIELDS)
        operation = schema["paths"]["/predict_single"]["post"]
        assert operation["requestBody"]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/Passenger"
        }
        assert set(operation["responses"]) == {"200", "422"}


class BatchContract:
    """Lessons 05 on: /predict_batch, 1 to 1,000 passengers, one answer each, in order."""

    def test_batch_example(self, client: TestClient, subject: Subject) -> None:
        response = client.post("/predict_batch", json=[PASSENGER, SURVIVOR])
        assert response.status_code == 200
        items = [lesson_fields(subject, item) for item in response.json()["batch_predictions"]]
        assert {"batch_predictions": items} == {
            "batch_predictions": [
                {"prediction": 0, "survival_status": "Not Survived", "passenger_index": 0},
                {"prediction": 1, "survival_status": "Survived", "passenger_index": 1},
            ]
        }

    def test_batch_agrees_with_single_predictions(
        self, client: TestClient, subject: Subject
    ) -> None:
        passengers = real_passengers(60)
        batch = client.post("/predict_batch", json=passengers).json()["batch_predictions"]
        singles = [
            lesson_fields(subject, client.post("/predict_single", json=p).json())
            for p in passengers
        ]
        assert [item["passenger_index"] for item in batch] == list(range(60))
        assert [
            {"prediction": item["prediction"], "survival_status": item["survival_status"]}
            for item in batch
        ] == singles

    def test_batch_uses_one_model_call(self, client: TestClient, subject: Subject) -> None:
        model = subject.app.state.model
        calls: list[int] = []

        class CountingModel:
            def __getattr__(self, name: str) -> Any:
                method = getattr(model, name)

                def counted(frame: pd.DataFrame) -> Any:
                    calls.append(len(frame))
                    return method(frame)

                return counted

        subject.app.dependency_overrides[subject.get_model] = CountingModel
        response = client.post("/predict_batch", json=real_passengers(25))
        assert response.status_code == 200
        assert calls == [25]

    def test_thousand_passengers(self, client: TestClient) -> None:
        passengers = (real_passengers(500) * 2)[:1000]
        response = client.post("/predict_batch", json=passengers)
        assert response.status_code == 200
        assert len(response.json()["batch_predictions"]) == 1000

    def test_empty_batch_gets_422(self, client: TestClient) -> None:
        response = client.post("/predict_batch", json=[])
        assert response.status_code == 422
        assert response.json() == {
            "detail": [
                {
                    "type": "too_short",
                    "loc": ["body"],
                    "msg": "List should have at least 1 item after validation, not 0",
                    "input": [],
                    "ctx": {"field_type": "List", "min_length": 1, "actual_length": 0},
                }
            ]
        }

    def test_oversized_batch_gets_422(self, client: TestClient) -> None:
        response = client.post("/predict_batch", json=[PASSENGER] * 1001)
        assert response.status_code == 422
        [error] = response.json()["detail"]
        assert (error["type"], error["loc"], error["msg"]) == (
            "too_long",
            ["body"],
            "List should have at most 1000 items after validation, not 1001",
        )

    def test_bad_passenger_in_batch_is_located(self, client: TestClient) -> None:
        response = client.post("/predict_batch", json=[PASSENGER, {**PASSENGER, "Age": -1}])
        assert response.status_code == 422
        assert response.json() == {
            "detail": [
                {
                    "type": "greater_than",
                    "loc": ["body", 1, "Age"],
                    "msg": "Input should be greater than 0",
                    "input": -1,
                    "ctx": {"gt": 0.0},
                }
            ]
        }

    def test_batch_is_a_list_not_an_object(self, client: TestClient) -> None:
        response = client.post("/predict_batch", json=PASSENGER)
        assert response.status_code == 422
        assert response.json()["detail"][0]["type"] == "list_type"

    def test_missing_model_batch_answers_503(self, subject: Subject, broken_model: object) -> None:
        with TestClient(subject.app) as client:
            response = client.post("/predict_batch", json=[PASSENGER])
        assert response.status_code == 503

    def test_openapi_shows_the_batch_example(self, client: TestClient) -> None:
        schema = client.get("/openapi.json").json()["components"]["schemas"]["PassengerBatch"]
        assert (schema["type"], schema["minItems"], schema["maxItems"]) == ("array", 1, 1000)
        [example] = schema["examples"]
        assert len(example) == 3
        assert example[0] == PASSENGER

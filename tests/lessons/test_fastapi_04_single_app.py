"""Lesson 04: the model behind an endpoint, deliberately without validation."""

import pytest
from fastapi.testclient import TestClient

from lessons import fastapi_04_single_app as lesson_module
from tests.support.contracts import (
    API_RUNNING,
    ModelApiContract,
    UvicornSmokeContract,
)
from tests.support.lessons import MODEL_LESSONS
from tools.examples import PASSENGER

LESSON = "fastapi_04_single_app"

# Kept from earlier lessons, and tested where each behaviour starts, over every
# lesson that keeps it (this one among them):
# TestOpenAPISnapshot in test_fastapi_01_test_app.py.


@pytest.mark.parametrize("subject", MODEL_LESSONS, indirect=True)
class TestServedByUvicorn(UvicornSmokeContract):
    """From 04 on: started as a learner starts it, the root says the API is running."""

    smoke_json = API_RUNNING


@pytest.mark.parametrize("subject", MODEL_LESSONS, indirect=True)
class TestModelApi(ModelApiContract):
    """From 04 on: the model behind /predict_single, loaded once at start, 503 without it."""


@pytest.mark.parametrize(
    "nonsense",
    [{"Age": -5}, {"Pclass": 7}, {"Sex": "unknown"}, {"Embarked": "X"}, {"SibSp": 99}],
    ids=["age-minus-5", "pclass-7", "sex-unknown", "embarked-x", "sibsp-99"],
)
def test_accepts_nonsense_before_validation(
    client: TestClient, nonsense: dict[str, object]
) -> None:
    """The problem lesson 04_02 solves: plain types let nonsense through to the model."""
    response = client.post("/predict_single", json={**PASSENGER, **nonsense})
    assert response.status_code == 200
    assert response.json()["prediction"] in (0, 1)


def test_docstring_admits_it() -> None:
    doc = lesson_module.__doc__ or ""
    assert "aged -5" in doc and "04_02" in doc


def test_types_are_still_checked(client: TestClient) -> None:
    response = client.post("/predict_single", json={**PASSENGER, "Age": "old"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "Age"]

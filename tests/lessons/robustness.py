"""What the robustness tests share: what a good answer is, what a valid request is.

A good answer is a 2xx for a valid request or a 4xx whose JSON body names the
problem, never a 5xx, and the app keeps serving. ``by_lesson`` runs a test once per
lesson from ``fastapi_04_02_single_app`` on, ``and_the_package`` on ``titanic_api`` too.
Used by test_robustness.py (hostile input) and test_limits_and_faults.py (bounded work,
faults, load).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import httpx2
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings

from tests.support.contracts import lesson_fields
from tests.support.lessons import (
    GOLDEN_SIGNALS_LESSONS,
    VALIDATED_LESSONS,
)
from tests.support.metrics import Metrics
from tests.support.monitoring import total
from tests.support.subject import Subject
from tools.examples import SURVIVOR


def lessons(names: list[str]) -> pytest.MarkDecorator:
    """Run the test once per app named: each becomes conftest's ``subject`` (``titanic_api``
    is the package), and the ``client`` fixture runs its app (lifespan included)."""
    return pytest.mark.parametrize("subject", names, indirect=True)


by_lesson = lessons(VALIDATED_LESSONS)
# The fuzzing and the hostile bodies also run against the package that ships.
and_the_package = lessons([*VALIDATED_LESSONS, "titanic_api"])

FUZZ = settings(
    max_examples=25,
    derandomize=True,  # the same examples on every run, on every machine
    database=None,  # no .hypothesis/ folder in the repository
    deadline=None,  # the first prediction of a run is slower; timing is not the point
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# Cheap examples (no model call for most of them): try more.
FUZZ_MORE = settings(FUZZ, max_examples=40)

FIELDS = ["Pclass", "Sex", "Age", "SibSp", "Parch", "Fare", "Embarked"]
JSON = {"content-type": "application/json"}
MAX_BATCH = 1_000
MAX_SIMULATIONS = 100


# ---------------------------------------------------------------- what a good answer is


def strict_json(response: httpx2.Response) -> Any:
    """The body as JSON, refusing NaN and Infinity (which JSON does not have)."""

    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} is not JSON")

    assert response.headers["content-type"] == "application/json", response.text[:300]
    return json.loads(response.content.decode("utf-8"), parse_constant=refuse)


def check_answer(response: httpx2.Response) -> None:
    """Never a 5xx; a 4xx is JSON whose ``detail`` names the problem."""
    status = response.status_code
    assert status < 500, f"{status}: {response.text[:500]}"
    body = strict_json(response)
    if status >= 400:
        detail = body["detail"]
        if status == 422:
            assert detail, body
            for error in detail:
                assert error["loc"][0] in ("body", "query"), error
                assert error["type"] and error["msg"], error
        else:
            assert isinstance(detail, str) and detail, body


def still_serving(client: TestClient, subject: Subject | None = None) -> None:
    """A valid prediction right after the abuse (the final lesson's fields of it, for an
    app that adds some: the package's prediction id)."""
    response = client.post("/predict_single", json=SURVIVOR)
    assert response.status_code == 200
    answer = lesson_fields(subject, response.json()) if subject else response.json()
    assert answer == {"prediction": 1, "survival_status": "Survived"}


def server_errors(client: TestClient) -> float:
    """All of ``http_errors_total`` (responses >= 500), for lessons that count them."""
    return total(Metrics.parse(client.get("/metrics").text), "http_errors_total")


def counting_errors(subject: Subject, client: TestClient) -> Callable[[], float]:
    """A function reading the app's 5xx count (always 0 before P01 had the counter)."""
    counted = subject.keeps in GOLDEN_SIGNALS_LESSONS
    return (lambda: server_errors(client)) if counted else (lambda: 0.0)


# ---------------------------------------------------------------- what a valid request is
# An independent statement of the rules, written from the README, not from the code.


def _number(value: object) -> bool:
    return type(value) is int or (type(value) is float and math.isfinite(value))


def valid_passenger(value: object) -> bool:
    if not isinstance(value, dict) or set(value) != set(FIELDS):
        return False
    whole = {name: type(value[name]) is int for name in ("Pclass", "SibSp", "Parch")}
    return (
        all(whole.values())
        and value["Pclass"] in (1, 2, 3)
        and value["Sex"] in ("male", "female")
        and _number(value["Age"])
        and 0 < value["Age"] < 100
        and 0 <= value["SibSp"] <= 10
        and 0 <= value["Parch"] <= 10
        and _number(value["Fare"])
        and 0 <= value["Fare"] <= 1000
        and value["Embarked"] in ("C", "Q", "S")
    )


def valid_body(path: str, value: object) -> bool:
    if path == "/predict_single":
        return valid_passenger(value)
    return (
        isinstance(value, list)
        and 1 <= len(value) <= MAX_BATCH
        and all(valid_passenger(item) for item in value)
    )


def parsed_as_json(content_type: str | None) -> bool:
    """FastAPI reads the body as JSON only for application/json and application/*+json."""
    if content_type is None:
        return False
    kind = content_type.split(";")[0].strip().lower()
    return kind == "application/json" or (
        kind.startswith("application/") and kind.endswith("+json")
    )


def nested(depth: int, inner: str = "1") -> str:
    return "[" * depth + inner + "]" * depth


def json_body_paths(client: TestClient) -> list[str]:
    schema = client.get("/openapi.json").json()
    return [
        path
        for path, operations in schema["paths"].items()
        if "requestBody" in operations.get("post", {})
    ]

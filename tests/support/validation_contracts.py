"""Lessons 04_02 on: every bad input gets a 422 that names the field, as a behaviour class.

The bad passengers and the complete 422 body FastAPI must answer for each, and
``ValidationContract``, tested in tests/lessons/test_fastapi_04_02_single_app.py over
every lesson that keeps validation, and on ``titanic_api`` by
tests/titanic_api/test_contract.py (``tests.support.contracts`` says how the behaviour
classes are written).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.support.contracts import FIELDS, post_raw
from tools.examples import PASSENGER


def _error(kind: str, field: str | int, msg: str, value: Any, **ctx: Any) -> dict[str, Any]:
    loc: list[str | int] = ["body", field] if isinstance(field, str) else ["body"]
    error: dict[str, Any] = {"type": kind, "loc": loc, "msg": msg, "input": value}
    if ctx:
        error["ctx"] = ctx
    return error


def _with(**changes: Any) -> str:
    return json.dumps({**PASSENGER, **changes})


_WITHOUT_FARE = {k: v for k, v in PASSENGER.items() if k != "Fare"}
_RAW_PASSENGER = json.dumps(PASSENGER)

# (case id, request body, the complete 422 "detail" list FastAPI must answer)
BAD_PASSENGERS: list[tuple[str, str, list[dict[str, Any]]]] = [
    (
        "age-negative",
        _with(Age=-5),
        [_error("greater_than", "Age", "Input should be greater than 0", -5, gt=0.0)],
    ),
    (
        "age-zero",
        _with(Age=0),
        [_error("greater_than", "Age", "Input should be greater than 0", 0, gt=0.0)],
    ),
    (
        "age-100",
        _with(Age=100),
        [_error("less_than", "Age", "Input should be less than 100", 100, lt=100.0)],
    ),
    (
        "pclass-7",
        _with(Pclass=7),
        [_error("literal_error", "Pclass", "Input should be 1, 2 or 3", 7, expected="1, 2 or 3")],
    ),
    (
        "pclass-string",
        _with(Pclass="1"),
        [_error("literal_error", "Pclass", "Input should be 1, 2 or 3", "1", expected="1, 2 or 3")],
    ),
    (
        "sex-unknown",
        _with(Sex="unknown"),
        [
            _error(
                "literal_error",
                "Sex",
                "Input should be 'male' or 'female'",
                "unknown",
                expected="'male' or 'female'",
            )
        ],
    ),
    (
        "embarked-x",
        _with(Embarked="X"),
        [
            _error(
                "literal_error",
                "Embarked",
                "Input should be 'C', 'Q' or 'S'",
                "X",
                expected="'C', 'Q' or 'S'",
            )
        ],
    ),
    (
        "sibsp-11",
        _with(SibSp=11),
        [_error("less_than_equal", "SibSp", "Input should be less than or equal to 10", 11, le=10)],
    ),
    (
        "parch-negative",
        _with(Parch=-1),
        [
            _error(
                "greater_than_equal",
                "Parch",
                "Input should be greater than or equal to 0",
                -1,
                ge=0,
            )
        ],
    ),
    (
        "fare-over-1000",
        _with(Fare=1000.5),
        [
            _error(
                "less_than_equal",
                "Fare",
                "Input should be less than or equal to 1000",
                1000.5,
                le=1000,
            )
        ],
    ),
    (
        "fare-negative",
        _with(Fare=-1),
        [
            _error(
                "greater_than_equal", "Fare", "Input should be greater than or equal to 0", -1, ge=0
            )
        ],
    ),
    (
        "sibsp-fraction",
        _with(SibSp=1.5),
        [_error("int_type", "SibSp", "Input should be a valid integer", 1.5)],
    ),
    (
        "sibsp-word",
        _with(SibSp="two"),
        [_error("int_type", "SibSp", "Input should be a valid integer", "two")],
    ),
    (
        "parch-bool",
        _with(Parch=True),
        [_error("int_type", "Parch", "Input should be a valid integer", True)],
    ),
    (
        "age-string-nan",
        _with(Age="NaN"),
        [_error("float_type", "Age", "Input should be a valid number", "NaN")],
    ),
    (
        "fare-string-infinity",
        _with(Fare="Infinity"),
        [_error("float_type", "Fare", "Input should be a valid number", "Infinity")],
    ),
    (
        "age-nan-literal",
        _RAW_PASSENGER.replace("22.0", "NaN"),
        [_error("finite_number", "Age", "Input should be a finite number", "nan")],
    ),
    (
        "fare-infinity-literal",
        _RAW_PASSENGER.replace("7.25", "Infinity"),
        [_error("finite_number", "Fare", "Input should be a finite number", "inf")],
    ),
    (
        "fare-minus-infinity-literal",
        _RAW_PASSENGER.replace("7.25", "-Infinity"),
        [_error("finite_number", "Fare", "Input should be a finite number", "-inf")],
    ),
    (
        "fare-overflows-to-infinity",
        _RAW_PASSENGER.replace("7.25", "1e400"),
        [_error("finite_number", "Fare", "Input should be a finite number", "inf")],
    ),
    (
        "sibsp-huge",
        _RAW_PASSENGER.replace('"SibSp": 1', '"SibSp": 1' + "0" * 30),
        [
            _error(
                "less_than_equal",
                "SibSp",
                "Input should be less than or equal to 10",
                10**30,
                le=10,
            )
        ],
    ),
    (
        "fare-missing",
        json.dumps(_WITHOUT_FARE),
        [_error("missing", "Fare", "Field required", _WITHOUT_FARE)],
    ),
    (
        "extra-field",
        _with(age=22),
        [_error("extra_forbidden", "age", "Extra inputs are not permitted", 22)],
    ),
    (
        "two-errors",
        _with(Age=-1, Sex="x"),
        [
            _error(
                "literal_error",
                "Sex",
                "Input should be 'male' or 'female'",
                "x",
                expected="'male' or 'female'",
            ),
            _error("greater_than", "Age", "Input should be greater than 0", -1, gt=0.0),
        ],
    ),
    (
        "not-an-object",
        "[]",
        [
            _error(
                "model_attributes_type",
                0,
                "Input should be a valid dictionary or object to extract fields from",
                [],
            )
        ],
    ),
    (
        "malformed-json",
        '{"Pclass": 3',
        [
            {
                "type": "json_invalid",
                "loc": ["body", 12],
                "msg": "JSON decode error",
                "input": {},
                "ctx": {"error": "Expecting ',' delimiter"},
            }
        ],
    ),
]


class ValidationContract:
    """Lessons 04_02 on: every bad input gets a 422 that names the field, as valid JSON."""

    @pytest.mark.parametrize(
        ("body", "detail"),
        [case[1:] for case in BAD_PASSENGERS],
        ids=[c[0] for c in BAD_PASSENGERS],
    )
    def test_bad_passenger_gets_422(
        self, client: TestClient, body: str, detail: list[dict[str, Any]]
    ) -> None:
        response = post_raw(client, "/predict_single", body)
        assert response.status_code == 422
        assert response.json() == {"detail": detail}

    def test_empty_body_gets_422(self, client: TestClient) -> None:
        response = client.post("/predict_single")
        assert response.status_code == 422
        assert response.json() == {
            "detail": [{"type": "missing", "loc": ["body"], "msg": "Field required", "input": None}]
        }

    def test_oversized_body_gets_413(self, client: TestClient) -> None:
        response = post_raw(client, "/predict_single", " " * 2_000_000)
        assert response.status_code == 413
        assert client.post("/predict_single", json=PASSENGER).status_code == 200

    def test_edge_values_are_accepted(self, client: TestClient) -> None:
        edges = {"Age": 99.9, "SibSp": 10, "Parch": 10, "Fare": 1000, "Pclass": 1}
        assert client.post("/predict_single", json={**PASSENGER, **edges}).status_code == 200
        lows = {"Age": 0.42, "SibSp": 0, "Parch": 0, "Fare": 0, "Embarked": "Q"}
        assert client.post("/predict_single", json={**PASSENGER, **lows}).status_code == 200

    def test_every_field_is_described_in_openapi(self, client: TestClient) -> None:
        schema = client.get("/openapi.json").json()["components"]["schemas"]["Passenger"]
        assert schema["additionalProperties"] is False
        properties = schema["properties"]
        assert all(properties[field].get("description") for field in FIELDS)
        assert properties["Pclass"]["enum"] == [1, 2, 3]
        assert properties["Sex"]["enum"] == ["male", "female"]
        assert properties["Embarked"]["enum"] == ["C", "Q", "S"]
        assert (properties["Age"]["exclusiveMinimum"], properties["Age"]["exclusiveMaximum"]) == (
            0,
            100,
        )
        assert (properties["SibSp"]["minimum"], properties["SibSp"]["maximum"]) == (0, 10)
        assert (properties["Parch"]["minimum"], properties["Parch"]["maximum"]) == (0, 10)
        assert (properties["Fare"]["minimum"], properties["Fare"]["maximum"]) == (0, 1000)

"""Each server's request body and how its answer is read; the probability checks.

No server is started and no peer installed here: the bodies are compared with
what each protocol documents, and the answers are ones a real server gave.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from benchmarks.limit import ModelLimit
from benchmarks.measure import compare, logged_probabilities
from benchmarks.targets import (
    BENTOML_API,
    MLFLOW_API,
    V2_API,
    lesson_body,
    make_passengers,
)
from titanic_api.settings import COMMITTED_MODEL
from tools.examples import PASSENGER, SURVIVOR

TWO = [PASSENGER, SURVIVOR]


def test_the_v2_body_is_one_typed_tensor_per_column_decoded_as_a_dataframe() -> None:
    body = V2_API.wrap(TWO)
    assert body == {
        "parameters": {"content_type": "pd"},
        "inputs": [
            {"name": "Pclass", "shape": [2, 1], "datatype": "INT64", "data": [3, 1]},
            {
                "name": "Sex",
                "shape": [2, 1],
                "datatype": "BYTES",
                "data": ["male", "female"],
                "parameters": {"content_type": "str"},
            },
            {"name": "Age", "shape": [2, 1], "datatype": "FP64", "data": [22.0, 38.0]},
            {"name": "SibSp", "shape": [2, 1], "datatype": "INT64", "data": [1, 1]},
            {"name": "Parch", "shape": [2, 1], "datatype": "INT64", "data": [0, 0]},
            {"name": "Fare", "shape": [2, 1], "datatype": "FP64", "data": [7.25, 71.2833]},
            {
                "name": "Embarked",
                "shape": [2, 1],
                "datatype": "BYTES",
                "data": ["S", "C"],
                "parameters": {"content_type": "str"},
            },
        ],
    }


def test_mlflow_bentoml_and_the_lessons_take_the_passengers_as_records() -> None:
    assert MLFLOW_API.wrap(TWO) == {"dataframe_records": TWO}
    assert BENTOML_API.wrap(TWO) == {"passengers": TWO}
    assert lesson_body(TWO) == TWO
    assert lesson_body([PASSENGER]) == PASSENGER


# Answers as MLServer 1.7.1, mlflow models serve 3.17.2 and BentoML 1.4.40 gave them.
V2_ANSWER = {
    "model_name": "titanic",
    "outputs": [
        {
            "name": "output-1",
            "shape": [2, 2],
            "datatype": "FP64",
            "data": [
                0.9561186249941777,
                0.043881375005822294,
                0.38582256937444537,
                0.6141774306255546,
            ],
        }
    ],
}
ROWS = [[0.9561186249941777, 0.043881375005822294], [0.38582256937444537, 0.6141774306255546]]


def test_each_protocols_answer_is_read_as_one_row_of_probabilities_per_passenger() -> None:
    assert V2_API.probabilities is not None
    assert MLFLOW_API.probabilities is not None
    assert BENTOML_API.probabilities is not None
    for answer in (
        V2_API.probabilities(V2_ANSWER),
        MLFLOW_API.probabilities({"predictions": ROWS}),
        BENTOML_API.probabilities(ROWS),
    ):
        assert answer.tolist() == ROWS


def test_compare_says_same_only_for_equal_bits() -> None:
    expected = np.array(ROWS)
    assert compare(expected.copy(), expected) == "same, bit for bit, for 2 passengers"
    nudged = expected.copy()
    nudged[1, 1] = np.nextafter(nudged[1, 1], 1.0)
    assert compare(nudged, expected) == "differ by up to 1.11e-16"
    assert compare(expected[:1], expected) == "differ: shape (1, 2), expected (2, 2)"


@pytest.fixture(scope="module")
def limit() -> ModelLimit:
    return ModelLimit(COMMITTED_MODEL, make_passengers(1_000))


def test_the_limits_batch_is_pipeline_predict_proba_on_the_parsed_body(limit: ModelLimit) -> None:
    passengers = make_passengers(1_000)
    assert np.array_equal(limit.parse_and_predict(), limit.probabilities(passengers))
    run = limit.batches_back_to_back(2)
    assert (run.requests, run.errors, len(run.latencies)) == (2, 0, 2)
    assert run.server_cpu >= 0


def write_log(folder: Path, lines: list[dict[str, object]]) -> None:
    folder.mkdir()
    text = "".join(json.dumps({"execute": i, **line}) + "\n" for i, line in enumerate(lines))
    (folder / "predictions.jsonl").write_text(text)


def test_every_logged_probability_is_checked_against_the_model(
    limit: ModelLimit, tmp_path: Path
) -> None:
    passengers = make_passengers(3)
    expected = limit.probabilities(passengers)
    lines: list[dict[str, object]] = [
        {**passenger, "probability": {"Not Survived": row[0], "Survived": row[1]}}
        for passenger, row in zip(passengers, expected.tolist(), strict=True)
    ]
    write_log(tmp_path / "right", [*lines, lines[0]])
    assert logged_probabilities(tmp_path / "right", passengers, expected) == (
        "same, bit for bit, in all 4 logged predictions"
    )
    wrong = {**lines[1], "probability": {"Not Survived": 0.5, "Survived": 0.5}}
    write_log(tmp_path / "wrong", [lines[0], wrong])
    assert logged_probabilities(tmp_path / "wrong", passengers, expected) == (
        "differ in 1 of 2 logged predictions"
    )
    (tmp_path / "none").mkdir()
    assert logged_probabilities(tmp_path / "none", passengers, expected) == "no prediction logged"

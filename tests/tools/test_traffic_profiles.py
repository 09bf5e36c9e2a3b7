"""tools.traffic's passengers and profiles: real passengers, drifted ones, labels for /feedback."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from titanic_api.schemas import Passenger
from tools import traffic


def test_real_passengers_are_the_data_sets_and_the_api_takes_them_all() -> None:
    passengers = traffic.real_passengers()
    assert len(passengers) == 891
    for features, survived in passengers:
        Passenger.model_validate(features)
        assert survived in (0, 1)
    assert Counter(survived for _, survived in passengers) == {0: 549, 1: 342}
    # The 177 missing ages were filled from passengers of the same class and sex.
    assert Counter(f["Pclass"] for f, _ in passengers) == {3: 491, 1: 216, 2: 184}


def draws(profile: str, n: int = 300, seed: int = 3) -> list[traffic.Request]:
    rng = random.Random(seed)
    return [traffic.next_request(rng, profile) for _ in range(n)]


def passengers_of(requests: list[traffic.Request]) -> list[dict[str, object]]:
    found: list[dict[str, object]] = []
    for request in requests:
        if request.kind == "single":
            assert isinstance(request.body, dict)
            found.append(request.body)
        elif request.kind == "batch":
            assert isinstance(request.body, list)
            found.extend(request.body)
    return found


def test_drifted_passengers_differ_in_the_drifted_features_only() -> None:
    normal, drifted = passengers_of(draws("normal")), passengers_of(draws("drifted"))
    assert len(normal) == len(drifted) > 500  # the same draws, passenger for passenger
    assert traffic.DRIFTED_FEATURES == ("Age", "Fare", "Pclass")
    for before, after in zip(normal, drifted, strict=True):
        Passenger.model_validate(after)
        changed = {name for name in traffic.FEATURES if before[name] != after[name]}
        assert changed <= set(traffic.DRIFTED_FEATURES)
        assert after["Pclass"] == 1
        assert float(str(after["Age"])) >= float(str(before["Age"]))
    assert all(p["Pclass"] == 1 for p in drifted)
    assert passengers_of(draws("mislabelled")) == normal  # its passengers are normal ones


def test_each_prediction_request_carries_its_passengers_labels() -> None:
    real = {(tuple(sorted(f.items())), s) for f, s in traffic.real_passengers()}
    for request in draws("normal"):
        if request.kind in ("single", "batch"):
            assert len(request.labels) == request.passengers
            bodies = [request.body] if request.kind == "single" else request.body
            assert isinstance(bodies, list)
            pairs = zip(bodies, request.labels, strict=True)
            assert {(tuple(sorted(b.items())), s) for b, s in pairs} <= real
        else:
            assert request.labels == ()


def test_feedback_sends_the_true_or_the_opposite_labels_by_prediction_id() -> None:
    batch = traffic.Request("batch", "POST", "/predict_batch", [{}, {}], 2, labels=(1, 0))
    answer = {"batch_predictions": [{"prediction_id": "a"}, {"prediction_id": "b"}]}
    sent = traffic.feedback(batch, answer)
    assert sent == traffic.Request(
        "feedback",
        "POST",
        "/feedback",
        [{"prediction_id": "a", "survived": 1}, {"prediction_id": "b", "survived": 0}],
    )
    wrong = traffic.feedback(batch, answer, wrong=True)
    assert wrong is not None and wrong.body == [
        {"prediction_id": "a", "survived": 0},
        {"prediction_id": "b", "survived": 1},
    ]
    single = traffic.Request("single", "POST", "/predict_single", {}, 1, labels=(0,))
    assert traffic.feedback(single, {"prediction": 1, "prediction_id": "c"}) is not None
    # No prediction_id (the final lesson's answer), or not one per passenger: nothing to send.
    assert traffic.feedback(single, {"prediction": 1}) is None
    assert traffic.feedback(batch, {"batch_predictions": [{"prediction_id": "a"}]}) is None
    assert traffic.feedback(single, None) is None


def test_labels_are_sent_for_mislabelled_traffic_or_on_request() -> None:
    assert traffic.labels_of("mislabelled", labels=False) == "wrong"
    assert traffic.labels_of("normal", labels=True) == "true"
    assert traffic.labels_of("drifted", labels=False) is None


def test_an_unknown_profile_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown profile 'odd'"):
        traffic.next_request(random.Random(1), "odd")
    with pytest.raises(SystemExit) as exit_info:
        traffic.main(["--profile", "odd", "--duration", "1"])
    assert exit_info.value.code == 2


def test_the_summary_adds_up_the_labels() -> None:
    report = traffic.Report(labels=Counter(accepted=5, unknown=1))
    assert report.summary().splitlines()[-1] == "  labels: 5 accepted, 1 unknown"

"""The random passenger: one home for its ranges, and the final lesson's copy matches it."""

from __future__ import annotations

import random

import pytest

from lessons import prometheus_04_multi_execute_app as final_lesson
from titanic_api import simulation
from titanic_api.schemas import Passenger
from tools import traffic


@pytest.mark.parametrize("seed", range(25))
def test_the_final_lessons_copy_draws_the_same_passengers(seed: int) -> None:
    """The lesson keeps its own copy, by design (self-contained); it must not drift apart."""
    package = simulation.random_passenger(random.Random(seed))
    lesson = final_lesson.random_passenger(random.Random(seed)).model_dump()
    assert lesson == package


def test_every_drawn_passenger_is_valid_and_within_the_ranges() -> None:
    rng = random.Random(7)
    for _ in range(2_000):
        passenger = Passenger.model_validate(simulation.random_passenger(rng))
        assert simulation.AGE[0] <= passenger.Age <= simulation.AGE[1]
        assert simulation.SIBSP[0] <= passenger.SibSp <= simulation.SIBSP[1]
        assert simulation.PARCH[0] <= passenger.Parch <= simulation.PARCH[1]
        assert simulation.FARE[0] <= passenger.Fare <= simulation.FARE[1]


def test_the_traffic_tool_uses_the_packages_passenger() -> None:
    assert traffic.random_passenger is simulation.random_passenger

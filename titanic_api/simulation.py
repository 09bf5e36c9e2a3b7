"""Random passengers: for ``POST /simulate_predictions`` and ``tools.traffic``.

The one home of the ranges a simulated passenger is drawn from: inside what the
API validates (``titanic_api.schemas.Passenger``) and near the real data's. The
lessons keep a copy of their own, by design (each lesson is self-contained);
tests/ says whether it matches.
"""

import random

PCLASSES = (1, 2, 3)
SEXES = ("male", "female")
EMBARKED = ("C", "Q", "S")
AGE = (0.5, 80.0)  # years, drawn uniformly, one decimal
SIBSP = (0, 5)  # whole numbers, both ends included
PARCH = (0, 4)
FARE = (5.0, 300.0)  # drawn uniformly, two decimals


def random_passenger(rng: random.Random) -> dict[str, object]:
    """One valid passenger, as the JSON body of ``POST /predict_single`` would hold it."""
    return {
        "Pclass": rng.choice(PCLASSES),
        "Sex": rng.choice(SEXES),
        "Age": round(rng.uniform(*AGE), 1),
        "SibSp": rng.randint(*SIBSP),
        "Parch": rng.randint(*PARCH),
        "Fare": round(rng.uniform(*FARE), 2),
        "Embarked": rng.choice(EMBARKED),
    }

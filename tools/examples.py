"""The example passengers the notebook and the tests send to the lessons.

Defined once, here: the notebook and the tests import them. ``PASSENGER`` is the
example every lesson shows in /docs.
"""

from __future__ import annotations

# The example passenger every lesson shows in /docs (a third-class man, aged 22).
PASSENGER: dict[str, object] = {
    "Pclass": 3,
    "Sex": "male",
    "Age": 22.0,
    "SibSp": 1,
    "Parch": 0,
    "Fare": 7.25,
    "Embarked": "S",
}
# A passenger the model is sure survived (a first-class woman, aged 38).
SURVIVOR: dict[str, object] = {
    "Pclass": 1,
    "Sex": "female",
    "Age": 38.0,
    "SibSp": 1,
    "Parch": 0,
    "Fare": 71.2833,
    "Embarked": "C",
}
# A child, so a batch of all three has three different ages: one not whole, and a
# power of two apart from it, so sums of ages stay exact in floating point.
CHILD: dict[str, object] = {
    "Pclass": 2,
    "Sex": "female",
    "Age": 4.5,
    "SibSp": 0,
    "Parch": 1,
    "Fare": 23.0,
    "Embarked": "S",
}

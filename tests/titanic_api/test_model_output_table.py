"""The model's steps that are looked up or skipped: the same probabilities, for every input."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
from sklearn.impute import SimpleImputer

from titanic_api import model as model_module
from titanic_api.settings import COMMITTED_MODEL
from tools.examples import PASSENGER

CATEGORIES = {"Pclass": (1, 2, 3), "Sex": ("male", "female"), "Embarked": ("C", "Q", "S")}


def test_every_combination_the_schema_allows_gives_the_pipelines_probabilities() -> None:
    model = model_module.load(str(COMMITTED_MODEL)).model
    steps = {tuple(selected): step for _, step, selected in model.steps[0][1].transformers_}
    assert set(steps) == {("Age", "SibSp", "Parch", "Fare"), ("Pclass", "Sex", "Embarked")}
    assert (
        model_module.output_table(steps[("Age", "SibSp", "Parch", "Fare")], tuple(steps)[0]) is None
    )
    table = model_module.output_table(steps[("Pclass", "Sex", "Embarked")], tuple(CATEGORIES))
    assert table is not None
    rows, outputs = table
    combinations = list(itertools.product(*CATEGORIES.values()))
    assert sorted(rows, key=str) == sorted(combinations, key=str)
    assert outputs.shape[0] == 18
    passengers = [
        {**PASSENGER, **dict(zip(CATEGORIES, values, strict=True))} for values in combinations
    ]
    direct = model_module.predict_proba(model, passengers)
    assert np.array_equal(direct, model.predict_proba(pd.DataFrame(passengers)))


def test_a_field_the_schema_does_not_list_values_for_has_no_table() -> None:
    assert model_module.schema_values("Sex") == ("male", "female")
    assert model_module.schema_values("Age") is None


def test_an_imputer_of_quantities_that_never_miss_is_skipped_and_no_other() -> None:
    model = model_module.load(str(COMMITTED_MODEL)).model
    numeric = ["Age", "SibSp", "Parch", "Fare"]
    [step] = [step for _, step, selected in model.steps[0][1].transformers_ if selected == numeric]
    assert model_module.imputes_nothing(step, numeric)
    frame = pd.DataFrame({name: [1.0, 2.5] for name in numeric})
    assert not model_module.imputes_nothing(SimpleImputer(add_indicator=True).fit(frame), numeric)
    assert not model_module.imputes_nothing(SimpleImputer(missing_values=0.0).fit(frame), numeric)
    assert not model_module.imputes_nothing(step, ["Sex"])

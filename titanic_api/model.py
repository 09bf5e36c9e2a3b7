"""Loading the MLflow model once, and calling it.

From the lessons' ``lifespan`` and ``predict``. The model is loaded at start-up;
if that fails the service still starts, /health says ``degraded``, /ready and the
prediction endpoints answer 503.
"""

import itertools
import logging
import math
import threading
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Literal, get_args, get_origin

import mlflow.models
import mlflow.sklearn
import numpy as np
import pandas as pd
import sklearn
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline

from titanic_api.schemas import Passenger

logger = logging.getLogger("uvicorn.error")
FEATURES = ("Pclass", "Sex", "Age", "SibSp", "Parch", "Fare", "Embarked")


@dataclass
class LoadedModel:
    """What loading produced: the model (or None) and the details every log line carries."""

    model: Any
    details: dict[str, object] = field(default_factory=dict)


NO_MODEL_URI = (
    "No model to serve: set TITANIC_MODEL_URI to an MLflow model URI or folder. The package "
    "runs outside the course's checkout, so there is no committed model beside it. "
    "Predictions will answer 503."
)


def load(model_uri: str | None) -> LoadedModel:
    """Load the model, then its MLflow metadata; on failure, no model (and a logged reason).

    The metadata only adds detail to the log lines: if it cannot be read (MLflow
    reads it from local paths only, not ``file://`` URIs), the model still serves.
    """
    if model_uri is None:
        logger.error(NO_MODEL_URI)
        return LoadedModel(None, {"model_uri": None})
    try:
        model = mlflow.sklearn.load_model(model_uri)
    except Exception:
        logger.exception("Could not load the model from %s; predictions will answer 503", model_uri)
        return LoadedModel(None, {"model_uri": model_uri})
    logger.info("Model loaded from %s", model_uri)
    try:
        metadata = mlflow.models.Model.load(model_uri)
    except Exception:
        logger.warning("No MLflow metadata at %s; the log lines name the URI only", model_uri)
        return LoadedModel(model, {"model_uri": model_uri})
    return LoadedModel(
        model,
        {
            "experiment_id": (metadata.metadata or {}).get("experiment_id"),
            "run_id": metadata.run_id,
            "model_id": metadata.model_id,
            "model_uri": model_uri,
        },
    )


# One model call at a time: a prediction is CPU work under the GIL, so threads
# predicting together only take turns and keep the event loop waiting.
MODEL_LOCK = threading.Lock()


def predict_proba(model: Any, passengers: list[dict[str, object]]) -> np.ndarray:
    """Class probabilities (column 0: not survived, column 1: survived), one model call.

    - The features go to the model column by column, as ``dtype=object``: the
      values as pydantic gave them. pandas' row-of-dicts path would look every
      key up again in Python, and pandas 3 would store text as Arrow strings
      that the model's imputer and encoder turn back into Python strings.
    - ``assume_finite`` and ``skip_parameter_validation``: pydantic already refused
      NaN and infinities, and the model's parameters were checked when it was
      trained, so scikit-learn need not check either again on every call.
    - ``direct_predict_proba`` skips the ``ColumnTransformer``'s own machinery.
    """
    columns = {name: [passenger[name] for passenger in passengers] for name in FEATURES}
    with (
        MODEL_LOCK,
        sklearn.config_context(assume_finite=True, skip_parameter_validation=True),
    ):
        if is_plain_column_pipeline(model):
            return direct_predict_proba(model, columns)
        return np.asarray(model.predict_proba(pd.DataFrame(columns, dtype=object)))


def is_plain_column_pipeline(model: Any) -> bool:
    """A pipeline of a dense ``ColumnTransformer`` that picks columns by name, and a classifier."""
    if not (isinstance(model, Pipeline) and len(model.steps) == 2):
        return False
    transformer = model.steps[0][1]
    return (
        isinstance(transformer, ColumnTransformer)
        and not transformer.sparse_output_
        and all(
            step == "drop"
            or (
                not isinstance(step, str)
                and isinstance(selected, list)
                and all(name in FEATURES for name in selected)
            )
            for _, step, selected in transformer.transformers_
        )
    )


# Fields that are quantities: as float64 the numeric imputer takes them as they are,
# where from Python objects it converts them one by one.
QUANTITIES = frozenset({"Age", "SibSp", "Parch", "Fare"})


def as_column(name: str, values: list[object]) -> np.ndarray:
    """A quantity as float64 (exact for these ints); anything else as the objects pydantic gave."""
    return np.array(values, dtype=float if name in QUANTITIES else object)


def direct_predict_proba(model: Pipeline, columns: dict[str, list[object]]) -> np.ndarray:
    """What ``model.predict_proba`` computes, without the ColumnTransformer's overhead.

    The ColumnTransformer takes one DataFrame, selects each fitted transformer's
    columns from it, runs the transformers through joblib and wraps their output
    for pandas: on one passenger that machinery is a large part of the call
    (docs/performance.md). Here each fitted transformer gets a small DataFrame of
    just its columns, or is not run where the schema makes that safe
    (``imputes_nothing``, ``output_table``), and the parts are put side by side as the
    ColumnTransformer does (tests/titanic_api/test_tuning.py and
    test_model_output_table.py check the probabilities are equal, bit for bit).
    """
    transformer: ColumnTransformer = model.steps[0][1]
    parts = []
    for _, step, selected in transformer.transformers_:
        if step == "drop":
            continue
        if imputes_nothing(step, selected):
            parts.append(np.column_stack([as_column(name, columns[name]) for name in selected]))
        elif (table := output_table(step, tuple(selected))) is None:
            frame = pd.DataFrame({name: as_column(name, columns[name]) for name in selected})
            parts.append(step.transform(frame))
        else:
            rows, outputs = table
            parts.append(
                outputs[[rows[key] for key in zip(*(columns[n] for n in selected), strict=True)]]
            )
    return np.asarray(model.steps[1][1].predict_proba(np.hstack(parts)))


def imputes_nothing(step: Any, selected: list[str]) -> bool:
    """A fitted imputer of missing (NaN) quantities, which a validated passenger never has.

    The schema requires every field and refuses NaN, so such an imputer would
    hand its float64 input back as it is: the columns are stacked instead. (An
    imputer that drops a column it learned nothing for, or adds indicators, is run.)
    """
    return (
        isinstance(step, SimpleImputer)
        and all(name in QUANTITIES for name in selected)
        and isinstance(step.missing_values, float)
        and math.isnan(step.missing_values)
        and not step.add_indicator
        and not pd.isna(step.statistics_).any()
    )


def schema_values(name: str) -> tuple[object, ...] | None:
    """Every value a validated passenger can have in ``name``, if the schema lists them."""
    annotation = Passenger.model_fields[name].annotation
    return get_args(annotation) if get_origin(annotation) is Literal else None


@cache
def output_table(
    step: Any, selected: tuple[str, ...]
) -> tuple[dict[tuple[object, ...], int], np.ndarray] | None:
    """A fitted step's output for every input it can get, computed once by the step itself.

    A fitted transformer works row by row. Where each of its columns can only
    hold the few values the schema lists (class, sex, port: 18 combinations),
    its output rows are computed once, and a batch's rows are looked up: the same
    numbers, without the imputer's and the encoder's checks of every batch.
    ``None`` if a column can hold any number.
    """
    domains = [schema_values(name) for name in selected]
    if any(domain is None for domain in domains):
        return None
    inputs = list(itertools.product(*domains))  # type: ignore[arg-type]
    frame = pd.DataFrame(
        {name: as_column(name, [row[i] for row in inputs]) for i, name in enumerate(selected)}
    )
    return {row: i for i, row in enumerate(inputs)}, np.asarray(step.transform(frame))

"""Loading the MLflow model once, and calling it.

From the lessons' ``lifespan`` and ``predict``. The model is loaded at start-up;
if that fails the service still starts, /health says ``degraded``, /ready and the
prediction endpoints answer 503.
"""

import logging
import threading
from dataclasses import dataclass, field
from typing import Any

import mlflow.models
import mlflow.sklearn
import numpy as np
import pandas as pd
import sklearn
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline

logger = logging.getLogger("uvicorn.error")
FEATURES = ("Pclass", "Sex", "Age", "SibSp", "Parch", "Fare", "Embarked")


@dataclass
class LoadedModel:
    """What loading produced: the model (or None) and the details every log line carries."""

    model: Any
    details: dict[str, object] = field(default_factory=dict)


def load(model_uri: str) -> LoadedModel:
    """Load the model, then its MLflow metadata; on failure, no model (and a logged reason).

    The metadata only adds detail to the log lines: if it cannot be read (MLflow
    reads it from local paths only, not ``file://`` URIs), the model still serves.
    """
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

    - ``dtype=object`` hands the model the values as pydantic gave them; pandas 3
      would otherwise store text as Arrow strings that the model's imputer and
      encoder turn back into Python strings on every call.
    - ``assume_finite`` and ``skip_parameter_validation``: pydantic already refused
      NaN and infinities, and the model's parameters were checked when it was
      trained, so scikit-learn need not check either again on every call.
    - ``direct_predict_proba`` skips the ``ColumnTransformer``'s own machinery.
    """
    # Column by column: pandas' row-of-dicts path looks every key up again in Python.
    columns = {name: [passenger[name] for passenger in passengers] for name in FEATURES}
    features = pd.DataFrame(columns, dtype=object)
    with (
        MODEL_LOCK,
        sklearn.config_context(assume_finite=True, skip_parameter_validation=True),
    ):
        if is_direct(model):
            return direct_predict_proba(model, features)
        return np.asarray(model.predict_proba(features))


def is_direct(model: Any) -> bool:
    """A pipeline of a ``ColumnTransformer`` (dense, nothing passed through) and a classifier."""
    if not (isinstance(model, Pipeline) and len(model.steps) == 2):
        return False
    columns = model.steps[0][1]
    return (
        isinstance(columns, ColumnTransformer)
        and not columns.sparse_output_
        and all(not isinstance(step, str) or step == "drop" for _, step, _ in columns.transformers_)
    )


def direct_predict_proba(model: Pipeline, features: pd.DataFrame) -> np.ndarray:
    """What ``model.predict_proba(features)`` computes, without the ColumnTransformer's overhead.

    The ColumnTransformer runs each fitted transformer on its columns through
    joblib and wraps the output for pandas: on one passenger that machinery is
    about a fifth of the whole call. Here each fitted transformer gets its columns
    directly and the parts are put side by side, as the ColumnTransformer does
    (tests/test_titanic_api_tuning.py checks that the probabilities are equal).
    """
    columns: ColumnTransformer = model.steps[0][1]
    parts = [
        step.transform(features[selected])
        for _, step, selected in columns.transformers_
        if not isinstance(step, str)
    ]
    return np.asarray(model.steps[1][1].predict_proba(np.hstack(parts)))

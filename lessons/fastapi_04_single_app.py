"""Serve the MLflow model: one passenger in, one survival prediction out.

What it adds over lesson 03: a machine-learning model behind an endpoint.
The model is loaded **once**, when the server starts, in a ``lifespan``
handler, and kept on ``app.state``. ``get_model``, a dependency, hands it to
the endpoint, or answers 503 if it could not be loaded (the server still
starts and says why in its log). ``Passenger``, a pydantic model of the seven
fields, is the request body; it checks nothing beyond the types, so this stage
happily predicts for a passenger aged -5, or of class 7. Lesson 04_02 fixes that.

Run it:

    uvicorn lessons.fastapi_04_single_app:app --reload

Try it: in /docs, POST /predict_single, "Try it out", "Execute" answers
{"prediction": 0, "survival_status": "Not Survived"}.
"""

import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import version
from pathlib import Path
from typing import Annotated, Literal

import mlflow.sklearn
import pandas as pd
from fastapi import Depends, FastAPI, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field
from sklearn.pipeline import Pipeline

logger = logging.getLogger("uvicorn.error")

SERVICE_VERSION = "1.0.0"
LIBRARIES = {name: version(name) for name in ("fastapi", "mlflow", "scikit-learn")}
# Found relative to this file, not the current directory: works from any clone.
COMMITTED_MODEL = (
    Path(__file__).resolve().parents[1]
    / "mlruns/titanic-survival/models/m-5c784fcf692248669a11bef6a1632938/artifacts"
)
SURVIVAL_STATUS = {0: "Not Survived", 1: "Survived"}
# The passenger /docs shows as an example: the first one in the data set.
EXAMPLE = dict(Pclass=3, Sex="male", Age=22.0, SibSp=1, Parch=0, Fare=7.25, Embarked="S")


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


@app.get("/")
def read_root() -> dict[str, str]:
    """Say the API is up."""
    return {"message": "Titanic MLflow API is running"}


class HealthResponse(BaseModel):
    status: Literal["ok", "degraded"] = Field(description="'degraded': predictions answer 503.")
    version: str = Field(description="The version of this service.")
    service: str = Field(description="The name of this service.")
    dependencies: dict[str, str] = Field(description="Library versions; is the model loaded?")


@app.get("/health", response_model=HealthResponse)
def health(request: Request) -> HealthResponse:
    """Report whether the service can predict."""
    loaded = request.app.state.model is not None
    return HealthResponse(
        status="ok" if loaded else "degraded",
        version=SERVICE_VERSION,
        service="titanic-api",
        dependencies={**LIBRARIES, "model": "loaded" if loaded else "not loaded"},
    )


class Passenger(BaseModel):
    """One passenger, as the model needs it. Plain types only: no range checks yet."""

    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE]})

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
    survival_status: Literal["Survived", "Not Survived"] = Field(description="Prediction in words.")


async def get_model(request: Request) -> Pipeline:
    """Hand the endpoint the loaded model, or answer 503 if there is none.

    ``async`` because it only reads memory: FastAPI runs it on the event loop
    instead of sending it to the thread pool.
    """
    model: Pipeline | None = request.app.state.model
    if model is None:
        raise HTTPException(503, "The model is not loaded: see the server log for why.")
    return model


@app.post("/predict_single", response_model=PredictionResponse)
def predict_single(
    passenger: Passenger, model: Annotated[Pipeline, Depends(get_model)]
) -> PredictionResponse:
    """Predict survival for one passenger.

    A plain ``def`` (not ``async def``): the model call is CPU work, so FastAPI
    runs it in its thread pool and the event loop stays free for other requests.
    """
    features = pd.DataFrame([passenger.model_dump()])
    prediction = int(model.predict(features)[0])
    return PredictionResponse(prediction=prediction, survival_status=SURVIVAL_STATUS[prediction])

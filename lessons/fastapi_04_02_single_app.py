"""Validate the input: out-of-range passengers get a 422 that names the field.

What it adds over lesson 04: the request is checked *before* the model sees
it. ``Literal`` types for the categories (with a validator refusing ``true``
and ``1.0`` as Pclass 1), ``Field`` bounds for the numbers, finite numbers
only (NaN and Infinity would crash the model), unknown fields refused, and
bodies over 1 MiB refused with 413. Every refusal is a 422 whose ``detail``
lists each problem with its ``loc``; ``validation_error_handler`` keeps that
answer valid JSON whatever the input (NaN, bad UTF-8, deep nesting).

Run it:

    uvicorn lessons.fastapi_04_02_single_app:app --reload

Try it: POST /predict_single with "Age": -5 and read the 422; then with
"Pclass": 7, "Sex": "unknown", or without "Fare".
"""

import logging
import math
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import version
from pathlib import Path
from typing import Annotated, Literal

import mlflow.sklearn
import pandas as pd
from fastapi import Depends, FastAPI, HTTPException, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError
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
# A 1,000-passenger batch (lesson 05) is about 110 kB of JSON; 1 MiB leaves room.
MAX_BODY_BYTES = 1_048_576


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
    title="Titanic tutorial 04_02: single prediction with validation",
    description="Predict whether one Titanic passenger survived; invalid input gets a 422.",
    version=SERVICE_VERSION,
    lifespan=lifespan,
    max_body_size=MAX_BODY_BYTES,  # larger bodies get 413 before they are read
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
    """One passenger, as the model needs it, with every field checked."""

    model_config = ConfigDict(
        extra="forbid", strict=True, allow_inf_nan=False, json_schema_extra={"examples": [EXAMPLE]}
    )

    Pclass: Literal[1, 2, 3] = Field(description="Ticket class: 1 = first, 2 = second, 3 = third.")
    Sex: Literal["male", "female"] = Field(description="'male' or 'female'.")
    Age: float = Field(gt=0, lt=100, description="Age in years, above 0 and below 100.")
    SibSp: int = Field(ge=0, le=10, description="Siblings and spouses aboard, 0 to 10.")
    Parch: int = Field(ge=0, le=10, description="Parents and children aboard, 0 to 10.")
    Fare: float = Field(ge=0, le=1000, description="Ticket fare, 0 to 1,000.")
    Embarked: Literal["C", "Q", "S"] = Field(description="Cherbourg, Queenstown or Southampton.")

    @field_validator("Pclass", mode="before")
    @classmethod
    def pclass_is_a_whole_number(cls, value: object) -> object:
        """Refuse JSON ``true`` and ``1.0``, which ``Literal`` lets in (``True == 1.0 == 1``)."""
        if isinstance(value, bool | float):
            raise PydanticCustomError(
                "literal_error", "Input should be 1, 2 or 3", {"expected": "1, 2 or 3"}
            )
        return value


class PredictionResponse(BaseModel):
    """The model's answer for one passenger."""

    prediction: Literal[0, 1] = Field(description="1 if the model predicts survival, else 0.")
    survival_status: Literal["Survived", "Not Survived"] = Field(description="Prediction in words.")


async def get_model(request: Request) -> Pipeline:
    """The loaded model, or a 503 (``async``: reading memory needs no thread of its own)."""
    model: Pipeline | None = request.app.state.model
    if model is None:
        raise HTTPException(503, "The model is not loaded: see the server log for why.")
    return model


@app.post("/predict_single", response_model=PredictionResponse)
def predict_single(
    passenger: Passenger, model: Annotated[Pipeline, Depends(get_model)]
) -> PredictionResponse:
    """Predict survival for one passenger (a plain ``def``: the model call runs in a thread)."""
    features = pd.DataFrame([passenger.model_dump()])
    prediction = int(model.predict(features)[0])
    return PredictionResponse(prediction=prediction, survival_status=SURVIVAL_STATUS[prediction])


# --- Supporting machinery --------------------------------------------------------------
# In the same order in every lesson: 422 error handler, metrics middleware, log writer.


def _as_json(value: float | str | bytes) -> float | str:
    """An input as JSON can carry it: NaN and Infinity as text, bad UTF-8 escaped."""
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    return value.encode("utf-8", "backslashreplace").decode("utf-8")  # lone surrogates


ERROR_ENCODERS = {float: _as_json, str: _as_json, bytes: _as_json}  # for a 422's "input"


@app.exception_handler(RequestValidationError)
async def validation_error_handler(request: Request, exc: RequestValidationError) -> JSONResponse:
    """FastAPI's 422 response, but always valid JSON, whatever the client sent."""
    errors = exc.errors()
    try:  # encoding and rendering: either may hit Python's recursion limit
        detail = jsonable_encoder(errors, custom_encoder=ERROR_ENCODERS)
        return JSONResponse({"detail": detail}, status.HTTP_422_UNPROCESSABLE_CONTENT)
    except RecursionError:  # nested too deep to echo back: leave the input out
        short = [{"type": e["type"], "loc": e["loc"], "msg": e["msg"]} for e in errors]
        detail = jsonable_encoder(short, custom_encoder=ERROR_ENCODERS)
        return JSONResponse({"detail": detail}, status.HTTP_422_UNPROCESSABLE_CONTENT)

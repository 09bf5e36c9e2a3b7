"""The four golden signals: traffic, latency, errors and saturation for every request.

What it adds over lesson P00: a middleware that measures every request,
whatever the endpoint, without touching the endpoints: traffic
(``http_requests_total`` by method, route and status), latency (a histogram,
so PromQL can compute percentiles), errors (``http_errors_total``: status 500
or above) and saturation (requests in progress, the process' CPU and memory).
Labels stay few: ``endpoint`` is the route *template*, never the raw URL
(unknown paths share "<unmatched>"), and a method a client invents is "other",
so no client can create new time series. Scrapes of /metrics are not counted.

Run it:

    uvicorn lessons.prometheus_01_four_signal_monitor_app:app --reload

Try it: make a few predictions, call a path that does not exist, then read
the ``http_*`` lines on /metrics.
"""

import logging
import math
import os
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from importlib.metadata import version
from pathlib import Path
from typing import Annotated, Literal

import mlflow.sklearn
import pandas as pd
from fastapi import Depends, FastAPI, HTTPException, Request, Response, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from pydantic import BaseModel, ConfigDict, Field, RootModel, field_validator
from pydantic_core import PydanticCustomError
from sklearn.pipeline import Pipeline
from starlette.routing import Match
from starlette.types import Scope

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
MAX_BATCH_SIZE = 1_000
BATCH_EXAMPLE = [
    EXAMPLE,
    dict(Pclass=1, Sex="female", Age=38.0, SibSp=1, Parch=0, Fare=71.2833, Embarked="C"),
    dict(Pclass=2, Sex="female", Age=4.0, SibSp=0, Parch=1, Fare=23.0, Embarked="S"),
]
HTTP_METHODS = {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}
UNMATCHED = "<unmatched>"

# This lesson's own registry, and the metrics it holds.
registry = CollectorRegistry()
ProcessCollector(registry=registry)  # process_cpu_seconds_total, process_resident_memory_bytes, ...
PREDICTIONS = Counter("titanic_predictions", "Passengers predicted.", registry=registry)
REQUESTS = Counter(
    "http_requests", "HTTP requests.", ["method", "endpoint", "status_code"], registry=registry
)
LATENCY = Histogram(
    "http_request_duration_seconds",
    "Time to answer an HTTP request.",
    ["endpoint"],
    buckets=(0.001, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
    registry=registry,
)
ERRORS = Counter(
    "http_errors", "Server errors: status 500 or above.", ["method", "endpoint"], registry=registry
)
IN_PROGRESS = Gauge("http_requests_in_progress", "Requests being answered.", registry=registry)


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
    title="Titanic tutorial P01: the four golden signals",
    description="The batch API, measured: traffic, latency, errors and saturation.",
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
    PREDICTIONS.inc()
    return PredictionResponse(prediction=prediction, survival_status=SURVIVAL_STATUS[prediction])


class PassengerBatch(RootModel[list[Passenger]]):
    """A JSON list of 1 to 1,000 passengers."""

    root: list[Passenger] = Field(min_length=1, max_length=MAX_BATCH_SIZE)
    model_config = ConfigDict(json_schema_extra={"examples": [BATCH_EXAMPLE]})


class BatchItem(PredictionResponse):
    passenger_index: int = Field(description="Position of the passenger in the request, from 0.")


class BatchResponse(BaseModel):
    """The model's answers for a batch, in request order."""

    batch_predictions: list[BatchItem]


@app.post("/predict_batch", response_model=BatchResponse)
def predict_batch(
    batch: PassengerBatch, model: Annotated[Pipeline, Depends(get_model)]
) -> BatchResponse:
    """Predict survival for a list of passengers with one model call."""
    predictions = model.predict(pd.DataFrame(batch.model_dump())).tolist()
    PREDICTIONS.inc(len(predictions))
    items = [
        BatchItem(passenger_index=index, prediction=p, survival_status=SURVIVAL_STATUS[p])
        for index, p in enumerate(predictions)
    ]
    return BatchResponse(batch_predictions=items)


@app.get("/metrics", include_in_schema=False)
def metrics() -> Response:
    """Every metric in this lesson's registry, in Prometheus' text format."""
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


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


@app.middleware("http")
async def golden_signals(request: Request, call_next: Callable) -> Response:
    """Count, time and classify every request except scrapes of /metrics."""
    if request.url.path == "/metrics":
        return await call_next(request)
    start = time.perf_counter()
    status_code = 500  # stays 500 if the endpoint raises
    IN_PROGRESS.inc()
    try:
        response: Response = await call_next(request)
        status_code = response.status_code
        return response
    finally:
        method = request.method if request.method in HTTP_METHODS else "other"
        endpoint = route_template(request.scope)
        REQUESTS.labels(method, endpoint, str(status_code)).inc()
        LATENCY.labels(endpoint).observe(time.perf_counter() - start)
        if status_code >= 500:
            ERRORS.labels(method, endpoint).inc()
        IN_PROGRESS.dec()


def route_template(scope: Scope) -> str:
    """The template of the route for this path ("/predict_single"), or UNMATCHED."""
    for route in app.router.routes:
        if route.matches(scope)[0] is not Match.NONE:  # PARTIAL: right path, wrong method
            return str(getattr(route, "path", UNMATCHED))
    return UNMATCHED

"""The four golden signals: traffic, latency, errors and saturation for every request.

What it adds over lesson P00: an HTTP middleware that measures every request,
whatever the endpoint, without touching the endpoints themselves. Google's SRE
book calls these four the "golden signals" of a service:

- traffic, ``http_requests`` (Counter; /metrics shows ``http_requests_total``)
  by ``method``, ``endpoint`` and ``status_code``;
- latency, ``http_request_duration_seconds`` by ``endpoint``, a **Histogram**
  with buckets from 1 ms to 2.5 s (a prediction takes a few milliseconds).
  A histogram counts requests per latency bucket, so PromQL can compute
  percentiles over any time window, for example the p95:
  ``histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket[5m])))``.
  A counter of summed seconds could only give an average, which hides the
  slow tail that users feel;
- errors, ``http_errors`` (``http_errors_total``) by ``method`` and
  ``endpoint``: responses with status 500 or above, and exceptions that
  escaped the endpoint (answered with a 500); each failed request is counted
  once;
- saturation, ``http_requests_in_progress`` (a Gauge: it goes up and down),
  plus the process collector's ``process_cpu_seconds_total`` and
  ``process_resident_memory_bytes``.

Labels must stay few. ``endpoint`` is the route *template* ("/predict_single"),
never the raw URL: every path that matches no route shares the one value
"<unmatched>", so a scanner trying thousands of random URLs cannot create
thousands of time series. Scrapes of /metrics itself are not counted: they are
Prometheus' traffic, not your users', and would show a steady request rate
even when nobody uses the API.

The middleware, the class ``GoldenSignals``, is added when the module is
imported (``app.add_middleware``), never inside ``lifespan``: Starlette
builds its middleware stack when the app starts and refuses changes after
that.

Run it:

    uvicorn lessons.prometheus_01_four_signal_monitor_app:app --reload

Try it: make a few predictions, call a path that does not exist, then read
the ``http_*`` lines on /metrics.
"""

import logging
import math
import os
import threading
import time
from collections.abc import AsyncIterator
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
from starlette.types import ASGIApp, Message, Receive, Scope, Send

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
MAX_BATCH_SIZE = 1_000

# This lesson's own registry, and the metrics it holds.
registry = CollectorRegistry()
ProcessCollector(registry=registry)  # process_cpu_seconds_total, process_resident_memory_bytes, ...
PREDICTIONS = Counter(
    "titanic_predictions", "Passengers the model has predicted for.", registry=registry
)
REQUESTS = Counter(
    "http_requests",
    "HTTP requests answered, by method, route template and status code.",
    ["method", "endpoint", "status_code"],
    registry=registry,
)
LATENCY = Histogram(
    "http_request_duration_seconds",
    "Time to answer an HTTP request, by route template.",
    ["endpoint"],
    buckets=(0.001, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
    registry=registry,
)
ERRORS = Counter(
    "http_errors",
    "HTTP requests that failed on the server side (status 500 or above).",
    ["method", "endpoint"],
    registry=registry,
)
IN_PROGRESS = Gauge(
    "http_requests_in_progress", "HTTP requests being answered right now.", registry=registry
)
UNMATCHED = "<unmatched>"
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
    title="Titanic tutorial P01: the four golden signals",
    description="The batch API, measured: traffic, latency, errors and saturation.",
    version=SERVICE_VERSION,
    lifespan=lifespan,
    max_body_size=MAX_BODY_BYTES,  # larger bodies get 413 before they are read
)


class Passenger(BaseModel):
    """One passenger, as the model needs it, with every field checked."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        allow_inf_nan=False,
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
        },
    )

    Pclass: Literal[1, 2, 3] = Field(description="Ticket class: 1 = first, 2 = second, 3 = third.")
    Sex: Literal["male", "female"] = Field(description="'male' or 'female'.")
    Age: float = Field(gt=0, lt=100, description="Age in years, above 0 and below 100.")
    SibSp: int = Field(ge=0, le=10, description="Siblings and spouses aboard, 0 to 10.")
    Parch: int = Field(ge=0, le=10, description="Parents and children aboard, 0 to 10.")
    Fare: float = Field(ge=0, le=1000, description="Ticket fare, 0 to 1,000.")
    Embarked: Literal["C", "Q", "S"] = Field(
        description="Port of embarkation: C = Cherbourg, Q = Queenstown, S = Southampton."
    )

    @field_validator("Pclass", mode="before")
    @classmethod
    def pclass_is_a_whole_number(cls, value: object) -> object:
        """Refuse JSON ``true`` and ``1.0`` as Pclass, with the error 7 would get.

        ``Literal[1, 2, 3]`` compares with ``==``, and in Python ``True == 1`` and
        ``1.0 == 1``, so on its own it would let them in as first class.
        """
        if isinstance(value, bool | float):
            raise PydanticCustomError(
                "literal_error", "Input should be 1, 2 or 3", {"expected": "1, 2 or 3"}
            )
        return value


class PassengerBatch(RootModel[list[Passenger]]):
    """A JSON list of 1 to 1,000 passengers."""

    root: list[Passenger] = Field(min_length=1, max_length=MAX_BATCH_SIZE)

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                [
                    {
                        "Pclass": 3,
                        "Sex": "male",
                        "Age": 22.0,
                        "SibSp": 1,
                        "Parch": 0,
                        "Fare": 7.25,
                        "Embarked": "S",
                    },
                    {
                        "Pclass": 1,
                        "Sex": "female",
                        "Age": 38.0,
                        "SibSp": 1,
                        "Parch": 0,
                        "Fare": 71.2833,
                        "Embarked": "C",
                    },
                    {
                        "Pclass": 2,
                        "Sex": "female",
                        "Age": 4.0,
                        "SibSp": 0,
                        "Parch": 1,
                        "Fare": 23.0,
                        "Embarked": "S",
                    },
                ]
            ]
        }
    )


class PredictionResponse(BaseModel):
    """The model's answer for one passenger."""

    prediction: Literal[0, 1] = Field(description="1 if the model predicts survival, else 0.")
    survival_status: Literal["Survived", "Not Survived"] = Field(
        description="The prediction in words."
    )


class BatchItem(PredictionResponse):
    """The model's answer for one passenger of a batch."""

    passenger_index: int = Field(description="Position of the passenger in the request, from 0.")


class BatchResponse(BaseModel):
    """The model's answers for a batch, in request order."""

    batch_predictions: list[BatchItem]


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


def _finite_or_text(value: float) -> float | str:
    """JSON has no NaN or Infinity: write such inputs as text in error messages."""
    return value if math.isfinite(value) else str(value)


def _printable_text(value: str | bytes) -> str:
    """JSON text must be valid UTF-8: write bad bytes and lone surrogates as escapes.

    A lone surrogate such as ``"\\ud800"`` is a legal JSON escape, but not UTF-8.
    """
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    return value.encode("utf-8", "backslashreplace").decode("utf-8")


# How validation_error_handler writes the client's input back in a 422.
ERROR_ENCODERS = {float: _finite_or_text, str: _printable_text, bytes: _printable_text}


@app.exception_handler(RequestValidationError)
async def validation_error_handler(request: Request, exc: RequestValidationError) -> JSONResponse:
    """FastAPI's 422 response, but always valid JSON, whatever the client sent."""
    errors = exc.errors()
    try:
        detail = jsonable_encoder(errors, custom_encoder=ERROR_ENCODERS)
        return JSONResponse(
            status_code=status.HTTP_422_UNPROCESSABLE_CONTENT, content={"detail": detail}
        )
    except RecursionError:
        # A body nested nearly as deep as Python's recursion limit parses, but
        # echoing it back would overflow that limit (a 500): leave the input out.
        short = [{"type": e["type"], "loc": e["loc"], "msg": e["msg"]} for e in errors]
        detail = jsonable_encoder(short, custom_encoder=ERROR_ENCODERS)
        return JSONResponse(
            status_code=status.HTTP_422_UNPROCESSABLE_CONTENT, content={"detail": detail}
        )


class GoldenSignals:
    """Count, time and classify every request except scrapes of /metrics.

    A "pure ASGI" middleware: a class that wraps the app, sees each request's
    ``scope`` and every message the app sends back, and reads the status code
    from the first one. Starlette's shorter ``@app.middleware("http")``
    decorator would run the endpoint in a separate task and pass the response
    through a memory stream: timed in process on a 2-core machine, that costs
    about half a millisecond of CPU per request, a tenth of a single prediction.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] == "/metrics":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status_code = 500  # stays 500 if the endpoint raises before answering

        async def send_and_note_status(message: Message) -> None:
            nonlocal status_code
            if message["type"] == "http.response.start":
                status_code = message["status"]
            await send(message)

        IN_PROGRESS.inc()
        try:
            await self.app(scope, receive, send_and_note_status)
        finally:
            endpoint = route_template(scope)
            REQUESTS.labels(scope["method"], endpoint, str(status_code)).inc()
            LATENCY.labels(endpoint).observe(time.perf_counter() - start)
            if status_code >= 500:
                ERRORS.labels(scope["method"], endpoint).inc()
            IN_PROGRESS.dec()


# Added when the module is imported: Starlette refuses new middleware once the app runs.
app.add_middleware(GoldenSignals)


def route_template(scope: Scope) -> str:
    """The path template of the route that answered ("/predict_single"), or UNMATCHED.

    Routing has run by now: FastAPI notes the path operation it matched in the
    scope. The documentation pages (/docs, /openapi.json) are plain Starlette
    routes that do not, so look those up among the app's routes.
    """
    route = scope.get("route")
    if route is not None:
        return str(route.path)
    for candidate in app.router.routes:
        if candidate.matches(scope)[0] is Match.FULL:
            return str(getattr(candidate, "path", UNMATCHED))
    return UNMATCHED


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
    PREDICTIONS.inc()
    return PredictionResponse(prediction=prediction, survival_status=SURVIVAL_STATUS[prediction])


@app.post("/predict_batch", response_model=BatchResponse)
def predict_batch(
    batch: PassengerBatch, model: Annotated[Pipeline, Depends(get_model)]
) -> dict[str, list[dict[str, object]]]:
    """Predict survival for a list of passengers with one model call.

    Written so that 1,000 passengers cost little more than one:
    ``batch.model_dump()`` turns the whole validated list into dicts in one
    call of pydantic's compiled core (not one Python call per passenger), and
    the answer is plain dicts that FastAPI checks in one go against
    ``response_model`` (which also documents it in /docs), instead of 1,000
    ``BatchItem`` objects built one Python call at a time.
    """
    features = pd.DataFrame(batch.model_dump())
    with MODEL_LOCK:
        predictions = model.predict(features).tolist()
    PREDICTIONS.inc(len(predictions))
    return {
        "batch_predictions": [
            {
                "passenger_index": index,
                "prediction": prediction,
                "survival_status": SURVIVAL_STATUS[prediction],
            }
            for index, prediction in enumerate(predictions)
        ]
    }


@app.get("/metrics", include_in_schema=False)
def metrics() -> Response:
    """Every metric in this lesson's registry, in Prometheus' text format."""
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

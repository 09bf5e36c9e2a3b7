"""Simulated traffic: N random passengers, predicted, counted and logged like real ones.

What it adds over lesson P03: ``POST /simulate_predictions``, so the metrics, the log
and the dashboards have something to show without a client. ``num_executions`` (1 to
100, default 10) bounds the work; the same ``seed`` gives the same passengers.

Run it:

    uvicorn lessons.prometheus_04_multi_execute_app:app --reload

Try it: POST /simulate_predictions?num_executions=25&seed=7 twice: the same 25 passengers.
"""

import io
import logging
import math
import os
import random
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Annotated, Literal

import mlflow.models
import mlflow.sklearn
import pandas as pd
from fastapi import Depends, FastAPI, HTTPException, Query, Request, Response, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
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
from pydantic_core import PydanticCustomError, to_json
from sklearn.pipeline import Pipeline
from starlette.routing import Match
from starlette.types import Scope

logger = logging.getLogger("uvicorn.error")

SERVICE_VERSION = "1.0.0"
LIBRARIES = {name: version(name) for name in ("fastapi", "mlflow", "scikit-learn")}
COMMITTED_MODEL = (  # found relative to this file, not the current directory: any clone works
    Path(__file__).resolve().parents[1]
    / "mlruns/titanic-survival/models/m-5c784fcf692248669a11bef6a1632938/artifacts"
)
SURVIVAL_STATUS = {0: "Not Survived", 1: "Survived"}
# The passenger /docs shows as an example: the first one in the data set.
EXAMPLE = dict(Pclass=3, Sex="male", Age=22.0, SibSp=1, Parch=0, Fare=7.25, Embarked="S")
MAX_BODY_BYTES = 1_048_576  # a 1,000-passenger batch (lesson 05) is about 110 kB of JSON
MAX_BATCH_SIZE = 1_000
MAX_ERRORS = 100  # a 422 lists at most this many errors (and says how many there were)
BATCH_EXAMPLE = [
    EXAMPLE,
    dict(Pclass=1, Sex="female", Age=38.0, SibSp=1, Parch=0, Fare=71.2833, Embarked="C"),
    dict(Pclass=2, Sex="female", Age=4.0, SibSp=0, Parch=1, Fare=23.0, Embarked="S"),
]
TOO_LARGE = PlainTextResponse("Content Too Large", 413)  # no endpoint runs for such a body
HTTP_METHODS = {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}
UNMATCHED = "<unmatched>"
LOG_DIR = Path(__file__).resolve().parents[1] / "logs"

registry = CollectorRegistry()  # this lesson's own registry, and the metrics it holds
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
PREDICTED_CLASS = Counter(
    "titanic_predictions_output",
    "Passengers predicted, by predicted class.",
    ["predicted_class"],
    registry=registry,
)
PREDICTION_TYPE = Counter(
    "prediction_type", "Prediction requests, by kind.", ["type"], registry=registry
)
AGES = Histogram(
    "passenger_age_distribution",
    "Ages of the passengers sent for prediction, in years.",
    buckets=(5, 12, 18, 25, 35, 45, 55, 65, 80, 100),
    registry=registry,
)
SURVIVAL_PROBABILITY = Histogram(
    "titanic_survival_probability",
    "The model's probability that a passenger survived.",
    buckets=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0),
    registry=registry,
)
LOG_ERRORS = Counter("prediction_log_errors", "Predictions not logged.", registry=registry)
for _status in SURVIVAL_STATUS.values():  # the labelled series read 0 before any prediction
    PREDICTED_CLASS.labels(_status)
for _kind in ("single", "batch", "simulation"):
    PREDICTION_TYPE.labels(_kind)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Load the model and open the prediction log once; the server starts even if that fails."""
    model_uri = os.environ.get("TITANIC_MODEL_URI", str(COMMITTED_MODEL))
    app.state.model = None
    app.state.model_details = {"model_uri": model_uri}
    try:
        app.state.model = mlflow.sklearn.load_model(model_uri)
        metadata = mlflow.models.Model.load(model_uri)
        app.state.model_details = {
            "experiment_id": (metadata.metadata or {}).get("experiment_id"),
            "run_id": metadata.run_id,
            "model_id": metadata.model_id,
            "model_uri": model_uri,
        }
        logger.info("Model loaded from %s", model_uri)
    except Exception:
        logger.exception("Could not load the model from %s; predictions will answer 503", model_uri)
    log_path = os.environ.get("PREDICTION_LOG_PATH")
    app.state.prediction_log = PredictionLog(Path(log_path) if log_path else default_log_path())
    yield
    app.state.prediction_log.close()


app = FastAPI(
    title="Titanic tutorial P04: simulated traffic",
    description="Everything so far, plus an endpoint that simulates N predictions.",
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
    [prediction] = predict(model, [passenger.model_dump()], "single")
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
    predictions = predict(model, batch.model_dump(), "batch")
    items = [
        BatchItem(passenger_index=index, prediction=p, survival_status=SURVIVAL_STATUS[p])
        for index, p in enumerate(predictions)
    ]
    return BatchResponse(batch_predictions=items)


class SimulatedPrediction(BatchItem):
    passenger: Passenger


class SimulationResponse(BaseModel):
    num_executions: int = Field(description="How many passengers were simulated.")
    seed: int | None = Field(description="The seed used, if one was given.")
    predictions: list[SimulatedPrediction]


@app.post("/simulate_predictions", response_model=SimulationResponse)
def simulate_predictions(
    model: Annotated[Pipeline, Depends(get_model)],
    num_executions: Annotated[int, Query(ge=1, le=100, description="Passengers, 1 to 100.")] = 10,
    seed: Annotated[int | None, Query(description="The same seed, the same passengers.")] = None,
) -> SimulationResponse:
    """Predict for N random passengers in one model call, counted and logged as 'simulation'."""
    rng = random.Random(seed)
    passengers = [random_passenger(rng) for _ in range(num_executions)]
    predictions = predict(model, [p.model_dump() for p in passengers], "simulation")
    items = [
        SimulatedPrediction(
            passenger=x, passenger_index=i, prediction=y, survival_status=SURVIVAL_STATUS[y]
        )
        for i, (x, y) in enumerate(zip(passengers, predictions, strict=True))
    ]
    return SimulationResponse(num_executions=num_executions, seed=seed, predictions=items)


@app.get("/metrics", include_in_schema=False)
def metrics() -> Response:
    """Every metric in this lesson's registry, in Prometheus' text format."""
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


def predict(model: Pipeline, passengers: list[dict[str, object]], kind: str) -> list[int]:
    """One ``predict_proba`` call for any number of passengers, the model metrics and the log."""
    probabilities = model.predict_proba(pd.DataFrame(passengers))
    predictions: list[int] = probabilities.argmax(axis=1).tolist()
    PREDICTION_TYPE.labels(kind).inc()
    PREDICTIONS.inc(len(predictions))
    for passenger, y, survival in zip(passengers, predictions, probabilities[:, 1], strict=True):
        PREDICTED_CLASS.labels(SURVIVAL_STATUS[y]).inc()
        AGES.observe(passenger["Age"])
        SURVIVAL_PROBABILITY.observe(survival)
    log_predictions(kind, passengers, predictions, probabilities.tolist())
    return predictions


def log_predictions(
    kind: str, passengers: list[dict[str, object]], predictions: list[int], probabilities: list
) -> None:
    """Append one line per passenger to the prediction log."""
    now = datetime.now(UTC).isoformat()
    shared = {"execution_time": now, **app.state.model_details, "prediction_type": kind}
    records = [
        {**shared, **passenger, "prediction": y, "probability": {"Not Survived": n, "Survived": s}}
        for passenger, y, (n, s) in zip(passengers, predictions, probabilities, strict=True)
    ]
    app.state.prediction_log.write(records)


def random_passenger(rng: random.Random) -> Passenger:
    """A random passenger within the validated ranges (and near the real data's)."""
    return Passenger(
        Pclass=rng.choice([1, 2, 3]),
        Sex=rng.choice(["male", "female"]),
        Age=round(rng.uniform(0.5, 80), 1),
        SibSp=rng.randint(0, 5),
        Parch=rng.randint(0, 4),
        Fare=round(rng.uniform(5, 300), 2),
        Embarked=rng.choice(["C", "Q", "S"]),
    )


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
    short = [{"type": e["type"], "loc": e["loc"], "msg": e["msg"]} for e in errors[:MAX_ERRORS]]
    if len(errors) > MAX_ERRORS:  # 60,000 unknown keys: 100 errors, no inputs; not 12 MB
        note = f"Only the first {MAX_ERRORS} of {len(errors)} errors are shown."
        errors = short = [*short, {"type": "too_many_errors", "loc": ["body"], "msg": note}]
    try:  # encoding and rendering: either may hit Python's recursion limit
        detail = jsonable_encoder(errors, custom_encoder=ERROR_ENCODERS)
        return JSONResponse({"detail": detail}, status.HTTP_422_UNPROCESSABLE_CONTENT)
    except RecursionError:  # nested too deep to echo back: leave the input out
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
        too_large = int(request.headers.get("content-length") or 0) > MAX_BODY_BYTES  # counted
        response: Response = TOO_LARGE if too_large else await call_next(request)
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


class PredictionLog:
    """An append-only JSON-lines file; a lock makes numbering and writing one step."""

    def __init__(self, path: Path) -> None:
        """Open for appending: ``execute`` numbers the file's lines, so go on after the last."""
        self.path = path
        self.lock = threading.Lock()
        self.file: io.FileIO | None = None
        self.last_execute = 0
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.last_execute = self._whole_lines() if self.path.is_file() else 0
            self.file = io.FileIO(self.path, "a")
            logger.info("Logging predictions to %s after line %d", self.path, self.last_execute)
        except OSError:
            logger.exception("Cannot open the prediction log %s; not logging", self.path)

    def write(self, records: list[dict[str, object]]) -> None:
        """Number the records and append them as whole lines: all of them or none."""
        with self.lock:
            try:
                if self.file is None:
                    raise OSError(f"the prediction log {self.path} is not open")
                numbered = enumerate(records, start=self.last_execute + 1)
                data = b"".join(to_json({"execute": n, **r}) + b"\n" for n, r in numbered)
                start = os.fstat(self.file.fileno()).st_size
                if self.file.write(data) != len(data):  # a full disk took only part of it
                    os.ftruncate(self.file.fileno(), start)  # so the file ends in a whole line
                    raise OSError(f"the disk is full: {self.path}")
                self.last_execute += len(records)
            except (OSError, ValueError):
                LOG_ERRORS.inc(len(records))
                logger.exception("Could not write %d predictions to the log", len(records))

    def close(self) -> None:
        if self.file is not None:
            self.file.close()

    def _whole_lines(self) -> int:
        """Count the whole lines, parsing none (any content starts); cut off a torn last line."""
        lines, whole_bytes = 0, 0
        with self.path.open("rb") as file:
            for line in file:
                if line.endswith(b"\n"):
                    lines, whole_bytes = lines + 1, whole_bytes + len(line)
        if self.path.stat().st_size > whole_bytes:
            logger.warning("Cutting a torn last line off %s", self.path)
            os.truncate(self.path, whole_bytes)
        return lines


def default_log_path() -> Path:
    """A new file per server start, named after the start time and the process id."""
    folder = Path(os.environ.get("PREDICTION_LOG_DIR", LOG_DIR))
    started = datetime.now(UTC).strftime("%Y%m%dT%H%M%S_%fZ")
    return folder / f"predictions_{started}_{os.getpid()}.jsonl"

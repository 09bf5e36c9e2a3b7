"""The endpoints: the final lesson's, plus GET /ready.

Each endpoint gets what it needs through a FastAPI dependency (``get_model``,
``get_bookkeeper``), so a test can swap any of them with
``app.dependency_overrides``.
"""

import logging
import random
from datetime import UTC, datetime
from importlib.metadata import version
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, BackgroundTasks, Depends, HTTPException, Query, Request, status
from fastapi.responses import JSONResponse, Response
from pydantic_core import to_json

from titanic_api import model as model_module
from titanic_api.body import ValidatedJSONRoute
from titanic_api.feedback import StoreUnavailable
from titanic_api.feedback_metrics import ModelMonitor
from titanic_api.metrics import Metrics
from titanic_api.prediction_log import PredictionLog
from titanic_api.schemas import (
    SURVIVAL_STATUS,
    BatchResponse,
    ErrorMessage,
    FeedbackResponse,
    HealthResponse,
    IdentifiedPrediction,
    LabelBatch,
    Outcome,
    Passenger,
    PassengerBatch,
    ReadyResponse,
    SimulatedPrediction,
    SimulationResponse,
)

SERVICE_VERSION = "1.0.0"
SERVICE_NAME = "titanic-api"
# Looked up once, at import: the answer never changes while the process runs.
LIBRARIES = {name: version(name) for name in ("fastapi", "mlflow", "scikit-learn")}
NOT_LOADED = "The model is not loaded: see the server log for why."
FEEDBACK_UNAVAILABLE = "the feedback store is unavailable (see the server log)"
logger = logging.getLogger("uvicorn.error")

# Every status a client can get, documented in /openapi.json (422 FastAPI adds itself).
UNAVAILABLE: dict[int | str, dict[str, Any]] = {
    503: {"model": ErrorMessage, "description": "The model is not loaded."}
}
BODY_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorMessage, "description": "The body could not be parsed at all."}
}
# The app's body limit answers any request that announces more than 1 MiB, on any route.
TOO_LARGE: dict[int | str, dict[str, Any]] = {
    413: {
        "description": "The body is larger than 1 MiB (answered before it is read).",
        "content": {"text/plain": {"schema": {"type": "string", "example": "Content Too Large"}}},
    }
}

# Bodies are validated from their JSON bytes in one pass (see titanic_api.body).
router = APIRouter(route_class=ValidatedJSONRoute, responses=TOO_LARGE)


async def get_model(request: Request) -> Any:
    """The loaded model, or a 503 if there is none (``async``: it only reads memory)."""
    model = request.app.state.model
    if model is None:
        raise HTTPException(status_code=status.HTTP_503_SERVICE_UNAVAILABLE, detail=NOT_LOADED)
    return model


class Bookkeeper:
    """The model metrics and the prediction log of every prediction request."""

    def __init__(
        self,
        metrics: Metrics,
        log: PredictionLog,
        model_details: dict[str, object],
        monitor: ModelMonitor,
    ) -> None:
        self.metrics = metrics
        self.log = log
        self.model_details = model_details
        self.monitor = monitor

    async def record(
        self,
        kind: str,
        passengers: list[dict[str, object]],
        predictions: list[Outcome],
        probabilities: np.ndarray,
        ids: list[str] | None = None,
    ) -> None:
        """Update the model metrics and append one log line per passenger.

        ``ids``: real traffic's prediction ids, added to the log lines; real passengers
        are also counted into the reference profile's bins (titanic_api.feedback_metrics).

        ``async`` although it never awaits: FastAPI runs an async background task
        on the event loop itself, where a plain function would cost one more trip
        to the thread pool (about 2 ms of a 1,000-passenger batch is spent here).
        """
        ages = np.fromiter((p["Age"] for p in passengers), dtype=float, count=len(passengers))
        survivors = sum(predictions)
        self.metrics.record_predictions(kind, ages, probabilities[:, 1], survivors)
        records = [
            {
                **passenger,
                "prediction": prediction,
                "probability": {"Not Survived": p_not, "Survived": p_yes},
            }
            for passenger, prediction, (p_not, p_yes) in zip(
                passengers, predictions, probabilities.tolist(), strict=True
            )
        ]
        if ids is not None:
            columns = {name: [p[name] for p in passengers] for name in model_module.FEATURES}
            self.monitor.observe(columns, probabilities[:, 1])
            for record, prediction_id in zip(records, ids, strict=True):
                record["prediction_id"] = prediction_id
        shared = {
            "execution_time": datetime.now(UTC).isoformat(),
            **self.model_details,
            "prediction_type": kind,
        }
        self.log.write(shared, records)


async def get_bookkeeper(request: Request) -> Bookkeeper:
    bookkeeper: Bookkeeper = request.app.state.bookkeeper
    return bookkeeper


def predict(
    model: Any,
    bookkeeper: Bookkeeper,
    background: BackgroundTasks,
    passengers: list[dict[str, object]],
    kind: str,
) -> list[Outcome]:
    """One model call for any number of passengers; the bookkeeping follows the answer.

    Called on the event loop (the endpoints are ``async``): a prediction is CPU
    work under the GIL, so a thread pool would only add two thread switches per
    request and make threads take turns; one worker process uses one core either
    way, and more cores need more worker processes (``titanic_api/gunicorn_conf.py``).
    The price: while a prediction runs (a few ms, about 10 for 1,000 passengers)
    the worker answers nothing else, /health and /ready included.

    FastAPI runs background tasks after the answer's last byte is sent: the
    client does not wait for the metrics and the log lines. A normal stop
    (SIGTERM) waits for them; a process killed in between loses them.
    """
    probabilities = model_module.predict_proba(model, passengers)
    predictions: list[Outcome] = probabilities.argmax(axis=1).tolist()
    background.add_task(bookkeeper.record, kind, passengers, predictions, probabilities)
    return predictions


async def predict_real(
    model: Any,
    bookkeeper: Bookkeeper,
    background: BackgroundTasks,
    passengers: list[dict[str, object]],
    kind: str,
) -> tuple[list[Outcome], list[str]]:
    """``predict`` for real traffic: each prediction gets an id, stored before the answer."""
    probabilities = model_module.predict_proba(model, passengers)
    predictions: list[Outcome] = probabilities.argmax(axis=1).tolist()
    ids = await bookkeeper.monitor.remember(probabilities[:, 1], predictions)
    background.add_task(bookkeeper.record, kind, passengers, predictions, probabilities, ids)
    return predictions, ids


Model = Annotated[Any, Depends(get_model)]
Books = Annotated[Bookkeeper, Depends(get_bookkeeper)]


@router.get("/")
async def read_root() -> dict[str, str]:
    """Say the API is up."""
    return {"message": "Titanic MLflow API is running"}


@router.get("/health", response_model=HealthResponse)
async def health(request: Request) -> HealthResponse:
    """Liveness: 200 while the process serves; ``status`` says whether it can predict."""
    loaded = request.app.state.model is not None
    bookkeeper = getattr(request.app.state, "bookkeeper", None)
    monitor = bookkeeper.monitor if bookkeeper is not None else None
    return HealthResponse(
        status="ok" if loaded else "degraded",
        version=SERVICE_VERSION,
        service=SERVICE_NAME,
        dependencies={**LIBRARIES, "model": "loaded" if loaded else "not loaded"},
        reference_profile="loaded" if monitor is not None and monitor.binner else "absent",
        feedback_store=monitor.store_kind if monitor is not None else "off",
    )


@router.get(
    "/ready",
    response_model=ReadyResponse,
    responses={503: {"model": ReadyResponse, "description": "Predictions would answer 503."}},
)
async def ready(request: Request) -> JSONResponse:
    """Readiness: 200 when predictions would be answered, else 503 (send no traffic here)."""
    if getattr(request.app.state, "model", None) is None:
        answer = ReadyResponse(ready=False, detail=NOT_LOADED)
        return JSONResponse(answer.model_dump(), status_code=status.HTTP_503_SERVICE_UNAVAILABLE)
    return JSONResponse(ReadyResponse(ready=True, detail="The model is loaded.").model_dump())


@router.post(
    "/predict_single",
    response_model=IdentifiedPrediction,
    responses={**BODY_ERRORS, **UNAVAILABLE},
)
async def predict_single(
    passenger: Passenger, model: Model, books: Books, background: BackgroundTasks
) -> IdentifiedPrediction:
    """Predict survival for one passenger."""
    [prediction], [prediction_id] = await predict_real(
        model, books, background, [vars(passenger)], "single"
    )
    return IdentifiedPrediction(
        prediction=prediction,
        survival_status=SURVIVAL_STATUS[prediction],
        prediction_id=prediction_id,
    )


@router.post(
    "/predict_batch",
    response_model=BatchResponse,
    responses={**BODY_ERRORS, **UNAVAILABLE},
)
async def predict_batch(
    batch: PassengerBatch, model: Model, books: Books, background: BackgroundTasks
) -> Response:
    """Predict survival for 1 to 1,000 passengers with one model call.

    The answer is encoded here and returned as a ready ``Response``: FastAPI
    would otherwise check all 1,000 answers against ``response_model`` again.
    ``response_model`` still documents it (and the tests check real answers).
    """
    predictions, ids = await predict_real(
        model, books, background, [vars(passenger) for passenger in batch.root], "batch"
    )
    answer = {
        "batch_predictions": [
            {
                "passenger_index": index,
                "prediction": prediction,
                "survival_status": SURVIVAL_STATUS[prediction],
                "prediction_id": prediction_id,
            }
            for index, (prediction, prediction_id) in enumerate(zip(predictions, ids, strict=True))
        ]
    }
    return Response(to_json(answer), media_type="application/json")


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


@router.post("/simulate_predictions", response_model=SimulationResponse, responses=UNAVAILABLE)
async def simulate_predictions(
    model: Model,
    books: Books,
    background: BackgroundTasks,
    num_executions: Annotated[
        int, Query(ge=1, le=100, description="How many random passengers to predict, 1 to 100.")
    ] = 10,
    seed: Annotated[
        int | None,
        Query(description="Optional seed: the same seed, the same passengers."),
    ] = None,
) -> SimulationResponse:
    """Predict for N random passengers in one model call, counted and logged as 'simulation'."""
    rng = random.Random(seed)
    passengers = [random_passenger(rng) for _ in range(num_executions)]
    records = [vars(passenger) for passenger in passengers]
    predictions = predict(model, books, background, records, "simulation")
    return SimulationResponse(
        num_executions=num_executions,
        seed=seed,
        predictions=[
            SimulatedPrediction(
                passenger_index=index,
                passenger=passenger,
                prediction=prediction,
                survival_status=SURVIVAL_STATUS[prediction],
            )
            for index, (passenger, prediction) in enumerate(
                zip(passengers, predictions, strict=True)
            )
        ],
    )


@router.post(
    "/feedback",
    response_model=FeedbackResponse,
    responses={
        **BODY_ERRORS,
        503: {"model": ErrorMessage, "description": "The feedback store is off or unavailable."},
    },
)
async def feedback(labels: LabelBatch, books: Books) -> FeedbackResponse:
    """Label earlier predictions with what really happened (1 to 1,000 labels).

    Each prediction counts its first label only, whichever worker or replica
    predicted it; labels for unknown ids are counted as such and never as quality.
    """
    try:
        counts = await books.monitor.label(
            [(label.prediction_id, label.survived) for label in labels.root]
        )
    except StoreUnavailable as error:
        detail = str(error) if books.monitor.store is None else FEEDBACK_UNAVAILABLE
        if books.monitor.store is not None:
            logger.warning("Labels not stored: %s", error)
        raise HTTPException(
            status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
            detail=f"Labels cannot be stored: {detail}.",
        ) from error
    return FeedbackResponse(
        accepted=counts.accepted,
        unknown=counts.unknown,
        already_labelled=counts.already_labelled,
    )


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    """The service's metrics, in OpenMetrics if the scraper asks for it, else Prometheus text."""
    body, content_type = request.app.state.metrics.exposition(request.headers.get("accept"))
    return Response(body, media_type=content_type)

"""The endpoints: the final lesson's, plus GET /ready. They only speak HTTP.

Each endpoint gets what it needs through a FastAPI dependency, named by an
``Annotated`` alias (``ServedModel``, ``Predictions``), so a test can swap any of
them with ``app.dependency_overrides``. The work itself is in ``titanic_api.service``.
"""

import logging
from importlib.metadata import version
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Depends, HTTPException, Query, Request, status
from fastapi.responses import JSONResponse, Response
from pydantic_core import to_json

from titanic_api import SERVICE_NAME, __version__
from titanic_api.body import ValidatedJSONRoute
from titanic_api.feedback import StoreUnavailable
from titanic_api.schemas import (
    SURVIVAL_STATUS,
    BatchResponse,
    ErrorMessage,
    FeedbackResponse,
    HealthResponse,
    IdentifiedPrediction,
    LabelBatch,
    Passenger,
    PassengerBatch,
    ReadyResponse,
    SimulatedPrediction,
    SimulationResponse,
)
from titanic_api.service import PredictionService

# Looked up once, at import: the answer never changes while the process runs.
# MLflow's code comes with the distribution mlflow-skinny (the image installs only that one).
LIBRARIES = {
    name: version(distribution)
    for name, distribution in (
        ("fastapi", "fastapi"),
        ("mlflow", "mlflow-skinny"),
        ("scikit-learn", "scikit-learn"),
    )
}
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
# POST /simulate_predictions, served only where TITANIC_ENABLE_SIMULATION is set (titanic_api.app).
simulation = APIRouter(route_class=ValidatedJSONRoute, responses=TOO_LARGE)


async def get_model(request: Request) -> Any:
    """The loaded model, or a 503 if there is none (``async``: it only reads memory)."""
    model = request.app.state.model
    if model is None:
        raise HTTPException(status_code=status.HTTP_503_SERVICE_UNAVAILABLE, detail=NOT_LOADED)
    return model


async def get_prediction_service(request: Request) -> PredictionService:
    """The app's prediction service, made when the app started."""
    service: PredictionService = request.app.state.prediction_service
    return service


ServedModel = Annotated[Any, Depends(get_model)]
Predictions = Annotated[PredictionService, Depends(get_prediction_service)]


@router.get("/")
async def read_root() -> dict[str, str]:
    """Say the API is up."""
    return {"message": "Titanic MLflow API is running"}


@router.get("/health", response_model=HealthResponse)
async def health(request: Request) -> HealthResponse:
    """Liveness: 200 while the process serves; ``status`` says whether it can predict."""
    loaded = request.app.state.model is not None
    service = getattr(request.app.state, "prediction_service", None)
    monitor = service.monitor if service is not None else None
    return HealthResponse(
        status="ok" if loaded else "degraded",
        version=__version__,
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
    passenger: Passenger, model: ServedModel, service: Predictions, background: BackgroundTasks
) -> IdentifiedPrediction:
    """Predict survival for one passenger."""
    [prediction], [prediction_id] = await service.predict_real(
        model, [vars(passenger)], "single", background
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
    batch: PassengerBatch, model: ServedModel, service: Predictions, background: BackgroundTasks
) -> Response:
    """Predict survival for 1 to 1,000 passengers with one model call.

    The answer is encoded here and returned as a ready ``Response``: FastAPI
    would otherwise check all 1,000 answers against ``response_model`` again.
    ``response_model`` still documents it (and the tests check real answers).
    """
    passengers = [vars(passenger) for passenger in batch.root]
    predictions, ids = await service.predict_real(model, passengers, "batch", background)
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


@simulation.post("/simulate_predictions", response_model=SimulationResponse, responses=UNAVAILABLE)
async def simulate_predictions(
    model: ServedModel,
    service: Predictions,
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
    passengers, predictions = service.simulate(model, num_executions, seed, background)
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
async def feedback(labels: LabelBatch, service: Predictions) -> FeedbackResponse:
    """Label earlier predictions with what really happened (1 to 1,000 labels).

    Each prediction counts its first label only, whichever worker or replica
    predicted it; labels for unknown ids are counted as such, never as quality.
    """
    monitor = service.monitor
    try:
        if monitor is None:
            raise StoreUnavailable("the service has no model monitor")
        counts = await monitor.label(
            [(label.prediction_id, label.survived) for label in labels.root]
        )
    except StoreUnavailable as error:
        store_off = monitor is None or monitor.store is None
        if not store_off:
            logger.warning("Labels not stored: %s", error)
        raise HTTPException(
            status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
            detail=f"Labels cannot be stored: {error if store_off else FEEDBACK_UNAVAILABLE}.",
        ) from error
    return FeedbackResponse(
        accepted=counts.accepted, unknown=counts.unknown, already_labelled=counts.already_labelled
    )


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    """The service's metrics, in OpenMetrics if the scraper asks for it, else Prometheus text."""
    body, content_type = request.app.state.metrics.exposition(request.headers.get("accept"))
    return Response(body, media_type=content_type)

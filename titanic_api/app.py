"""The app factory: ``create_app(settings)`` builds a complete service.

``titanic_api.main`` builds the one uvicorn serves; tests build their own with
other settings. ``Settings`` is read once, when the app is built (from the
environment, if not given), and everything the app makes is made from it: the
metrics' mode, the body limit, the model and the prediction log.
"""

import math
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline

from titanic_api import __version__, feedback_metrics, model
from titanic_api.body import MAX_ERRORS
from titanic_api.limits import REFUSALS_STATE, LiteralPaths, RequestLimits
from titanic_api.metrics import GoldenSignals, Metrics
from titanic_api.prediction_log import open_log
from titanic_api.routes import router, simulation
from titanic_api.service import PredictionService
from titanic_api.settings import ServerSettings, Settings


def _finite_or_text(value: float) -> float | str:
    """JSON has no NaN or Infinity: write such inputs as text in error messages."""
    return value if math.isfinite(value) else str(value)


def _printable_text(value: str | bytes) -> str:
    """JSON text must be valid UTF-8: write bad bytes and lone surrogates as escapes."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    return value.encode("utf-8", "backslashreplace").decode("utf-8")


ERROR_ENCODERS: dict[Any, Callable[[Any], Any]] = {
    float: _finite_or_text,
    str: _printable_text,
    bytes: _printable_text,
}


def too_many_errors(total: int) -> dict[str, Any]:
    """The last entry of a cut error list: how many errors there were."""
    message = f"Only the first {MAX_ERRORS} of {total} errors are shown."
    return {"type": "too_many_errors", "loc": ("body",), "msg": message, "input": None}


async def validation_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's 422 response, but always valid JSON, whatever the client sent."""
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    total = len(errors) + getattr(request.state, "unchecked_errors", 0)
    if total > MAX_ERRORS:  # bounded: the answer's size and the time to encode it
        errors = [*errors[:MAX_ERRORS], too_many_errors(total)]
    try:
        detail = jsonable_encoder(errors, custom_encoder=ERROR_ENCODERS)
    except RecursionError:
        # A body nested nearly as deep as Python's recursion limit parses, but
        # echoing it back would overflow that limit: leave the input out.
        short = [{"type": e["type"], "loc": e["loc"], "msg": e["msg"]} for e in errors]
        detail = jsonable_encoder(short, custom_encoder=ERROR_ENCODERS)
    return JSONResponse(
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT, content={"detail": detail}
    )


def create_app(settings: Settings | None = None, server: ServerSettings | None = None) -> FastAPI:
    """A new service: its own settings, metrics registry, model and prediction log."""
    settings = settings or Settings()
    metrics = Metrics(multiprocess_mode=settings.multiproc_dir is not None)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        """Load the model and open the prediction log once; start even if that fails."""
        loaded = model.load(settings.model_uri)
        app.state.model = loaded.model
        app.state.model_details = loaded.details
        log = open_log(settings, on_error=metrics.log_errors.inc)
        app.state.prediction_log = log
        monitor = feedback_metrics.start(settings, metrics.quality, loaded)
        app.state.prediction_service = PredictionService(metrics, log, loaded.details, monitor)
        yield {REFUSALS_STATE: metrics.refused}  # the server counts its own refusals here
        log.close()
        monitor.close()

    limits = server or ServerSettings()
    # Swagger UI and ReDoc served from the package (fastapi-offline), not from a CDN.
    app = FastAPIOffline(
        title="Titanic survival API",
        description="The course's final app as a service: predictions, metrics, a log.",
        version=__version__,
        lifespan=lifespan,
        max_body_size=settings.max_body_bytes,
        # No redirect from /health/ to /health: Starlette builds it from the Host header.
        redirect_slashes=False,
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.model = None  # until the lifespan has loaded it
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.add_middleware(
        RequestLimits,
        metrics=metrics,
        turns=limits.limit_concurrency,
        queue_limit=limits.queue_limit,
        queue_timeout=limits.queue_timeout,
        body_timeout=limits.body_timeout,
        max_body_bytes=settings.max_body_bytes,
    )
    app.add_middleware(GoldenSignals, metrics=metrics)  # outside the limits: counts them
    app.add_middleware(LiteralPaths)
    app.include_router(router)
    if settings.enable_simulation:
        # Random passengers on demand: for demos and the course's dashboard, not production
        # (any web page could trigger it with a cross-site POST). Off, it is a 404.
        app.include_router(simulation)
    return app

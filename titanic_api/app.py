"""The app factory: ``create_app(settings)`` builds a complete service.

``titanic_api.main`` builds the one uvicorn serves; tests build their own with
other settings. Settings left out are read from the environment when the app
starts (its lifespan), so a test can set an environment variable first.
"""

import math
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from titanic_api import feedback_metrics, model
from titanic_api.metrics import GoldenSignals, Metrics
from titanic_api.prediction_log import PredictionLog, log_path
from titanic_api.routes import SERVICE_VERSION, Bookkeeper, router
from titanic_api.settings import Settings


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


async def validation_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's 422 response, but always valid JSON, whatever the client sent."""
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
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


def create_app(settings: Settings | None = None) -> FastAPI:
    """A new service: its own metrics registry, model and prediction log."""
    # Multiprocess mode is fixed when the app is built (the metrics' kind depends on it).
    metrics = Metrics(multiprocess_mode=(settings or Settings()).multiproc_dir is not None)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        """Load the model and open the prediction log once; start even if that fails."""
        current = settings or Settings()
        loaded = model.load(current.model_uri)
        app.state.model = loaded.model
        app.state.model_details = loaded.details
        log = PredictionLog(log_path(current), on_error=metrics.log_errors.inc)
        log.open()
        app.state.prediction_log = log
        monitor = feedback_metrics.start(current, metrics.quality, loaded)
        app.state.bookkeeper = Bookkeeper(metrics, log, loaded.details, monitor)
        yield
        log.close()
        monitor.close()

    app = FastAPI(
        title="Titanic survival API",
        description="The course's final app as a service: predictions, metrics, a log.",
        version=SERVICE_VERSION,
        lifespan=lifespan,
        max_body_size=(settings or Settings()).max_body_bytes,
    )
    app.state.metrics = metrics
    app.state.model = None  # until the lifespan has loaded it
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.add_middleware(GoldenSignals, metrics=metrics)
    app.include_router(router)
    return app

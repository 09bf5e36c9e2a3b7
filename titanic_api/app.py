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

from titanic_api import __version__, feedback_metrics, model
from titanic_api.metrics import GoldenSignals, Metrics
from titanic_api.prediction_log import PredictionLog, log_path
from titanic_api.routes import router
from titanic_api.service import PredictionService
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
    """A new service: its own settings, metrics registry, model and prediction log."""
    settings = settings or Settings()
    metrics = Metrics(multiprocess_mode=settings.multiproc_dir is not None)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        """Load the model and open the prediction log once; start even if that fails."""
        loaded = model.load(settings.model_uri)
        app.state.model = loaded.model
        app.state.model_details = loaded.details
        log = PredictionLog(log_path(settings), on_error=metrics.log_errors.inc)
        log.open()
        app.state.prediction_log = log
        monitor = feedback_metrics.start(settings, metrics.quality, loaded)
        app.state.prediction_service = PredictionService(metrics, log, loaded.details, monitor)
        yield
        log.close()
        monitor.close()

    app = FastAPI(
        title="Titanic survival API",
        description="The course's final app as a service: predictions, metrics, a log.",
        version=__version__,
        lifespan=lifespan,
        max_body_size=settings.max_body_bytes,
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.model = None  # until the lifespan has loaded it
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.add_middleware(GoldenSignals, metrics=metrics)
    app.include_router(router)
    return app

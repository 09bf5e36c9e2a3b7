"""A health endpoint with a typed response model.

What it adds over lesson 02: a pydantic ``response_model``. ``HealthResponse``
declares the exact shape of the answer, so FastAPI validates what the
endpoint returns, filters out anything extra, and documents the shape in
/docs. Monitoring tools (a load balancer, Kubernetes, an uptime check) call
an endpoint like this to decide whether the service is alive.

Run it:

    uvicorn lessons.fastapi_03_health_app:app --reload

Try it:
- GET /health answers {"status": "ok", "version": "1.0.0",
  "service": "titanic-tutorial", "dependencies": {...}};
- /docs shows the HealthResponse schema under "Schemas".
"""

from importlib.metadata import version
from typing import Literal

from fastapi import FastAPI
from pydantic import BaseModel, Field

SERVICE_NAME = "titanic-tutorial"
SERVICE_VERSION = "1.0.0"
# Looked up once, at import: reading package metadata on every health check
# would be disk work repeated for an answer that never changes.
LIBRARIES = {"fastapi": version("fastapi"), "pydantic": version("pydantic")}

app = FastAPI(
    title="Titanic tutorial 03: health check",
    description="A health endpoint whose answer is described by a pydantic model.",
    version=SERVICE_VERSION,
)


class HealthResponse(BaseModel):
    status: Literal["ok"] = Field(description="Always 'ok' while the process can answer.")
    version: str = Field(description="The version of this service.")
    service: str = Field(description="The name of this service.")
    dependencies: dict[str, str] = Field(
        description="The libraries the service runs on, with their installed versions."
    )


@app.get("/health", response_model=HealthResponse)
def health() -> HealthResponse:
    """Report that the service is up, and what it runs on."""
    return HealthResponse(
        status="ok",
        version=SERVICE_VERSION,
        service=SERVICE_NAME,
        dependencies=LIBRARIES,
    )

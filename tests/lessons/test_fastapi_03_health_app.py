"""Lesson 03: a health endpoint with a response model."""

from importlib.metadata import version

from fastapi.testclient import TestClient

from tests.support.contracts import UvicornSmokeContract

LESSON = "fastapi_03_health_app"

# Kept from earlier lessons, and tested where each behaviour starts, over every
# lesson that keeps it (this one among them):
# TestOpenAPISnapshot in test_fastapi_01_test_app.py.

HEALTH = {
    "status": "ok",
    "version": "1.0.0",
    "service": "titanic-tutorial",
    "dependencies": {"fastapi": version("fastapi"), "pydantic": version("pydantic")},
}


def test_health(client: TestClient) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == HEALTH


def test_openapi_documents_the_response_model(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    response = schema["paths"]["/health"]["get"]["responses"]["200"]
    assert response["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/HealthResponse"
    }
    model = schema["components"]["schemas"]["HealthResponse"]
    assert model["required"] == ["status", "version", "service", "dependencies"]
    assert model["properties"]["status"]["const"] == "ok"
    assert all(prop["description"] for prop in model["properties"].values())


class TestServedByUvicorn(UvicornSmokeContract):
    smoke_path = "/health"
    smoke_json = HEALTH

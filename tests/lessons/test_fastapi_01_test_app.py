"""Lesson 01: the smallest FastAPI app."""

import pytest
from fastapi.testclient import TestClient

from lessons import fastapi_01_test_app as lesson_module
from tests.support.contracts import OpenAPISnapshotContract, UvicornSmokeContract
from tests.support.lessons import LESSONS

LESSON = "fastapi_01_test_app"


def test_root(client: TestClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.json() == {"message": "Hello, FastAPI is working!"}


def test_docs_and_redoc_are_served(client: TestClient) -> None:
    docs = client.get("/docs")
    redoc = client.get("/redoc")
    assert docs.status_code == redoc.status_code == 200
    assert "swagger-ui" in docs.text
    assert "redoc" in redoc.text


def test_docstring_points_to_the_docs() -> None:
    doc = lesson_module.__doc__ or ""
    assert "/docs" in doc and "/redoc" in doc
    assert "uvicorn lessons.fastapi_01_test_app:app --reload" in doc


def test_openapi(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    assert list(schema["paths"]) == ["/"]
    operation = schema["paths"]["/"]["get"]
    assert operation["responses"]["200"]["content"]["application/json"]["schema"] == {
        "additionalProperties": {"type": "string"},
        "type": "object",
        "title": "Response Read Root  Get",
    }


class TestServedByUvicorn(UvicornSmokeContract):
    smoke_json = {"message": "Hello, FastAPI is working!"}


@pytest.mark.parametrize("subject", LESSONS, indirect=True)
class TestOpenAPISnapshot(OpenAPISnapshotContract):
    """Every lesson: its whole OpenAPI schema is its committed snapshot, and the one it serves."""

"""Lesson 05: batch predictions."""

from tests.support.contracts import (
    API_RUNNING,
    BatchContract,
    ModelApiContract,
    OpenAPISnapshotContract,
    UvicornSmokeContract,
    ValidationContract,
)

LESSON = "fastapi_05_batch_test_app"

# What this stage promises, one behaviour per class.


class TestServedByUvicorn(UvicornSmokeContract):
    smoke_json = API_RUNNING


class TestOpenAPISnapshot(OpenAPISnapshotContract): ...


class TestModelApi(ModelApiContract): ...


class TestValidation(ValidationContract): ...


class TestBatch(BatchContract): ...

"""Lesson 05: batch predictions."""

from tests.contracts import (
    BatchContract,
    ModelApiContract,
    UvicornSmokeContract,
    ValidationContract,
)

LESSON = "fastapi_05_batch_test_app"


class TestModelApi(ModelApiContract):
    pass


class TestValidation(ValidationContract):
    pass


class TestBatch(BatchContract):
    pass


class TestServedByUvicorn(UvicornSmokeContract):
    smoke_json = {"message": "Titanic MLflow API is running"}

"""Lesson 04_02: the same endpoint, with every field validated."""

from tests.support.contracts import (
    API_RUNNING,
    ModelApiContract,
    OpenAPISnapshotContract,
    UvicornSmokeContract,
    ValidationContract,
)

LESSON = "fastapi_04_02_single_app"

# What this stage promises, one behaviour per class.


class TestServedByUvicorn(UvicornSmokeContract):
    smoke_json = API_RUNNING


class TestOpenAPISnapshot(OpenAPISnapshotContract): ...


class TestModelApi(ModelApiContract): ...


class TestValidation(ValidationContract): ...

"""Lesson 04_02: the same endpoint, with every field validated."""

from tests.contracts import ModelApiContract, UvicornSmokeContract, ValidationContract

LESSON = "fastapi_04_02_single_app"


class TestModelApi(ModelApiContract):
    pass


class TestValidation(ValidationContract):
    pass


class TestServedByUvicorn(UvicornSmokeContract):
    smoke_json = {"message": "Titanic MLflow API is running"}

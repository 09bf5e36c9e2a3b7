"""Lesson P00: a /metrics endpoint and one counter, on the lesson's own registry."""

from tests.contracts import (
    BatchContract,
    ModelApiContract,
    UvicornSmokeContract,
    ValidationContract,
)
from tests.monitoring_contracts import MetricsEndpointContract

LESSON = "prometheus_00_simple_monitoring_app"


class TestMetricsEndpoint(MetricsEndpointContract):
    pass


# The API of lesson 05, which every monitoring lesson keeps (tests/contracts.py).
class TestModelApi(ModelApiContract):
    pass


class TestValidation(ValidationContract):
    pass


class TestBatch(BatchContract):
    pass


class TestServedByUvicorn(UvicornSmokeContract):
    smoke_json = {"message": "Titanic MLflow API is running"}

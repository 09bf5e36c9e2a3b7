"""Lesson P02: model metrics (predicted class, request kind, ages, survival probability)."""

from tests.contracts import (
    BatchContract,
    ModelApiContract,
    UvicornSmokeContract,
    ValidationContract,
)
from tests.monitoring_contracts import (
    GoldenSignalsContract,
    MetricsEndpointContract,
    ModelMetricsContract,
)

LESSON = "prometheus_02_model_monitor_app"


class TestMetricsEndpoint(MetricsEndpointContract):
    pass


class TestGoldenSignals(GoldenSignalsContract):
    pass


class TestModelMetrics(ModelMetricsContract):
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

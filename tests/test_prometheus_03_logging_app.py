"""Lesson P03: a JSON-lines log of every prediction, safe under concurrency."""

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
    PredictionLogContract,
)

LESSON = "prometheus_03_logging_app"


class TestMetricsEndpoint(MetricsEndpointContract):
    pass


class TestGoldenSignals(GoldenSignalsContract):
    pass


class TestModelMetrics(ModelMetricsContract):
    pass


class TestPredictionLog(PredictionLogContract):
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

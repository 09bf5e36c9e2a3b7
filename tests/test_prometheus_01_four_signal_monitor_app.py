"""Lesson P01: the four golden signals, measured by a middleware."""

from tests.contracts import (
    BatchContract,
    ModelApiContract,
    UvicornSmokeContract,
    ValidationContract,
)
from tests.monitoring_contracts import GoldenSignalsContract, MetricsEndpointContract

LESSON = "prometheus_01_four_signal_monitor_app"


class TestMetricsEndpoint(MetricsEndpointContract):
    pass


class TestGoldenSignals(GoldenSignalsContract):
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

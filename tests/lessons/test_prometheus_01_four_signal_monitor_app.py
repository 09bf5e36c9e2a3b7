"""Lesson P01: the four golden signals, measured by a middleware."""

from tests.support.contracts import (
    API_RUNNING,
    BatchContract,
    ModelApiContract,
    OpenAPISnapshotContract,
    UvicornSmokeContract,
    ValidationContract,
)
from tests.support.monitoring_contracts import GoldenSignalsContract, MetricsEndpointContract

LESSON = "prometheus_01_four_signal_monitor_app"

# What this stage promises, one behaviour per class.


class TestServedByUvicorn(UvicornSmokeContract):
    smoke_json = API_RUNNING


class TestOpenAPISnapshot(OpenAPISnapshotContract): ...


class TestModelApi(ModelApiContract): ...


class TestValidation(ValidationContract): ...


class TestBatch(BatchContract): ...


class TestMetricsEndpoint(MetricsEndpointContract): ...


class TestGoldenSignals(GoldenSignalsContract): ...

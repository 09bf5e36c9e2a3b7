"""Lesson P02: model metrics (predicted class, request kind, ages, survival probability)."""

from tests.support.contracts import (
    API_RUNNING,
    BatchContract,
    ModelApiContract,
    OpenAPISnapshotContract,
    UvicornSmokeContract,
    ValidationContract,
)
from tests.support.monitoring_contracts import (
    GoldenSignalsContract,
    MetricsEndpointContract,
    ModelMetricsContract,
)

LESSON = "prometheus_02_model_monitor_app"

# What this stage promises, one behaviour per class.


class TestServedByUvicorn(UvicornSmokeContract):
    smoke_json = API_RUNNING


class TestOpenAPISnapshot(OpenAPISnapshotContract): ...


class TestModelApi(ModelApiContract): ...


class TestValidation(ValidationContract): ...


class TestBatch(BatchContract): ...


class TestMetricsEndpoint(MetricsEndpointContract): ...


class TestGoldenSignals(GoldenSignalsContract): ...


class TestModelMetrics(ModelMetricsContract): ...

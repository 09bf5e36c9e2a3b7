"""Lesson P03: a JSON-lines log of every prediction, safe under concurrency."""

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
    PredictionLogContract,
)

LESSON = "prometheus_03_logging_app"

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


class TestPredictionLog(PredictionLogContract): ...

"""Lesson P00: a /metrics endpoint and one counter, on the lesson's own registry."""

from tests.support.contracts import (
    API_RUNNING,
    BatchContract,
    ModelApiContract,
    OpenAPISnapshotContract,
    UvicornSmokeContract,
    ValidationContract,
)
from tests.support.monitoring_contracts import MetricsEndpointContract

LESSON = "prometheus_00_simple_monitoring_app"

# What this stage promises, one behaviour per class.


class TestServedByUvicorn(UvicornSmokeContract):
    smoke_json = API_RUNNING


class TestOpenAPISnapshot(OpenAPISnapshotContract): ...


class TestModelApi(ModelApiContract): ...


class TestValidation(ValidationContract): ...


class TestBatch(BatchContract): ...


class TestMetricsEndpoint(MetricsEndpointContract): ...

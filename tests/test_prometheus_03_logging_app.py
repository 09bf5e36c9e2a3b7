"""Lesson P03: a JSON-lines log of every prediction, safe under concurrency."""

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

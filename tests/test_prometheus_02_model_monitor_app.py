"""Lesson P02: model metrics (predicted class, request kind, ages, survival probability)."""

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

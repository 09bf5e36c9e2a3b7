"""Lesson P00: a /metrics endpoint and one counter, on the lesson's own registry."""

from tests.monitoring_contracts import MetricsEndpointContract

LESSON = "prometheus_00_simple_monitoring_app"


class TestMetricsEndpoint(MetricsEndpointContract):
    pass

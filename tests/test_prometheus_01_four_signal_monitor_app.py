"""Lesson P01: the four golden signals, measured by a middleware."""

from tests.monitoring_contracts import GoldenSignalsContract, MetricsEndpointContract

LESSON = "prometheus_01_four_signal_monitor_app"


class TestMetricsEndpoint(MetricsEndpointContract):
    pass


class TestGoldenSignals(GoldenSignalsContract):
    pass

"""Lesson P01: the four golden signals, measured by a middleware."""

from tests.monitoring_contracts import P01Contract

LESSON = "prometheus_01_four_signal_monitor_app"


class TestLesson(P01Contract):
    """Everything this stage promises: every earlier stage's tests, plus its own."""

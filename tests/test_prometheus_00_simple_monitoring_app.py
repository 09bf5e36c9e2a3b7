"""Lesson P00: a /metrics endpoint and one counter, on the lesson's own registry."""

from tests.monitoring_contracts import P00Contract

LESSON = "prometheus_00_simple_monitoring_app"


class TestLesson(P00Contract):
    """Everything this stage promises: every earlier stage's tests, plus its own."""

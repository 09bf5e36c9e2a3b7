"""Lesson P02: model metrics (predicted class, request kind, ages, survival probability)."""

from tests.monitoring_contracts import P02Contract

LESSON = "prometheus_02_model_monitor_app"


class TestLesson(P02Contract):
    """Everything this stage promises: every earlier stage's tests, plus its own."""

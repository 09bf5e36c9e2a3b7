"""Lesson P03: a JSON-lines log of every prediction, safe under concurrency."""

from tests.monitoring_contracts import P03Contract

LESSON = "prometheus_03_logging_app"


class TestLesson(P03Contract):
    """Everything this stage promises: every earlier stage's tests, plus its own."""

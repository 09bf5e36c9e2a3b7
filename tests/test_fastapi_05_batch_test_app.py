"""Lesson 05: batch predictions."""

from tests.contracts import Lesson05Contract

LESSON = "fastapi_05_batch_test_app"


class TestLesson(Lesson05Contract):
    """Everything this stage promises: every earlier stage's tests, plus its own."""

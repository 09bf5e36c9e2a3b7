"""Lesson 04_02: the same endpoint, with every field validated."""

from tests.contracts import Lesson04_02Contract

LESSON = "fastapi_04_02_single_app"


class TestLesson(Lesson04_02Contract):
    """Everything this stage promises: every earlier stage's tests, plus its own."""

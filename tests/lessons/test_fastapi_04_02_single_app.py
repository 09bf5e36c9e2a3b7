"""Lesson 04_02: the same endpoint, with every field validated."""

import pytest

from tests.support.lessons import VALIDATED_LESSONS
from tests.support.validation_contracts import ValidationContract

LESSON = "fastapi_04_02_single_app"

# Kept from earlier lessons, and tested where each behaviour starts, over every
# lesson that keeps it (this one among them):
# TestOpenAPISnapshot in test_fastapi_01_test_app.py;
# TestServedByUvicorn, TestModelApi in test_fastapi_04_single_app.py.


@pytest.mark.parametrize("subject", VALIDATED_LESSONS, indirect=True)
class TestValidation(ValidationContract):
    """From 04_02 on: every field validated, a whole 422 body naming each problem."""

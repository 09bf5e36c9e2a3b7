"""Lesson 05: batch predictions."""

import pytest

from tests.support.contracts import BatchContract
from tests.support.lessons import BATCH_LESSONS

LESSON = "fastapi_05_batch_test_app"

# Kept from earlier lessons, and tested where each behaviour starts, over every
# lesson that keeps it (this one among them):
# TestOpenAPISnapshot in test_fastapi_01_test_app.py;
# TestServedByUvicorn, TestModelApi in test_fastapi_04_single_app.py;
# TestValidation in test_fastapi_04_02_single_app.py.


@pytest.mark.parametrize("subject", BATCH_LESSONS, indirect=True)
class TestBatch(BatchContract):
    """From 05 on: /predict_batch, one model call for the list, bad entries located."""

"""Lesson P00: a /metrics endpoint and one counter, on the lesson's own registry."""

import pytest

from tests.support.golden_signals_contracts import MetricsEndpointContract
from tests.support.lessons import METRICS_LESSONS

LESSON = "prometheus_00_simple_monitoring_app"

# Kept from earlier lessons, and tested where each behaviour starts, over every
# lesson that keeps it (this one among them):
# TestOpenAPISnapshot in test_fastapi_01_test_app.py;
# TestServedByUvicorn, TestModelApi in test_fastapi_04_single_app.py;
# TestValidation in test_fastapi_04_02_single_app.py;
# TestBatch in test_fastapi_05_batch_test_app.py.


@pytest.mark.parametrize("subject", METRICS_LESSONS, indirect=True)
class TestMetricsEndpoint(MetricsEndpointContract):
    """From P00 on: /metrics, the passenger counter, the lesson's own registry."""

"""Lesson P01: the four golden signals, measured by a middleware."""

import pytest

from tests.support.golden_signals_contracts import GoldenSignalsContract
from tests.support.lessons import GOLDEN_SIGNALS_LESSONS

LESSON = "prometheus_01_four_signal_monitor_app"

# Kept from earlier lessons, and tested where each behaviour starts, over every
# lesson that keeps it (this one among them):
# TestOpenAPISnapshot in test_fastapi_01_test_app.py;
# TestServedByUvicorn, TestModelApi in test_fastapi_04_single_app.py;
# TestValidation in test_fastapi_04_02_single_app.py;
# TestBatch in test_fastapi_05_batch_test_app.py;
# TestMetricsEndpoint in test_prometheus_00_simple_monitoring_app.py.


@pytest.mark.parametrize("subject", GOLDEN_SIGNALS_LESSONS, indirect=True)
class TestGoldenSignals(GoldenSignalsContract):
    """From P01 on: traffic, latency, errors and saturation, with bounded labels."""

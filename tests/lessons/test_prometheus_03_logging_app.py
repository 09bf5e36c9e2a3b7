"""Lesson P03: a JSON-lines log of every prediction, safe under concurrency."""

import pytest

from tests.support.lessons import LOGGING_LESSONS
from tests.support.prediction_log_contracts import PredictionLogContract

LESSON = "prometheus_03_logging_app"

# Kept from earlier lessons, and tested where each behaviour starts, over every
# lesson that keeps it (this one among them):
# TestOpenAPISnapshot in test_fastapi_01_test_app.py;
# TestServedByUvicorn, TestModelApi in test_fastapi_04_single_app.py;
# TestValidation in test_fastapi_04_02_single_app.py;
# TestBatch in test_fastapi_05_batch_test_app.py;
# TestMetricsEndpoint in test_prometheus_00_simple_monitoring_app.py;
# TestGoldenSignals in test_prometheus_01_four_signal_monitor_app.py;
# TestModelMetrics in test_prometheus_02_model_monitor_app.py.


@pytest.mark.parametrize("subject", LOGGING_LESSONS, indirect=True)
class TestPredictionLog(PredictionLogContract):
    """From P03 on: one JSON line per passenger, numbered without gaps, whatever the disk does."""

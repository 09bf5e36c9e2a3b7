"""Lesson P02: model metrics (predicted class, request kind, ages, survival probability)."""

import pytest

from tests.support.lessons import MODEL_METRICS_LESSONS
from tests.support.model_metrics_contracts import ModelMetricsContract

LESSON = "prometheus_02_model_monitor_app"

# Kept from earlier lessons, and tested where each behaviour starts, over every
# lesson that keeps it (this one among them):
# TestOpenAPISnapshot in test_fastapi_01_test_app.py;
# TestServedByUvicorn, TestModelApi in test_fastapi_04_single_app.py;
# TestValidation in test_fastapi_04_02_single_app.py;
# TestBatch in test_fastapi_05_batch_test_app.py;
# TestMetricsEndpoint in test_prometheus_00_simple_monitoring_app.py;
# TestGoldenSignals in test_prometheus_01_four_signal_monitor_app.py.


@pytest.mark.parametrize("subject", MODEL_METRICS_LESSONS, indirect=True)
class TestModelMetrics(ModelMetricsContract):
    """From P02 on: predicted class, request kind, ages and survival probability."""

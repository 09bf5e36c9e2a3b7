"""The lessons, grouped by what each one serves or declares (read by tools/catalog.py).

A group is computed from the lessons themselves, never from their position in
``LESSONS``: a lesson added in the middle joins the groups it belongs to.
"""

from __future__ import annotations

from lessons import LESSONS as ALL_LESSONS
from tools import catalog

# The teaching order lives in lessons/__init__.py, the one place it is written.
LESSONS = list(ALL_LESSONS)
FINAL_LESSON = LESSONS[-1]

MODEL_LESSONS = catalog.serving("POST /predict_single")
VALIDATED_LESSONS = [name for name in MODEL_LESSONS if name in catalog.validating()]
BATCH_LESSONS = catalog.serving("POST /predict_batch")
METRICS_LESSONS = catalog.serving("GET /metrics")
GOLDEN_SIGNALS_LESSONS = catalog.exposing("http_requests_total")
MODEL_METRICS_LESSONS = catalog.exposing("titanic_predictions_output_total")
LOGGING_LESSONS = catalog.declaring("default_log_path")
SIMULATION_LESSONS = catalog.serving("POST /simulate_predictions")

# The most lines (added + removed) two neighbouring lessons may differ by: one reviewable step.
NEIGHBOUR_MAX_CHANGED_LINES = 160

"""The lessons, grouped by what each one has."""

from __future__ import annotations

from lessons import LESSONS as ALL_LESSONS

# The teaching order lives in lessons/__init__.py, the one place it is written.
LESSONS = list(ALL_LESSONS)
MODEL_LESSONS = LESSONS[3:]
VALIDATED_LESSONS = LESSONS[4:]
BATCH_LESSONS = LESSONS[5:]
METRICS_LESSONS = LESSONS[6:]
LOGGING_LESSONS = LESSONS[9:]
FINAL_LESSON = LESSONS[-1]

# The most lines (added + removed) two neighbouring lessons may differ by: one reviewable step.
NEIGHBOUR_MAX_CHANGED_LINES = 160

"""Model monitoring: drift counters, prediction ids, labels and the quality counters.

Only real traffic counts (/predict_single and /predict_batch, never
/simulate_predictions). What each metric means, and the PromQL that turns the
counters into a population stability index, accuracy, Brier score, calibration and
label coverage: DRIFT_INTERFACE.md and ``prometheus_rules.yml``.

- **Drift**: every real passenger is counted into the reference profile's bins
  (``titanic_api.profile``), one count per feature, and the model's survival
  probability too; the profile's own proportions are exported beside them by a custom
  collector. Label values come from the profile only: bounded whatever the traffic.
- **Ids**: each real prediction gets a ``prediction_id``, stored (the feedback store,
  ``titanic_api.feedback``) before the answer is sent.
- **Labels**: ``POST /feedback`` labels stored predictions; each accepted label is
  counted once, for the model version that made the prediction.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from prometheus_client import CollectorRegistry, Counter
from starlette.concurrency import run_in_threadpool

from titanic_api import profile
from titanic_api.feedback import (
    FeedbackStore,
    PostgresStore,
    StoreUnavailable,
    new_ids,
    open_store,
)
from titanic_api.model import LoadedModel
from titanic_api.profile import Binner, ReferenceCollector, ReferenceProfile
from titanic_api.settings import Settings

logger = logging.getLogger("uvicorn.error")

STORE_FILE = "feedback.sqlite3"
# Every metric family this module adds to the final lesson's (name -> type).
FAMILIES = {
    "titanic_feature_observations": "counter",
    "titanic_feature_reference_ratio": "gauge",
    "titanic_reference_accuracy": "gauge",
    "titanic_reference_brier_score": "gauge",
    "titanic_real_predictions": "counter",
    "titanic_feedback_labels": "counter",
    "titanic_labels": "counter",
    "titanic_labels_squared_error": "counter",
    "titanic_labels_calibration": "counter",
    "titanic_feedback_store_errors": "counter",
}
RESULTS = ("accepted", "unknown", "already_labelled")
OUTCOMES = ("correct", "wrong")
# Deciles of the predicted probability, the last one closed: "[0.9, 1.0]".
PROBABILITY_BUCKETS = tuple(
    f"[{i / 10:.1f}, {(i + 1) / 10:.1f}{']' if i == 9 else ')'}" for i in range(10)
)


class QualityMetrics:
    """The monitoring counters, in the service's registry (multiprocess files under gunicorn)."""

    def __init__(self, registry: CollectorRegistry, multiprocess_mode: bool) -> None:
        self.registry = registry
        self.multiprocess = multiprocess_mode
        self.observations = Counter(
            "titanic_feature_observations",
            "Real passengers counted into the reference profile's bins, one per feature "
            "(feature survival_probability: the model's output).",
            ["model_version", "feature", "bin"],
            registry=registry,
        )
        self.real_predictions = Counter(
            "titanic_real_predictions",
            "Real passengers predicted (not simulated): the denominator of label coverage.",
            ["model_version"],
            registry=registry,
        )
        self.feedback = Counter(
            "titanic_feedback_labels",
            "Labels received on POST /feedback, by result: accepted, unknown, already_labelled.",
            ["result"],
            registry=registry,
        )
        self.labels = Counter(
            "titanic_labels",
            "Accepted labels, by whether the prediction was right.",
            ["model_version", "outcome"],
            registry=registry,
        )
        self.squared_error = Counter(
            "titanic_labels_squared_error",
            "Sum over accepted labels of (predicted survival probability - label)^2: "
            "divided by the labels, the Brier score.",
            ["model_version"],
            registry=registry,
        )
        self.calibration = Counter(
            "titanic_labels_calibration",
            "Accepted labels by predicted-probability decile and true outcome.",
            ["model_version", "probability_bucket", "actual"],
            registry=registry,
        )
        self.store_errors = Counter(
            "titanic_feedback_store_errors",
            "Feedback store operations that failed (record: predictions whose ids were "
            "not stored; label: POST /feedback answered 503).",
            ["operation"],
            registry=registry,
        )
        self.reference: ReferenceCollector | None = None
        for result in RESULTS:
            self.feedback.labels(result)
        for operation in ("record", "label"):
            self.store_errors.labels(operation)

    def start(self, model_version: str, reference: ReferenceProfile | None) -> None:
        """Every series of this model version at 0, and the profile's reference gauges."""
        self.real_predictions.labels(model_version)
        self.squared_error.labels(model_version)
        for outcome in OUTCOMES:
            self.labels.labels(model_version, outcome)
        for bucket in PROBABILITY_BUCKETS:
            for actual in ("0", "1"):
                self.calibration.labels(model_version, bucket, actual)
        if reference is None:
            return
        for feature, label, _ in reference.ratios():
            self.observations.labels(model_version, feature, label)
        self.reference = ReferenceCollector(reference, model_version)
        if not self.multiprocess:
            self.registry.register(self.reference)

    def stop(self) -> None:
        if self.reference is not None and not self.multiprocess:
            self.registry.unregister(self.reference)
        self.reference = None

    def extra_collectors(self) -> list[ReferenceCollector]:
        """What multiprocess mode's combined registry adds to the workers' files."""
        return [self.reference] if self.reference is not None and self.multiprocess else []


@dataclass(frozen=True)
class FeedbackCounts:
    accepted: int
    unknown: int
    already_labelled: int


class ModelMonitor:
    """Ids, drift counts and labels for the model being served."""

    def __init__(
        self,
        metrics: QualityMetrics,
        store: FeedbackStore | None,
        model_version: str,
        reference: ReferenceProfile | None,
    ) -> None:
        self.metrics = metrics
        self.store = store
        self.model_version = model_version
        self.reference = reference
        self.binner = Binner(reference) if reference is not None else None
        metrics.start(model_version, reference)

    async def remember(self, probabilities: np.ndarray, predictions: Sequence[int]) -> list[str]:
        """New ids for a request's real predictions, stored before the answer goes out.

        One ``executemany`` in a worker thread: the event loop serves other requests
        while the database writes. If the store fails, the ids are still answered
        (and counted in ``titanic_feedback_store_errors_total``): their labels will be
        refused as unknown, never miscounted.
        """
        ids = new_ids(len(predictions))
        if self.store is not None:
            try:
                await run_in_threadpool(
                    self.store.record, ids, self.model_version, probabilities.tolist(), predictions
                )
            except StoreUnavailable as error:
                self.metrics.store_errors.labels("record").inc()
                logger.warning("%d prediction ids not stored: %s", len(ids), error)
        return ids

    def observe(self, columns: Mapping[str, Sequence[object]], probabilities: np.ndarray) -> None:
        """Count real passengers (by feature) into the profile's bins: after the answer."""
        self.metrics.real_predictions.labels(self.model_version).inc(len(probabilities))
        if self.binner is None:
            return
        counter = self.metrics.observations
        for feature, label, count in self.binner.count(columns, probabilities):
            counter.labels(self.model_version, feature, label).inc(count)

    @property
    def store_kind(self) -> str:
        """What /health says: ``sqlite``, ``postgresql`` or ``off``."""
        if self.store is None:
            return "off"
        return "postgresql" if isinstance(self.store, PostgresStore) else "sqlite"

    def close(self) -> None:
        if self.store is not None:
            self.store.close()
        self.metrics.stop()

    async def label(self, labels: Sequence[tuple[str, int]]) -> FeedbackCounts:
        """Store the labels; count the accepted ones once each (raises StoreUnavailable)."""
        if self.store is None:
            raise StoreUnavailable("the feedback store is off (TITANIC_FEEDBACK_STORE=off)")
        try:
            outcome = await run_in_threadpool(self.store.label, labels)
        except StoreUnavailable:
            self.metrics.store_errors.labels("label").inc()
            raise
        metrics = self.metrics
        for prediction, survived in outcome.accepted:
            version = prediction.model_version
            right = prediction.predicted == survived
            metrics.labels.labels(version, "correct" if right else "wrong").inc()
            metrics.squared_error.labels(version).inc((prediction.probability - survived) ** 2)
            bucket = PROBABILITY_BUCKETS[min(int(prediction.probability * 10), 9)]
            metrics.calibration.labels(version, bucket, str(survived)).inc()
        counts = FeedbackCounts(len(outcome.accepted), outcome.unknown, outcome.already_labelled)
        for result in RESULTS:
            metrics.feedback.labels(result).inc(getattr(counts, result))
        return counts


def start(settings: Settings, metrics: QualityMetrics, loaded: LoadedModel) -> ModelMonitor:
    """The monitor of the model just loaded: its profile (if any, and wanted) and the store."""
    reference = None
    if loaded.model is not None and settings.drift_metrics and settings.model_uri:
        reference = profile.load_for(settings.model_uri)
    return ModelMonitor(
        metrics,
        open_store(
            settings.feedback_store, feedback_path(settings), settings.feedback_retention_days
        ),
        model_version(loaded.details),
        reference,
    )


def feedback_path(settings: Settings) -> Path:
    """The default SQLite store: ``feedback.sqlite3`` beside the prediction logs."""
    logs = settings.prediction_log_path
    return (logs.parent if logs is not None else settings.prediction_log_dir) / STORE_FILE


def model_version(details: Mapping[str, object]) -> str:
    """The served model's version: the registered one if known, else the model id."""
    for key in ("model_version", "version", "model_id"):
        value = details.get(key)
        if value:
            return str(value)
    return str(details.get("model_uri", "unknown"))

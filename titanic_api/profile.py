"""The reference profile: what the training data looked like, for drift and quality metrics.

Computed once, when the model is trained (``training/train.py``), and stored with the
model as ``extra_files/reference_profile.json`` in its MLflow artifacts folder, so it
travels with the model. The service loads it with the model and counts every real
passenger into the same bins (``titanic_feature_observations_total``); Prometheus
compares the two distributions (the population stability index, PSI, as recording
rules: sums over workers and replicas, which no per-process statistic could give).

**The bins.** Each numeric feature (Age, SibSp, Parch, Fare) and the predicted survival
probability is cut at the *deciles of the training values*, rounded to two significant
figures and deduplicated:

- deciles give bins of about equal reference mass (about 10% each), the usual choice
  for PSI (a bin with almost no reference mass makes ``ln(cur / ref)`` explode on a
  handful of passengers);
- rounding makes the edges readable as Prometheus labels (``"[14, 19)"``, not
  ``"[14.0000001, 18.9999)"``); the proportions are computed with the rounded edges, so
  reference and traffic are binned alike;
- features with few distinct values get fewer bins (SibSp: ``[0, 1)`` and ``[1, +Inf)``,
  since 68% of the passengers travelled without siblings or spouse): a duplicated decile
  adds no information.

The first bin starts at the lower limit the API validates (0 for every numeric feature),
the last is open (``+Inf``). Categories (Pclass, Sex, Embarked) are the values the API
accepts, every one with a bin, even one the training data lacked (proportion 0): the
label sets are bounded by this profile, whatever the traffic.

Training rows without a value (177 ages, 2 ports) are left out of that feature's
proportions: the API refuses passengers without them, so they never reach the counters.
Each feature records the number of rows it was computed from.

The held-out accuracy and Brier score come from scikit-learn's own ``accuracy_score``
and ``brier_score_loss``; the quantiles from numpy. The comparison itself (PSI) needs no
library here: Prometheus computes it from the counters.
"""

from __future__ import annotations

import logging
import math
import tempfile
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sklearn.metrics import accuracy_score, brier_score_loss

logger = logging.getLogger("uvicorn.error")
PROFILE_FILE = "reference_profile.json"
# Where MLflow's ``extra_files`` puts the profile inside the model's folder.
PROFILE_PATH = f"extra_files/{PROFILE_FILE}"
NUMERIC_FEATURES = ("Age", "SibSp", "Parch", "Fare")
# Every value the API accepts (titanic_api.schemas.Passenger), as label strings.
CATEGORIES: dict[str, tuple[str, ...]] = {
    "Pclass": ("1", "2", "3"),
    "Sex": ("female", "male"),
    "Embarked": ("C", "Q", "S"),
}
PROBABILITY = "survival_probability"
FEATURE_ORDER = ("Pclass", "Sex", "Age", "SibSp", "Parch", "Fare", "Embarked", PROBABILITY)
DECILES = np.arange(1, 10) / 10
SIGNIFICANT_FIGURES = 2


class Distribution(BaseModel):
    """One feature's reference: its bins (as label strings) and the share of rows in each."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["numeric", "categorical"]
    # numeric only: the lower edge of every bin (the last bin is open above).
    edges: list[float] | None = None
    bins: list[str] = Field(min_length=1)
    proportions: list[float]
    rows: int = Field(gt=0, description="How many rows the proportions were computed from.")

    @model_validator(mode="after")
    def consistent(self) -> Distribution:
        if len(self.proportions) != len(self.bins):
            raise ValueError("one proportion per bin")
        if any(p < 0 for p in self.proportions) or not math.isclose(
            sum(self.proportions), 1.0, abs_tol=1e-9
        ):
            raise ValueError("the proportions must be non-negative and sum to 1")
        if self.kind == "numeric":
            if self.edges is None or len(self.edges) != len(self.bins):
                raise ValueError("a numeric feature needs one lower edge per bin")
            if any(b <= a for a, b in zip(self.edges, self.edges[1:], strict=False)):
                raise ValueError("the edges must increase")
            if self.bins != bin_labels(self.edges):
                raise ValueError("the bin labels must be those of the edges")
        elif self.edges is not None:
            raise ValueError("a categorical feature has no edges")
        return self


class ReferenceProfile(BaseModel):
    """The whole profile, as stored in ``reference_profile.json``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format: Literal[1] = 1
    features: dict[str, Distribution]
    accuracy: float = Field(ge=0, le=1, description="Held-out accuracy (threshold 0.5).")
    brier_score: float = Field(ge=0, le=1, description="Held-out mean squared probability error.")
    held_out_rows: int = Field(gt=0)

    @model_validator(mode="after")
    def every_feature(self) -> ReferenceProfile:
        if sorted(self.features) != sorted(FEATURE_ORDER):
            raise ValueError(f"the features must be exactly {', '.join(FEATURE_ORDER)}")
        for name, values in CATEGORIES.items():
            if self.features[name].bins != list(values):
                raise ValueError(f"{name}'s bins must be {list(values)}")
        for name in (*NUMERIC_FEATURES, PROBABILITY):
            if self.features[name].kind != "numeric":
                raise ValueError(f"{name} must be numeric")
        return self

    def ratios(self) -> Iterator[tuple[str, str, float]]:
        """(feature, bin, proportion) for every bin, in a stable order."""
        for name in FEATURE_ORDER:
            distribution = self.features[name]
            yield from (
                (name, label, share)
                for label, share in zip(distribution.bins, distribution.proportions, strict=True)
            )


def readable(value: float) -> float:
    """``value`` rounded to two significant figures (``31.8`` -> 32, ``7.8542`` -> 7.9)."""
    return float(f"{value:.{SIGNIFICANT_FIGURES}g}")


def label_number(value: float) -> str:
    return "+Inf" if math.isinf(value) else f"{value:g}"


def bin_labels(edges: Sequence[float]) -> list[str]:
    """``"[lo, hi)"`` for each bin, the last one ``"[lo, +Inf)"``."""
    uppers = [*edges[1:], math.inf]
    return [
        f"[{label_number(lo)}, {label_number(hi)})" for lo, hi in zip(edges, uppers, strict=True)
    ]


def decile_edges(values: np.ndarray, lower: float = 0.0) -> list[float]:
    """``lower``, then the readable deciles of ``values`` above it, each once."""
    cuts = sorted({readable(q) for q in np.quantile(values, DECILES).tolist()})
    return [lower, *(cut for cut in cuts if cut > lower)]


def bin_indices(edges: Sequence[float], values: np.ndarray) -> np.ndarray:
    """Each value's bin: the number of interior edges at or below it (``[lo, hi)`` bins)."""
    return np.searchsorted(np.asarray(edges[1:], dtype=float), values, side="right")


def numeric_distribution(values: np.ndarray) -> Distribution:
    known = values[~np.isnan(values)]
    edges = decile_edges(known)
    counts = np.bincount(bin_indices(edges, known), minlength=len(edges))
    return Distribution(
        kind="numeric",
        edges=edges,
        bins=bin_labels(edges),
        proportions=(counts / counts.sum()).tolist(),
        rows=len(known),
    )


def categorical_distribution(name: str, values: Sequence[object]) -> Distribution:
    labels = [str(value) for value in values if value is not None and value == value]  # not NaN
    categories = CATEGORIES[name]
    unknown = set(labels) - set(categories)
    if unknown:
        raise ValueError(f"{name} has values the API refuses: {sorted(unknown)}")
    counts = np.array([labels.count(category) for category in categories], dtype=float)
    return Distribution(
        kind="categorical",
        bins=list(categories),
        proportions=(counts / counts.sum()).tolist(),
        rows=len(labels),
    )


def compute(
    features: Mapping[str, Sequence[object]],
    held_out_probabilities: np.ndarray,
    held_out_target: np.ndarray,
) -> ReferenceProfile:
    """The profile of the training ``features`` (columns) and of the held-out predictions.

    ``held_out_probabilities``: the model's survival probability for each held-out row,
    ``held_out_target``: what really happened (0 or 1).
    """
    distributions = {
        name: numeric_distribution(np.asarray(features[name], dtype=float))
        for name in NUMERIC_FEATURES
    }
    distributions |= {
        name: categorical_distribution(name, list(features[name])) for name in CATEGORIES
    }
    probabilities = np.asarray(held_out_probabilities, dtype=float)
    distributions[PROBABILITY] = numeric_distribution(probabilities)
    target = np.asarray(held_out_target, dtype=int)
    return ReferenceProfile(
        features=distributions,
        accuracy=float(accuracy_score(target, (probabilities >= 0.5).astype(int))),
        brier_score=float(brier_score_loss(target, probabilities)),
        held_out_rows=len(target),
    )


def write(profile: ReferenceProfile, path: Path) -> Path:
    path.write_text(profile.model_dump_json(indent=2) + "\n", encoding="utf-8")
    return path


def read(path: Path) -> ReferenceProfile:
    """The profile in ``path`` (pydantic says what is wrong with a damaged one)."""
    return ReferenceProfile.model_validate_json(path.read_bytes())


class Binner:
    """Counts a batch of passengers into the profile's bins, a few numpy calls per feature."""

    def __init__(self, profile: ReferenceProfile) -> None:
        self.profile = profile
        self.numeric = {
            name: (
                np.asarray((profile.features[name].edges or [])[1:], dtype=float),
                profile.features[name].bins,
            )
            for name in (*NUMERIC_FEATURES, PROBABILITY)
        }

    def count(
        self, columns: Mapping[str, Sequence[object]], probabilities: np.ndarray
    ) -> Iterator[tuple[str, str, int]]:
        """(feature, bin, count) for every bin that at least one passenger falls into.

        ``columns``: the passengers' values by feature name (as the API validated them);
        ``probabilities``: the model's survival probability for each.
        """
        for name in FEATURE_ORDER:
            if name in CATEGORIES:
                known = CATEGORIES[name]
                for value, count in Counter(columns[name]).items():
                    if str(value) in known:  # the API accepts nothing else; never a new label
                        yield name, str(value), count
                continue
            interior, labels = self.numeric[name]
            data = probabilities if name == PROBABILITY else np.asarray(columns[name], dtype=float)
            counts = np.bincount(
                np.searchsorted(interior, data, side="right"), minlength=len(labels)
            )
            yield from (
                (name, labels[index], int(count))
                for index, count in enumerate(counts.tolist())
                if count
            )


def load_for(model_uri: str) -> ReferenceProfile | None:
    """The profile saved with the model at ``model_uri`` (a folder or any MLflow URI), or None.

    A model without one (or with a damaged one) still serves: the drift metrics are
    then absent and /health says so.
    """
    import mlflow.artifacts

    try:
        local = Path(model_uri) / PROFILE_PATH
        if local.is_file():
            return read(local)
        with tempfile.TemporaryDirectory() as folder:
            path = mlflow.artifacts.download_artifacts(
                f"{model_uri.rstrip('/')}/{PROFILE_PATH}", dst_path=folder
            )
            return read(Path(path))
    except Exception as error:  # any failure means: no profile, and the service serves on
        logger.warning("No reference profile with the model at %s (%s)", model_uri, error)
        return None


class ReferenceCollector(Collector):
    """The profile's proportions, accuracy and Brier score as gauges (a custom collector).

    Constants for as long as the model serves: every worker and replica exports the
    same values, and the rules take ``max by (model_version, feature, bin)``. In
    multiprocess mode this collector is added to the registry that adds up the workers'
    files, since it has no value to share.
    """

    def __init__(self, profile: ReferenceProfile, model_version: str) -> None:
        self.profile = profile
        self.model_version = model_version

    def collect(self) -> Iterator[Metric]:
        ratio = GaugeMetricFamily(
            "titanic_feature_reference_ratio",
            "The reference profile's share of each bin (sums to 1 per feature).",
            labels=["model_version", "feature", "bin"],
        )
        for feature, label, share in self.profile.ratios():
            ratio.add_metric([self.model_version, feature, label], share)
        yield ratio
        for name, documentation, value in (
            (
                "accuracy",
                "Held-out accuracy of the model, from its profile.",
                self.profile.accuracy,
            ),
            (
                "brier_score",
                "Held-out Brier score of the model, from its profile.",
                self.profile.brier_score,
            ),
        ):
            gauge = GaugeMetricFamily(
                f"titanic_reference_{name}", documentation, labels=["model_version"]
            )
            gauge.add_metric([self.model_version], value)
            yield gauge

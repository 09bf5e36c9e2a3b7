"""The model-monitoring drill, played on tools.cluster's replicas and real Prometheus.

Three phases of tools.traffic through the Service, each followed by what the model
alerts' expressions select (the rules of prometheus_rules.yml, as the PrometheusRule
renders them, over their own 10-minute windows):

1. ``normal`` passengers with their true labels: nothing is selected, although the
   window holds enough passengers and labels to be judged;
2. ``drifted`` passengers (older, richer, first class): the feature-drift expressions
   select exactly tools.traffic's ``DRIFTED_FEATURES``;
3. ``mislabelled``: labels saying every prediction was wrong: the accuracy expression
   selects the model version.

The window holds every phase so far (the drill takes a few minutes, not 10), which is why
each phase sends more than the one before: the latest traffic dominates the window. The
replicas share a feedback store, so a label may reach any replica: a throw-away
PostgreSQL server when installed (as on a cluster), else one SQLite file.

    python -m tools.rehearse --drill
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tools.cluster import Cluster, Sent, wait_for
from tools.cluster_manifests import rules_spec
from tools.servers import postgres_binary

GROUP = "titanic-model-quality"
FEATURE_DRIFT = ("TitanicFeatureDrift", "TitanicFeatureDriftCritical")


@dataclass(frozen=True)
class Phase:
    name: str
    profile: str  # tools.traffic's
    labels: str | None  # "true", "wrong", or None: no labels
    requests: int  # about 2 real passengers each (tools.traffic.MIX)


PHASES = (
    Phase("normal", "normal", "true", 600),
    Phase("drifted", "drifted", None, 900),
    Phase("mislabelled", "mislabelled", "wrong", 1200),
)


@dataclass
class Seen:
    """What Prometheus showed after one phase."""

    phase: Phase
    sent: Sent
    selected: dict[str, list[dict[str, str]]]  # alert -> the label sets its expression selects
    psi: dict[str, float] = field(default_factory=dict)  # feature -> titanic:feature_psi:10m
    judged: dict[str, float] = field(default_factory=dict)  # passengers and labels in window

    def features(self, *alerts: str) -> set[str]:
        """The features the expressions of ``alerts`` select."""
        return {labels["feature"] for alert in alerts for labels in self.selected[alert]}


def model_alerts() -> dict[str, str]:
    """The model-monitoring alerts of the rendered PrometheusRule: name -> expression."""
    [group] = [g for g in rules_spec()["groups"] if g["name"] == GROUP]
    return {rule["alert"]: rule["expr"] for rule in group["rules"] if "alert" in rule}


@contextlib.contextmanager
def store(shared: bool, workdir: Path | None = None) -> Iterator[dict[str, str]]:
    """The environment that points every replica at one feedback store ({} if not ``shared``)."""
    if not shared:
        yield {}
        return
    if postgres_binary("postgres") is not None:
        from tools.servers import PostgresServer

        with PostgresServer() as server:
            yield {"TITANIC_FEEDBACK_STORE": server.url}
        return
    folder = workdir or Path.cwd()
    yield {"TITANIC_FEEDBACK_STORE": f"sqlite:///{folder / 'feedback.sqlite'}"}


def wait_evaluated(cluster: Cluster) -> None:
    """Wait until Prometheus has scraped everything sent, then evaluated the rules on it."""
    for counter in ("titanic_real_predictions", "titanic_labels"):
        cluster.wait_scraped(counter)
    scraped_at = time.time()
    oldest = "min(timestamp(titanic:feature_psi:10m))"
    wait_for(f"{oldest} > {scraped_at:.0f}", lambda: (cluster.value(oldest) or 0) > scraped_at)


def look(cluster: Cluster, phase: Phase, sent: Sent) -> Seen:
    """Every model alert's expression, the PSI per feature, and how much the window holds."""
    selected = {
        name: [series["metric"] for series in cluster.query(expr)]
        for name, expr in model_alerts().items()
    }
    psi = {s["metric"]["feature"]: float(s["value"][1]) for s in cluster.query(PSI)}
    judged = {name: cluster.value(expr) or 0.0 for name, expr in JUDGED.items()}
    return Seen(phase, sent, selected, psi, judged)


PSI = 'titanic:feature_psi:10m{job="fastapi_app"}'
JUDGED = {
    "passengers": 'min(titanic:feature_passengers:increase10m{job="fastapi_app"})',
    "labels": 'sum(titanic:labels:increase10m{job="fastapi_app"})',
}


def run(cluster: Cluster, seed: int = 19) -> list[Seen]:
    """Play every phase; what Prometheus showed after each."""
    seen = []
    for number, phase in enumerate(PHASES):
        sent = cluster.drive(
            phase.requests, seed + number, profile=phase.profile, labels=phase.labels
        )
        wait_evaluated(cluster)
        seen.append(look(cluster, phase, sent))
    return seen


def describe(seen: Seen) -> list[str]:
    """A few lines on one phase, for the command line."""
    psi = ", ".join(f"{feature} {value:.3f}" for feature, value in sorted(seen.psi.items()))
    firing = {name: series for name, series in seen.selected.items() if series}
    lines = [
        f"{seen.phase.name}: {seen.sent.passengers} passengers, labels {dict(seen.sent.labels)}",
        f"  in the window: {seen.judged['passengers']:.0f} passengers,"
        f" {seen.judged['labels']:.0f} labels; PSI {psi}",
    ]
    for name, series in sorted(firing.items()):
        what = sorted(labels.get("feature", labels.get("model_version", "")) for labels in series)
        lines.append(f"  {name} selects {', '.join(what)}")
    if not firing:
        lines.append("  no model alert expression selects anything")
    return lines


def play(cluster: Cluster, say: Callable[[str], Any] = print) -> list[Seen]:
    seen = run(cluster)
    for phase in seen:
        for line in describe(phase):
            say(line)
    return seen

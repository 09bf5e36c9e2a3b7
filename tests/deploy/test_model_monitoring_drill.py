"""The model-monitoring drill, live (tools/drill.py): three replicas of the package sharing a
feedback store, a real Prometheus with the rendered PrometheusRule, and three kinds of traffic.

- normal passengers with their true labels: no drift or quality alert expression selects
  anything, although the window holds enough passengers and labels to judge;
- drifted passengers: the feature-drift expressions select exactly the drifted features;
- wrong labels: the accuracy expression selects the model version.

Then every query of the dashboard's Model quality row returns data from the package.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest

from tests.deploy.stack import concrete, dashboard_queries, prometheus_binary
from tools import drill, traffic
from tools.cluster import Cluster

pytestmark = [pytest.mark.live, pytest.mark.slow, pytest.mark.timeout(900)]

REPLICAS = 3


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    prometheus_binary("prometheus")  # skips, or fails when REQUIRE_PROMETHEUS=1
    workdir = tmp_path_factory.mktemp("drill")
    with pytest.MonkeyPatch.context() as env:
        for name in ("PREDICTION_LOG_PATH", "TITANIC_MODEL_URI", "PROMETHEUS_MULTIPROC_DIR"):
            env.delenv(name, raising=False)
        with drill.store(True, workdir) as store_env:
            cluster = Cluster(workdir, REPLICAS, env=store_env)
            with cluster.running():
                yield cluster


@pytest.fixture(scope="module")
def seen(cluster: Cluster) -> list[drill.Seen]:
    return drill.run(cluster)


def test_every_phase_sent_what_it_meant_to(seen: list[drill.Seen]) -> None:
    assert [s.phase.name for s in seen] == ["normal", "drifted", "mislabelled"]
    for phase in seen:
        assert phase.sent.failed == []
        for (kind, status), _ in phase.sent.statuses.items():
            expected = 200 if kind == "feedback" else traffic.EXPECTED_STATUS[kind]
            assert status == expected, (phase.phase.name, kind, status)
        assert len(phase.sent.by_replica) == REPLICAS
    normal, drifted, mislabelled = seen
    # Every label was accepted once, wherever it landed: the replicas share the store.
    for labelled in (normal, mislabelled):
        assert labelled.sent.labels["accepted"] > 500
        assert labelled.sent.labels["unknown"] == labelled.sent.labels["already_labelled"] == 0
    assert drifted.sent.labels == {}


def test_normal_traffic_is_judged_and_selects_nothing(seen: list[drill.Seen]) -> None:
    normal = seen[0]
    assert normal.judged["passengers"] >= 300 and normal.judged["labels"] >= 100
    assert normal.selected == {name: [] for name in drill.model_alerts()}
    assert set(normal.psi) == {*traffic.FEATURES, "survival_probability"}
    assert max(normal.psi[name] for name in traffic.FEATURES) < 0.05
    # The model is surer of passengers it learned from than of the held-out ones.
    assert 0.02 < normal.psi["survival_probability"] < 0.1


def test_drifted_traffic_selects_exactly_the_drifted_features(seen: list[drill.Seen]) -> None:
    drifted = seen[1]
    assert drifted.features(*drill.FEATURE_DRIFT) == set(traffic.DRIFTED_FEATURES)
    assert drifted.features("TitanicFeatureDriftCritical") == set(traffic.DRIFTED_FEATURES)
    # Older, richer, first-class passengers are predicted to survive more often.
    assert drifted.features("TitanicPredictionDrift") == {"survival_probability"}
    for name in ("TitanicModelAccuracyDrop", "TitanicModelBrierScoreRise"):
        assert drifted.selected[name] == []


def test_wrong_labels_fire_the_accuracy_expression(seen: list[drill.Seen]) -> None:
    mislabelled = seen[2]
    [accuracy] = mislabelled.selected["TitanicModelAccuracyDrop"]
    [brier] = mislabelled.selected["TitanicModelBrierScoreRise"]
    assert accuracy["model_version"] == brier["model_version"] != ""
    assert mislabelled.selected["TitanicLabelCoverageLow"] == []


def test_every_model_quality_panel_shows_the_package(
    cluster: Cluster, seen: list[drill.Seen]
) -> None:
    lesson = set(dashboard_queries(lesson_only=True))
    row = [query for query in dashboard_queries() if query not in lesson]
    assert len(row) >= 8
    for title, ref, expr in row:
        result = cluster.query(concrete(expr))
        assert result, f"{title} [{ref}]: no data"
        for series in result:
            assert math.isfinite(float(series["value"][1])), f"{title} [{ref}]: {series}"

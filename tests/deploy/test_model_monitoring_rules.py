"""The model-monitoring rules and the dashboard's Model quality row agree, checked by promtool.

The row queries the raw counters (so that its Instance menu works); the alerts read the
recording rules. Both must say the same thing: on the made-up series of the rules' unit
tests (prometheus_rules_test.yml), each panel's query with a 10-minute time range must
give exactly what its recording rule gives.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.stack import (
    PACKAGE_GROUP,
    PACKAGE_ROW,
    RULES_TEST_YML,
    RULES_YML,
    dashboard,
    load_yaml,
    metric_names_in,
    promtool,
)

# Each panel target of the row, and the recorded series it must equal, matched on these labels.
AGREEMENT: dict[tuple[str, str], tuple[str, str]] = {
    ("Drift: PSI per feature (time range)", "A"): (
        "titanic:feature_psi:10m",
        "model_version, feature",
    ),
    ("Accuracy vs reference (time range)", "A"): ("titanic:accuracy:10m", "model_version"),
    ("Accuracy vs reference (time range)", "B"): (
        "titanic:reference_accuracy:max",
        "model_version",
    ),
    ("Brier score vs reference (time range)", "A"): ("titanic:brier_score:10m", "model_version"),
    ("Brier score vs reference (time range)", "B"): (
        "titanic:reference_brier_score:max",
        "model_version",
    ),
    ("Label coverage (time range)", "A"): ("sum(titanic:label_coverage:10m) or vector(0)", ""),
    ("Calibration: observed survival by predicted probability (time range)", "A"): (
        "sum without (job) (titanic:observed_survival_rate:10m)",
        "probability_bucket",
    ),
}
# Panels with no recording rule to compare with (a rate over Grafana's interval).
UNCOMPARED = {("Labels received by outcome", "A")}


def row_targets() -> dict[tuple[str, str], str]:
    """(panel title, refId) -> PromQL, for every panel under the Model quality row."""
    targets: dict[tuple[str, str], str] = {}
    row = ""
    for panel in dashboard()["panels"]:
        row = panel["title"] if panel["type"] == "row" else row
        if row == PACKAGE_ROW and panel["type"] != "row":
            targets |= {(panel["title"], t["refId"]): t["expr"] for t in panel["targets"]}
    return targets


def as_sent(expr: str) -> str:
    """The panel's query as Grafana sends it with the last 10 minutes and every instance."""
    return expr.replace("$__range", "10m").replace("$instance", ".*")


def model_monitoring_cases() -> list[dict[str, Any]]:
    """The unit-test cases of prometheus_rules_test.yml about the model monitoring."""
    names = ("titanic_feature_observations_total", "titanic_labels_total")
    return [
        case
        for case in load_yaml(RULES_TEST_YML)["tests"]
        if any(s["series"].startswith(names) for s in case["input_series"])
    ]


def agreement_tests(targets: dict[tuple[str, str], str]) -> dict[str, Any]:
    """A promtool test file: in every case, each panel minus its rule is 0, series for series."""
    checks = []
    for key, (rule, on) in AGREEMENT.items():
        panel = f"({as_sent(targets[key])})"
        same_series = f"(count({panel}) or vector(0)) - (count({rule}) or vector(0))"
        largest_gap = f"max(abs({panel} - on ({on}) ({rule}))) or vector(0)"
        checks += [
            {
                "expr": same_series,
                "eval_time": "20m",
                "exp_samples": [{"labels": "{}", "value": 0}],
            },
            {
                "expr": f"({largest_gap}) < bool 1e-9",
                "eval_time": "20m",
                "exp_samples": [{"labels": "{}", "value": 1}],
            },
        ]
    cases = [
        {"interval": case["interval"], "input_series": case["input_series"]}
        | {"promql_expr_test": checks}
        for case in model_monitoring_cases()
    ]
    return {"rule_files": [str(RULES_YML)], "evaluation_interval": "1m", "tests": cases}


def run_promtool(tests: dict[str, Any], tmp_path: Path) -> str:
    path = tmp_path / "agreement_test.yml"
    path.write_text(yaml.safe_dump(tests, sort_keys=False), encoding="utf-8")
    result = promtool("test", "rules", str(path))
    return "" if result.returncode == 0 else result.stdout + result.stderr


def test_the_row_covers_every_panel_it_has() -> None:
    targets = row_targets()
    assert set(targets) == set(AGREEMENT) | UNCOMPARED
    assert len(model_monitoring_cases()) >= 5  # drift and quality, firing and quiet


def test_the_row_uses_only_what_the_rules_use() -> None:
    """The row reads the same counters and gauges as the rule group, nothing else."""
    [group] = [g for g in load_yaml(RULES_YML)["groups"] if g["name"] == PACKAGE_GROUP]
    raw = set().union(*(metric_names_in(rule["expr"]) for rule in group["rules"]))
    raw = {name for name in raw if ":" not in name}  # the counters, not the recorded series
    used = set().union(*(metric_names_in(expr) for expr in row_targets().values()))
    assert used == raw


def test_each_panel_gives_what_its_recording_rule_gives(tmp_path: Path) -> None:
    failure = run_promtool(agreement_tests(row_targets()), tmp_path)
    assert failure == ""


def test_a_panel_without_the_epsilon_disagrees(tmp_path: Path) -> None:
    """The check can fail: PSI unclamped gives +Inf for the empty Age bin of the test data."""
    targets = row_targets()
    key = ("Drift: PSI per feature (time range)", "A")
    targets[key] = targets[key].replace("clamp_min(", "(").replace(", 0.0001)", ")")
    assert targets[key] != row_targets()[key]
    assert "FAILED" in run_promtool(agreement_tests(targets), tmp_path)


@pytest.mark.parametrize("name", ["TitanicFeatureDrift", "TitanicModelAccuracyDrop"])
def test_a_broken_model_alert_fails_its_unit_test(tmp_path: Path, name: str) -> None:
    """Summing per instance instead of over the replicas breaks the PSI and the accuracy."""
    text = RULES_YML.read_text(encoding="utf-8")
    broken = text.replace("sum by (job, model_version", "sum by (job, instance, model_version")
    assert broken != text
    (tmp_path / RULES_YML.name).write_text(broken, encoding="utf-8")
    (tmp_path / RULES_TEST_YML.name).write_text(
        RULES_TEST_YML.read_text(encoding="utf-8"), encoding="utf-8"
    )
    result = promtool("test", "rules", RULES_TEST_YML.name, cwd=tmp_path)
    assert result.returncode != 0
    assert name in result.stdout + result.stderr

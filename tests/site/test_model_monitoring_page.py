"""docs/model_monitoring.md, "Is the model still right?": every number it gives is checked here.

The worked PSI comes from the committed model's reference profile; the thresholds are the
rules'; the sample-size claims are drawn again; the runbook names exactly the model alerts.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
import yaml
from scipy.stats import binom

from titanic_api import profile
from titanic_api.settings import COMMITTED_MODEL
from tools import rehearse, traffic
from tools.servers import REPO_ROOT

PAGE = REPO_ROOT / "docs" / "model_monitoring.md"
RULES = REPO_ROOT / "prometheus_rules.yml"
GROUP = "titanic-model-quality"
EPSILON = 0.0001
MIN_PASSENGERS, MIN_LABELS = 300, 100


def page() -> str:
    return PAGE.read_text(encoding="utf-8")


def committed_profile() -> profile.ReferenceProfile:
    return profile.read(COMMITTED_MODEL / profile.PROFILE_PATH)


def model_rules() -> list[dict[str, object]]:
    groups = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    [group] = [g for g in groups if g["name"] == GROUP]
    rules: list[dict[str, object]] = group["rules"]
    return rules


def psi(current: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """PSI as the recording rule computes it, for each row of ``current`` (shares)."""
    cur, ref = np.maximum(current, EPSILON), np.maximum(reference, EPSILON)
    result: np.ndarray = ((cur - ref) * np.log(cur / ref)).sum(axis=-1)
    return result


def worked_rows() -> list[list[str]]:
    section = page().split("## The population stability index, by hand", 1)[1]
    return [
        [cell.strip().strip("*") for cell in line.strip("|").split("|")]
        for line in section.split("\n\n| Pclass |", 1)[1].splitlines()[2:]
        if line.startswith("|")
    ]


def number(text: str) -> float:
    return float(text.replace("−", "-"))


def test_the_worked_psi_is_the_committed_profiles() -> None:
    reference = committed_profile().features["Pclass"]
    rows = worked_rows()
    assert [row[0] for row in rows] == [*reference.bins, "PSI"]
    counts = np.array([int(row[1]) for row in rows[:-1]])
    current = counts / counts.sum()
    terms = (current - reference.proportions) * np.log(current / reference.proportions)
    for row, cur, ref, term in zip(rows, current, reference.proportions, terms, strict=False):
        assert [number(cell) for cell in row[2:]] == pytest.approx(
            [cur, ref, cur - ref, math.log(cur / ref), term], abs=0.00005
        )
    total = psi(current, np.array(reference.proportions))
    assert (int(rows[-1][1]), number(rows[-1][-1])) == (counts.sum(), pytest.approx(total, 5e-5))
    assert 0.1 <= total < 0.25  # "a moderate shift ... TitanicFeatureDrift"
    assert f"{total:.4f} is above 0.1 and below 0.25" in page()


def test_the_profile_excerpt_is_the_pclass_part_of_the_committed_profile() -> None:
    [include] = re.findall(r'--8<-- "([^"]*reference_profile\.json):(\d+):(\d+)"', page())
    path, first, last = include[0], int(include[1]), int(include[2])
    assert REPO_ROOT / path == COMMITTED_MODEL / profile.PROFILE_PATH
    lines = (REPO_ROOT / path).read_text(encoding="utf-8").splitlines()[first - 1 : last]
    assert lines[0].strip() == '"Pclass": {' and lines[-1].strip() == "},"
    assert yaml.safe_load("{" + "\n".join(lines).rstrip(",") + "}")["Pclass"] == (
        committed_profile().features["Pclass"].model_dump()
    )


def test_the_thresholds_the_page_names_are_the_rules() -> None:
    alerts = {str(rule["alert"]): str(rule["expr"]) for rule in model_rules() if "alert" in rule}
    assert alerts["TitanicFeatureDrift"].count(">= 0.1 < 0.25") == 1
    assert ">= 0.25" in alerts["TitanicFeatureDriftCritical"]
    assert ">= 0.1" in alerts["TitanicPredictionDrift"]
    for name in ("TitanicFeatureDrift", "TitanicFeatureDriftCritical", "TitanicPredictionDrift"):
        assert f"increase10m >= {MIN_PASSENGERS}" in alerts[name]
    for name in ("TitanicModelAccuracyDrop", "TitanicModelBrierScoreRise"):
        assert f"titanic:labels:increase10m >= {MIN_LABELS}" in alerts[name]
    assert "- 0.1)" in alerts["TitanicModelAccuracyDrop"]
    assert "+ 0.05)" in alerts["TitanicModelBrierScoreRise"]
    [psi_rule] = [r for r in model_rules() if r.get("record") == "titanic:feature_psi:10m"]
    assert str(psi_rule["expr"]).count(f", {EPSILON})") == 4
    text = page()
    for claim in (
        "**PSI 0.1 and 0.25.**",
        f"**At least {MIN_PASSENGERS} passengers in the window.**",
        f"**At least {MIN_LABELS} labels in the window.**",
        f"clamped to {EPSILON}",
        "Siddiqi, *Credit Risk Scorecards*, 2006",
    ):
        assert claim in text


def test_an_empty_bin_adds_a_large_but_finite_term() -> None:
    term = psi(np.array([0.0]), np.array([0.1]))
    assert round(float(term), 1) == 0.7
    assert "a bin holding 10% of the reference and nobody now adds about 0.7" in page()


def reference_samples(passengers: int, draws: int = 2000) -> dict[str, np.ndarray]:
    """PSI of ``draws`` windows of ``passengers`` drawn from each feature's reference."""
    rng = np.random.default_rng(19)
    found = {}
    for name, distribution in committed_profile().features.items():
        shares = np.array(distribution.proportions)
        counts = rng.multinomial(passengers, shares / shares.sum(), size=draws)
        found[name] = psi(counts / passengers, shares)
    return found


def test_300_passengers_from_the_reference_itself_stay_under_0_1() -> None:
    for name, values in reference_samples(MIN_PASSENGERS).items():
        assert np.mean(values >= 0.1) < 0.01, name  # "fewer than 1 window in 100"


def test_30_passengers_from_the_reference_cross_0_1_almost_always() -> None:
    ten_bins = {n: v for n, v in reference_samples(30).items() if n in ("Age", "Fare")}
    for name, values in ten_bins.items():
        assert len(committed_profile().features[name].bins) == 10
        assert np.mean(values >= 0.1) > 0.9, name
        assert round(float(np.median(values)), 1) in (0.3, 0.4), name
    assert (
        "With 30 passengers a feature of 10 bins (Age, Fare) crosses 0.1 more than 9 times in 10"
        " with no drift at all (its typical PSI is then about 0.35)" in page()
    )


def test_100_labels_rarely_show_a_good_model_10_points_worse() -> None:
    accuracy = committed_profile().accuracy
    assert f"({accuracy:.3f})" in page()
    worse = binom.cdf(math.ceil(100 * (accuracy - 0.1)) - 1, 100, accuracy)
    assert worse < 0.01


def test_the_runbook_has_one_section_per_model_alert() -> None:
    alerts = [str(rule["alert"]) for rule in model_rules() if "alert" in rule]
    runbook = page().split("## The alerts, and what to do when one fires", 1)[1].split("\n## ")[0]
    assert re.findall(r"^### (\w+)$", runbook, flags=re.MULTILINE) == alerts
    assert runbook.count("**Do:**") == len(alerts) == 6
    assert "Six alerts watch the model" in runbook


def test_the_drill_commands_are_the_tools() -> None:
    commands = re.findall(r"^python -m tools\.(\w+)(.*?)(?:\s+#.*)?$", page(), flags=re.MULTILINE)
    assert [tool for tool, _ in commands] == ["traffic", "traffic", "traffic", "rehearse"]
    for _, args in commands[:3]:
        parsed = traffic.parser().parse_args(args.split())
        assert parsed.profile in traffic.PROFILES
    assert rehearse.parser().parse_args(commands[3][1].split()).drill
    assert traffic.DRIFTED_FEATURES == ("Age", "Fare", "Pclass")
    assert "(Age, Fare and Pclass: the features the `drifted` profile shifts)" in page()


def test_the_page_is_in_the_nav_and_the_readme() -> None:
    mkdocs = (REPO_ROOT / "mkdocs.yml").read_text(encoding="utf-8")  # holds !!python tags
    nav = mkdocs.split("\nnav:\n", 1)[1]
    watching = nav.split("  - Serving and watching:\n", 1)[1].split("\n  - ", 1)[0]
    assert f"      - Is the model still right?: {PAGE.name}" in watching.splitlines()
    assert f"(docs/{PAGE.name})" in Path(REPO_ROOT / "README.md").read_text(encoding="utf-8")

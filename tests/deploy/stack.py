"""The observability stack's files as the deploy tests read them, and the Prometheus binaries.

prometheus.yml, the alert rules and Compose are checked in test_observability.py, the
Grafana dashboard in test_dashboard.py, the running stack in test_observability_live.py;
they are read again by the Kubernetes checks (k8s_checks.py) and the rehearsal
(test_rehearsal.py).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.metrics import Metrics
from tools.servers import REPO_ROOT as ROOT

PROMETHEUS_YML = ROOT / "prometheus.yml"
RULES_YML = ROOT / "prometheus_rules.yml"
RULES_TEST_YML = ROOT / "prometheus_rules_test.yml"
DASHBOARD_JSON = ROOT / "grafana_dashboard" / "titanic_api_simple_app_monitoring.json"
PROVISIONING = ROOT / "grafana_dashboard" / "provisioning"
COMPOSE_YML = ROOT / "docker-compose.yml"
DOCKER_PROMETHEUS_YML = ROOT / "docker" / "prometheus.yml"
DOCKERFILE = ROOT / "docker" / "Dockerfile"
OBSERVABILITY_PAGES = (ROOT / "docs" / "prometheus.md", ROOT / "docs" / "grafana.md")

DATASOURCE_REF = {"type": "prometheus", "uid": "${datasource}"}
# Series Prometheus makes itself for every target (not on the app's /metrics).
PROMETHEUS_SERIES = {"up"}
# Grafana's built-in variables, as the live test replaces them: $__rate_interval must
# span several scrapes (1 s apart in the test), $__range the whole test.
GRAFANA_VARIABLES = {
    "__rate_interval": "30s",
    "__interval": "2s",
    "__range": "5m",
    "datasource": "prometheus",
    # The dashboard's Instance menu set to All (Grafana's allValue for it).
    "instance": ".*",
}
# What every dashboard query selects: the job, and the instances picked in the Instance menu.
SELECTOR = '{job="fastapi_app", instance=~"$instance"}'
INSTALL_HINT = (
    "Prometheus is not installed. Install it with `sudo apt-get install prometheus` "
    "(Debian/Ubuntu) or download prometheus and promtool from "
    "https://prometheus.io/download/ and put them on your PATH."
)


# ------------------------------------------------------------------ reading the files


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD_JSON.read_text(encoding="utf-8"))
    return data


def data_panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel that shows data (rows are layout only; collapsed rows hold panels)."""
    panels = []
    for panel in board["panels"]:
        if panel["type"] == "row":
            panels.extend(panel.get("panels", []))
        else:
            panels.append(panel)
    return panels


def dashboard_queries(lesson_only: bool = False) -> list[tuple[str, str, str]]:
    """(panel title, refId, PromQL) for every target of every panel (or of the lesson's)."""
    return [
        (panel["title"], target["refId"], target["expr"])
        for panel in data_panels(lesson_board() if lesson_only else dashboard())
        for target in panel["targets"]
    ]


def lesson_board() -> dict[str, Any]:
    """The dashboard without the package's row (the row, and the panels under it)."""
    board, panels, row = dashboard(), [], ""
    for panel in board["panels"]:
        row = panel["title"] if panel["type"] == "row" else row
        if row != PACKAGE_ROW:
            panels.append(panel)
    return {**board, "panels": panels}


def all_rules() -> list[dict[str, Any]]:
    """Every rule of the file: alerts, and the recording rules of the model monitoring."""
    return [rule for group in load_yaml(RULES_YML)["groups"] for rule in group["rules"]]


def rules() -> list[dict[str, Any]]:
    """The alerting rules."""
    return [rule for rule in all_rules() if "alert" in rule]


# What the package adds to the final lesson's metrics (model monitoring, issue 19): its
# dashboard row and rule group are checked live against the package, in
# tests/deploy/test_model_monitoring_drill.py, not against the lesson.
PACKAGE_ROW = "Model quality"
PACKAGE_GROUP = "titanic-model-quality"
# ... and the refusals of its limits (issue 20), checked against the package in
# tests/titanic_api/test_hostile_clients.py.
LIMITS_GROUP = "titanic-api-limits"


def lesson_rules() -> list[dict[str, Any]]:
    """The alerting rules about what the final lesson exposes too."""
    groups = load_yaml(RULES_YML)["groups"]
    package = {PACKAGE_GROUP, LIMITS_GROUP}
    return [rule for g in groups if g["name"] not in package for rule in g["rules"]]


def observability_pages() -> str:
    """The site's Prometheus and Grafana pages, as one text."""
    return "".join(page.read_text(encoding="utf-8") for page in OBSERVABILITY_PAGES)


def page_queries() -> list[str]:
    """The PromQL in those pages' ```promql blocks (one query per line)."""
    blocks = re.findall(r"```promql\n(.*?)```", observability_pages(), flags=re.DOTALL)
    return [line for block in blocks for line in block.splitlines() if line.strip()]


PROMQL_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or"}
PROMQL_KEYWORDS |= {"unless", "bool", "offset", "inf", "nan"}


def metric_names_in(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (not functions, labels or keywords)."""
    expr = re.sub(r'"(?:\\.|[^"\\])*"', '""', expr)  # label values
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # range durations, Grafana variables
    expr = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    names = set()
    for match in re.finditer(r"(?<![\w.$])[A-Za-z_:][\w:]*", expr):
        followed_by_call = expr[match.end() :].lstrip().startswith("(")
        if not followed_by_call and match.group().lower() not in PROMQL_KEYWORDS:
            names.add(match.group())
    return names


def concrete(expr: str) -> str:
    """A dashboard query with Grafana's variables replaced, as Grafana sends it."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in GRAFANA_VARIABLES:
            raise AssertionError(f"unknown Grafana variable ${name} in {expr!r}")
        return GRAFANA_VARIABLES[name]

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", replace, expr)


def jobs(config: dict[str, Any]) -> dict[str, list[str]]:
    """job name -> its static targets."""
    return {
        job["job_name"]: [t for static in job["static_configs"] for t in static["targets"]]
        for job in config["scrape_configs"]
    }


def exposed_names(scrape: Metrics) -> set[str]:
    """Every sample name a scrape shows, or would show once a labelled series exists."""
    suffixes = {
        "counter": ["_total", "_created"],
        "gauge": [""],
        "histogram": ["_bucket", "_sum", "_count", "_created"],
        "summary": ["", "_sum", "_count", "_created"],
    }
    derived = {
        family + suffix
        for family, kind in scrape.types.items()
        for suffix in suffixes.get(kind, [""])
    }
    return scrape.names() | derived


# ------------------------------------------------------------------ Prometheus binaries


def prometheus_binary(name: str) -> str:
    """The path of prometheus or promtool; skip (or fail in CI) when it is missing."""
    path = shutil.which(name)
    if path:
        return path
    if os.environ.get("REQUIRE_PROMETHEUS") == "1":
        pytest.fail(f"REQUIRE_PROMETHEUS=1 but `{name}` was not found. {INSTALL_HINT}")
    pytest.skip(INSTALL_HINT)


def promtool(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [prometheus_binary("promtool"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


# Panels that show each replica on its own line; every other panel shows the whole service.
PER_INSTANCE = {"CPU usage", "Memory (resident)", "Request rate by replica"}

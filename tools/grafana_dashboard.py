"""The Grafana dashboard's queries, and the rule that makes them plain PromQL.

A panel's query in grafana_dashboard/titanic_api_simple_app_monitoring.json uses Grafana's
variables, which Prometheus does not know: ``$__rate_interval``, ``$__range`` and the
dashboard's own ``$instance``. To paste a query into Prometheus' graph page, replace each one
by the value Grafana would send (docs/grafana.md shows this rule; tests/site/test_grafana_page.py
checks that it turns every query of the dashboard into PromQL that promtool accepts)::

    python -m tools.grafana_dashboard      # every panel's queries, ready to paste
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from tools.servers import REPO_ROOT

DASHBOARD = REPO_ROOT / "grafana_dashboard" / "titanic_api_simple_app_monitoring.json"
VARIABLE = re.compile(r"\$\{(\w+)\}|\$(\w+)")
# What Grafana puts in their place, for prometheus.yml's 15 s scrape interval:
FOR_PROMETHEUS = {
    # max(4 x scrape interval, $__interval + scrape interval): four scrapes of 15 s.
    "__rate_interval": "1m",
    # The dashboard's time range: its default, "Last 15 minutes".
    "__range": "15m",
    # The Instance menu's "All" (its allValue): every instance. One alone: "localhost:8000".
    "instance": ".*",
}


def load(path: Path = DASHBOARD) -> dict[str, Any]:
    dashboard: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return dashboard


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """The dashboard's panels with queries, rows unfolded, in reading order."""
    found: list[dict[str, Any]] = []
    for panel in dashboard.get("panels", []):
        found.extend(panel.get("panels", []) if panel.get("type") == "row" else [panel])
    with_queries = [p for p in found if any(t.get("expr") for t in p.get("targets", []))]
    return sorted(with_queries, key=lambda p: (p["gridPos"].get("y", 0), p["gridPos"].get("x", 0)))


def queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, PromQL as written in Grafana) for every query of every panel."""
    return [
        (panel.get("title", ""), target["expr"])
        for panel in panels(dashboard)
        for target in panel["targets"]
        if target.get("expr")
    ]


def for_prometheus(expr: str, values: dict[str, str] = FOR_PROMETHEUS) -> str:
    """A panel's query with Grafana's variables replaced: ``$name`` and ``${name}`` alike."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in values:
            raise KeyError(f"no value for Grafana's variable ${name} in {expr!r}")
        return values[name]

    return VARIABLE.sub(replace, expr)


def main() -> None:
    for title, expr in queries(load()):
        print(f"# {title}\n{for_prometheus(expr)}\n")


if __name__ == "__main__":
    main()

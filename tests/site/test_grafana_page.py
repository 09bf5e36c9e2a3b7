"""docs/grafana.md's rule for pasting a dashboard query into Prometheus, checked by promtool.

The rule is tools.grafana_dashboard.FOR_PROMETHEUS; the page's table must say the same, each
value must be what Grafana would send for this project's files, and the rule must turn every
query of the dashboard into PromQL that Prometheus' own parser (``promtool check rules``) accepts,
while the queries as Grafana keeps them are refused.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from tests.deploy.stack import promtool
from tools import grafana_dashboard
from tools.grafana_dashboard import FOR_PROMETHEUS, for_prometheus
from tools.servers import REPO_ROOT

PAGE = (REPO_ROOT / "docs" / "grafana.md").read_text()


def section(title: str) -> str:
    start = PAGE.index(f"\n## {title}\n")
    end = PAGE.find("\n## ", start + 1)
    return PAGE[start:end]


def parse_errors(expressions: list[str], folder: Path) -> str:
    """promtool's complaints about the expressions, as recording rules (empty: all parse)."""
    rules = {
        "groups": [
            {
                "name": "pasted",
                "rules": [{"record": f"pasted:{i}", "expr": e} for i, e in enumerate(expressions)],
            }
        ]
    }
    path = folder / "pasted.yml"
    path.write_text(yaml.safe_dump(rules))
    result = promtool("check", "rules", str(path))
    return "" if result.returncode == 0 else result.stdout + result.stderr


def test_the_page_table_is_the_rule() -> None:
    rows = re.findall(
        r"^\| `\$(\w+)` \| `([^`]+)` \|", section("Paste a panel's query into Prometheus"), re.M
    )
    assert dict(rows) == FOR_PROMETHEUS


def test_each_value_is_what_grafana_sends_for_these_files() -> None:
    scrape = yaml.safe_load((REPO_ROOT / "prometheus.yml").read_text())["global"]["scrape_interval"]
    assert scrape == "15s" and FOR_PROMETHEUS["__rate_interval"] == "1m"  # 4 x 15 s
    dashboard = grafana_dashboard.load()
    assert dashboard["time"]["from"] == f"now-{FOR_PROMETHEUS['__range']}"
    [instance] = [v for v in dashboard["templating"]["list"] if v["name"] == "instance"]
    assert instance["allValue"] == FOR_PROMETHEUS["instance"]


def test_every_variable_of_the_dashboard_has_a_value() -> None:
    used = {
        match.group(1) or match.group(2)
        for _, expr in grafana_dashboard.queries(grafana_dashboard.load())
        for match in grafana_dashboard.VARIABLE.finditer(expr)
    }
    assert used == set(FOR_PROMETHEUS)
    with pytest.raises(KeyError, match=r"\$__interval"):
        for_prometheus("rate(x[$__interval])")


def test_the_pasted_example_is_the_rule_applied_to_a_dashboard_query() -> None:
    before, after = re.findall(
        r"```text\n(.*?)\n```", section("Paste a panel's query into Prometheus")
    )
    assert before in [expr for _, expr in grafana_dashboard.queries(grafana_dashboard.load())]
    assert after == for_prometheus(before)


def test_the_rule_makes_every_dashboard_query_valid_promql(tmp_path: Path) -> None:
    expressions = [expr for _, expr in grafana_dashboard.queries(grafana_dashboard.load())]
    assert len(expressions) >= 15
    assert parse_errors([for_prometheus(e) for e in expressions], tmp_path) == ""


def test_the_queries_as_grafana_keeps_them_fail_or_find_nothing(tmp_path: Path) -> None:
    """The check above can fail: an unreplaced window is a parse error, as the page says.

    A query whose only variable is ``$instance`` parses, but ``instance=~"$instance"`` is a
    regular expression no address matches (``$`` is its end of line): it finds nothing.
    """
    expressions = [expr for _, expr in grafana_dashboard.queries(grafana_dashboard.load())]
    windowed = [e for e in expressions if "[$__" in e]
    assert windowed
    for expr in windowed:
        assert "parse error" in parse_errors([expr], tmp_path), expr
    assert re.fullmatch("$instance", "localhost:8000") is None
    assert "a parse error" in PAGE and 'instance=~"$instance"' in PAGE

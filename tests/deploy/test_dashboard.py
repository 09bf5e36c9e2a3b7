"""The Grafana dashboard, read from its file: valid, provisioned as it is, and querying
every instance of the job through the data-source variable and the instance menu.

Its queries are evaluated against a real Prometheus by test_observability_live.py.
"""

from __future__ import annotations

import json
import re

from tests.deploy.stack import (
    DASHBOARD_JSON,
    DATASOURCE_REF,
    PER_INSTANCE,
    SELECTOR,
    concrete,
    dashboard,
    dashboard_queries,
    data_panels,
    metric_names_in,
    observability_pages,
)
from tools.servers import REPO_ROOT as ROOT

# ------------------------------------------------------------------ static: dashboard


def test_dashboard_imports_and_provisions_as_it_is() -> None:
    text = DASHBOARD_JSON.read_text(encoding="utf-8")
    board = json.loads(text)
    assert board["title"] == "Titanic API - Simple App Monitoring"
    assert board["id"] is None  # provisioning and import both need a null id
    assert board["uid"]
    # Placeholders only a manual import resolves, never provisioning:
    assert "__inputs" not in board
    assert "${DS_" not in text
    [variable] = [v for v in board["templating"]["list"] if v["type"] == "datasource"]
    assert (variable["name"], variable["query"]) == ("datasource", "prometheus")


def test_every_panel_queries_prometheus_through_the_datasource_variable() -> None:
    board = dashboard()
    panels = data_panels(board)
    assert len(panels) >= 12
    for panel in panels:
        assert panel["datasource"] == DATASOURCE_REF, panel["title"]
        assert panel["targets"], f"{panel['title']} has no query"
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE_REF, panel["title"]
            assert target["expr"].strip(), panel["title"]
    # No hard-coded data-source uid anywhere: every uid is the dashboard's or the variable.
    uids = re.findall(r'"uid":\s*"([^"]*)"', DASHBOARD_JSON.read_text(encoding="utf-8"))
    assert set(uids) == {board["uid"], "${datasource}"}


def test_panels_have_known_types_unique_ids_and_do_not_overlap() -> None:
    board = dashboard()
    assert {p["type"] for p in board["panels"]} <= {
        "row",
        "timeseries",
        "stat",
        "piechart",
        "bargauge",
    }
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids))
    cells: dict[tuple[int, int], str] = {}
    for panel in board["panels"]:
        pos = panel["gridPos"]
        assert pos["x"] >= 0 and pos["x"] + pos["w"] <= 24, panel["title"]  # 24 columns
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = panel["title"]


def test_dashboard_covers_the_golden_signals_and_the_model() -> None:
    queries = [expr for _, _, expr in dashboard_queries()]
    used = set().union(*(metric_names_in(expr) for expr in queries))
    golden = {
        "http_requests_total",
        "http_request_duration_seconds_bucket",
        "http_errors_total",
        "http_requests_in_progress",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
    }
    model = {
        "titanic_predictions_total",
        "titanic_predictions_output_total",
        "prediction_type_total",
        "passenger_age_distribution_bucket",
        "titanic_survival_probability_bucket",
    }
    assert golden | model <= used
    for q in ("0.50", "0.95", "0.99"):
        percentile = (
            f"histogram_quantile({q}, sum by (le) "
            f"(rate(http_request_duration_seconds_bucket{SELECTOR}[$__rate_interval])))"
        )
        assert percentile in queries
    [ratio] = [expr for expr in queries if "http_errors_total" in expr]
    assert f"rate(http_errors_total{SELECTOR}[" in ratio
    assert f"rate(http_requests_total{SELECTOR}[" in ratio
    # rate() and increase() ranges come from Grafana, never a hard-coded duration.
    for expr in queries:
        for window in re.findall(r"\[([^\]]*)\]", expr):
            assert window in ("$__rate_interval", "$__range"), expr
        if "rate(" in expr:
            assert "$__rate_interval" in expr, expr


def test_single_numbers_and_the_error_ratio_fall_back_to_zero() -> None:
    """A stat panel shows 0, not "No data"; the 5xx series appears only with the first error."""
    for panel in data_panels(dashboard()):
        for target in panel["targets"]:
            if panel["type"] == "stat" or "http_errors_total" in target["expr"]:
                assert target["expr"].rstrip().endswith("or vector(0)"), panel["title"]


def selectors_of(expr: str, name: str) -> list[str]:
    """The label matchers written after each selection of metric ``name`` in ``expr``."""
    return re.findall(rf"(?<![\w:]){name}(\{{[^}}]*\}})?(?![\w:(])", expr)


def selects_job_and_instance(selector: str) -> bool:
    """``SELECTOR``, or ``SELECTOR`` narrowed by more matchers (``outcome="correct"``)."""
    return selector == SELECTOR or selector.startswith(SELECTOR[:-1] + ", ")


def test_every_query_selects_the_job_and_the_instance_menu() -> None:
    """In a shared Prometheus another app's http_requests_total must not be added in."""
    for title, ref, expr in dashboard_queries():
        for name in metric_names_in(expr):
            found = selectors_of(expr, name)
            assert found and all(selects_job_and_instance(s) for s in found), (
                f"{title} [{ref}]: {name} without {SELECTOR}"
            )
    assert selectors_of('a{x="1"} + a + sum(ab{y="2"})', "a") == ['{x="1"}', ""]
    assert selects_job_and_instance(SELECTOR[:-1] + ', outcome="correct"}')
    assert not selects_job_and_instance('{job="fastapi_app", outcome="correct"}')


AGGREGATED = re.compile(r"^\(*(histogram_quantile\([\d.]+, )?(sum|count)\b( by \(([\w, ]+)\))?")


def test_whole_service_panels_add_up_every_instance() -> None:
    """Every query aggregates; only the per-replica panels keep the instance apart."""
    for panel in data_panels(dashboard()):
        for target in panel["targets"]:
            match = AGGREGATED.match(target["expr"])
            assert match, f"{panel['title']}: {target['expr']} does not add the instances up"
            by = {label.strip() for label in (match.group(4) or "").split(",") if label.strip()}
            assert ("instance" in by) == (panel["title"] in PER_INSTANCE), panel["title"]
            if "instance" in by:
                assert target["legendFormat"] == "{{instance}}", panel["title"]


def test_instance_menu_lists_the_jobs_targets() -> None:
    [variable] = [v for v in dashboard()["templating"]["list"] if v["name"] == "instance"]
    query = 'label_values(up{job="fastapi_app"}, instance)'
    assert (variable["type"], variable["definition"], variable["query"]["query"]) == (
        "query",
        query,
        query,
    )
    assert variable["datasource"] == DATASOURCE_REF
    # "All" (the default) is a regular expression that matches every instance.
    assert (variable["includeAll"], variable["multi"], variable["allValue"]) == (True, True, ".*")


def test_replicas_up_panel_reads_up_out_of_scraped() -> None:
    [panel] = [p for p in data_panels(dashboard()) if p["title"] == "Replicas up"]
    assert panel["type"] == "stat"
    assert [(t["legendFormat"], t["expr"], t["instant"]) for t in panel["targets"]] == [
        ("up", f"sum(up{SELECTOR}) or vector(0)", True),
        ("scraped", f"count(up{SELECTOR}) or vector(0)", True),
    ]


def test_metric_name_extraction() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (le) (rate(a_bucket{job="x", le=~"0.5"}[5m])))'
        " / ignoring(foo) sum(b_total offset 5m) > 1e-9 or vector(0)"
    )
    assert metric_names_in(expr) == {"a_bucket", "b_total"}
    assert metric_names_in('up{job="fastapi_app"} == 0') == {"up"}
    assert concrete("rate(x[$__rate_interval]) + y[${__range}]") == "rate(x[30s]) + y[5m]"


def test_page_excerpts_are_quoted_from_their_files() -> None:
    """Every "`file` (excerpt ...)" block on those pages is made of that file's lines."""
    pattern = r"^`([^`]+)` \(excerpt[^\n]*\n\n```\w*\n(.*?)```"
    excerpts = re.findall(pattern, observability_pages(), flags=re.MULTILINE | re.DOTALL)
    assert len(excerpts) >= 5
    for name, block in excerpts:
        lines = {line.strip() for line in (ROOT / name).read_text(encoding="utf-8").splitlines()}
        for line in block.splitlines():
            if line.strip() not in ("", "..."):
                assert line.strip() in lines, f"the pages quote {line.strip()!r} from {name}"

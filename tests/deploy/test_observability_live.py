"""The observability stack running: the final lesson and a real Prometheus.

The live tests start the final lesson under uvicorn and a real Prometheus (both on
127.0.0.1, free ports, stopped by pid), send traffic with ``tools.traffic``, and evaluate
every dashboard query through Prometheus' HTTP API. Without the ``prometheus`` binary
those tests are skipped with a message saying how to install it, unless
``REQUIRE_PROMETHEUS=1`` (CI), which turns the skip into a failure.
"""

from __future__ import annotations

import math
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx2
import pytest

from tests.deploy.stack import (
    PROMETHEUS_SERIES,
    all_rules,
    concrete,
    dashboard,
    dashboard_queries,
    data_panels,
    exposed_names,
    lesson_rules,
    metric_names_in,
    page_queries,
    prometheus_binary,
)
from tests.support.lessons import FINAL_LESSON
from tests.support.metrics import Metrics, scrape, scrape_until
from tools import traffic
from tools.servers import HOST, LessonServer, PrometheusServer, ServerProcess

# ------------------------------------------------------------------ live: the stack


def http_json(url: str, **params: str) -> Any:
    response = httpx2.get(url, params=params, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


@dataclass
class Stack:
    """The final lesson, and Prometheus scraping it every second (None when not installed)."""

    app: LessonServer
    prometheus: ServerProcess | None = None
    idle_results: dict[str, list[dict[str, Any]]] | None = None

    def query(self, expr: str) -> list[dict[str, Any]]:
        assert self.prometheus is not None
        answer = http_json(self.prometheus.url + "/api/v1/query", query=expr)
        assert answer["status"] == "success", answer
        result: list[dict[str, Any]] = answer["data"]["result"]
        return result

    def wait_for(self, expr: str, check: Any, timeout: float = 20.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            result = self.query(expr)
            if check(result):
                return result
            if time.monotonic() > deadline:
                raise AssertionError(f"{expr} still gives {result} after {timeout} s")
            time.sleep(0.25)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Start the final lesson and (when installed) Prometheus; stop both by pid."""
    tmp = tmp_path_factory.mktemp("observability")
    with pytest.MonkeyPatch.context() as env:
        for name in ("PREDICTION_LOG_PATH", "TITANIC_MODEL_URI", "PROMETHEUS_MULTIPROC_DIR"):
            env.delenv(name, raising=False)
        app_env = {"PREDICTION_LOG_DIR": str(tmp / "prediction-logs")}
        app = LessonServer(FINAL_LESSON, env=app_env, log_path=tmp / "uvicorn.log")
        with app:
            binary = shutil.which("prometheus")
            if binary is None:  # the tests that need it skip, or fail in CI
                yield Stack(app)
                return
            # The repository's prometheus.yml, pointed at the test's ports, scraping every second.
            with PrometheusServer(app.port, tmp, binary=binary) as prometheus:
                live = Stack(app, prometheus)
                # Idle: a few scrapes of the app before any traffic (rate() needs two).
                live.wait_for(
                    'count_over_time(up{job="fastapi_app"}[1m]) >= 3', lambda r: len(r) == 1
                )
                live.idle_results = {
                    expr: live.query(concrete(expr))
                    for _, _, expr in dashboard_queries(lesson_only=True)
                }
                yield live


@dataclass
class Traffic:
    report: traffic.Report
    before: Metrics
    after: Metrics


@pytest.fixture(scope="module")
def sent(stack: Stack) -> Traffic:
    """Drive traffic once; with Prometheus, wait until it has scraped all of it."""
    before = scrape(stack.app.url)
    report = traffic.run(stack.app.url, duration=6, rate=25, seed=4)
    expected = before.value("titanic_predictions_total") + report.passengers
    after = scrape_until(
        stack.app.url, lambda now: now.value("titanic_predictions_total") == expected
    )
    if stack.prometheus is not None:
        total = after.value("titanic_predictions_total")
        stack.wait_for(
            'sum(titanic_predictions_total{job="fastapi_app"})',
            lambda r: bool(r) and float(r[0]["value"][1]) == total,
        )
    return Traffic(report, before, after)


@pytest.fixture
def prometheus(stack: Stack, sent: Traffic) -> Stack:
    if stack.prometheus is None:
        prometheus_binary("prometheus")  # skips, or fails when REQUIRE_PROMETHEUS=1
    return stack


@pytest.mark.live
def test_traffic_generator_sends_what_it_reports(sent: Traffic) -> None:
    report, after = sent.report, sent.after
    assert report.total >= 100
    for (kind, status), _count in report.sent.items():
        assert status == traffic.EXPECTED_STATUS[kind], (kind, status)
    assert set(traffic.EXPECTED_STATUS) == {kind for kind, _ in report.sent}

    def delta(name: str, **labels: str) -> float:
        return after.value(name, **labels) - sent.before.value(name, **labels)

    assert delta("titanic_predictions_total") == report.passengers
    for kind in ("single", "batch", "simulation"):
        assert delta("prediction_type_total", type=kind) == report.count(kind)
    unknown = {"method": "GET", "endpoint": "<unmatched>", "status_code": "404"}
    assert delta("http_requests_total", **unknown) == report.count("unknown_path")
    invalid = {"method": "POST", "endpoint": "/predict_single", "status_code": "422"}
    assert delta("http_requests_total", **invalid) == report.count("invalid")


@pytest.mark.live
def test_every_metric_the_dashboard_rules_and_pages_use_is_exposed(sent: Traffic) -> None:
    exposed = exposed_names(sent.after) | PROMETHEUS_SERIES
    sources = {
        "dashboard": [expr for _, _, expr in dashboard_queries(lesson_only=True)],
        "alert rules": [rule["expr"] for rule in lesson_rules()],
        "the Prometheus and Grafana pages": page_queries(),
    }
    for source, queries in sources.items():
        used = set().union(*(metric_names_in(expr) for expr in queries))
        assert len(used) >= 4, f"{source}: found only {used}"
        assert used <= exposed, f"{source} uses metrics the app does not expose: {used - exposed}"


@pytest.mark.live
def test_prometheus_scrapes_the_app(prometheus: Stack) -> None:
    [up] = prometheus.query('up{job="fastapi_app"}')
    assert up["value"][1] == "1"
    assert up["metric"]["instance"] == f"{HOST}:{prometheus.app.port}"


@pytest.mark.live
def test_every_dashboard_query_returns_data(prometheus: Stack) -> None:
    empty, not_finite = [], []
    for title, ref, expr in dashboard_queries(lesson_only=True):
        result = prometheus.query(concrete(expr))
        if not result:
            empty.append(f"{title} [{ref}]: {expr}")
        elif not all(math.isfinite(float(series["value"][1])) for series in result):
            not_finite.append(f"{title} [{ref}]: {result}")
    assert not empty, "no data:\n" + "\n".join(empty)
    assert not not_finite, "NaN or Inf:\n" + "\n".join(not_finite)


@pytest.mark.live
def test_idle_panels_show_zero_not_no_data(prometheus: Stack) -> None:
    """Before any traffic, a query may be empty only where the panel says 0 for no value."""
    assert prometheus.idle_results is not None
    by_expr = {
        target["expr"]: panel for panel in data_panels(dashboard()) for target in panel["targets"]
    }
    for expr, result in prometheus.idle_results.items():
        if not result and "histogram_quantile" not in expr:  # no latency is not 0 s latency
            assert by_expr[expr]["fieldConfig"]["defaults"].get("noValue") == "0", expr


@pytest.mark.live
def test_alert_rules_load_and_stay_quiet_on_a_healthy_app(prometheus: Stack) -> None:
    assert prometheus.prometheus is not None
    groups = http_json(prometheus.prometheus.url + "/api/v1/rules")["data"]["groups"]
    loaded = {rule["name"]: rule for group in groups for rule in group["rules"]}
    assert set(loaded) == {rule.get("alert") or rule["record"] for rule in all_rules()}
    for name, rule in loaded.items():
        assert rule["health"] == "ok", (name, rule.get("lastError"))
        if rule["type"] == "alerting":  # recording rules have no state
            assert rule["state"] == "inactive", name

"""The observability stack: prometheus.yml, the alert rules, the Grafana dashboard, Compose.

Static tests read the files; the live ones start the final lesson under uvicorn
and a real Prometheus (both on 127.0.0.1, free ports, stopped by pid), send
traffic with ``tools.traffic``, and evaluate every dashboard query through
Prometheus' HTTP API. Without the ``prometheus``/``promtool`` binaries those
tests are skipped with a message saying how to install them, unless
``REQUIRE_PROMETHEUS=1`` (CI), which turns the skip into a failure.
"""

from __future__ import annotations

import json
import math
import random
import re
import shutil
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import pytest

from tests.deploy.stack import (
    COMPOSE_YML,
    DASHBOARD_JSON,
    DATASOURCE_REF,
    DOCKER_PROMETHEUS_YML,
    DOCKERFILE,
    PER_INSTANCE,
    PROMETHEUS_SERIES,
    PROMETHEUS_YML,
    PROVISIONING,
    RULES_TEST_YML,
    RULES_YML,
    SELECTOR,
    all_rules,
    concrete,
    dashboard,
    dashboard_queries,
    data_panels,
    exposed_names,
    jobs,
    lesson_rules,
    load_yaml,
    metric_names_in,
    observability_pages,
    page_queries,
    prometheus_binary,
    promtool,
    rules,
)
from tests.support.lessons import FINAL_LESSON
from tests.support.metrics import Metrics, scrape, scrape_until
from tools import traffic
from tools.servers import HOST, LessonServer, PrometheusServer, ServerProcess
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


# ------------------------------------------------------------------ static: Prometheus


def test_prometheus_yml_scrapes_the_final_lesson_on_the_host() -> None:
    config = load_yaml(PROMETHEUS_YML)
    assert config["global"] == {"scrape_interval": "15s", "evaluation_interval": "15s"}
    assert jobs(config) == {"prometheus": ["localhost:9090"], "fastapi_app": ["localhost:8000"]}
    assert config["rule_files"] == [RULES_YML.name]


def test_promtool_accepts_the_config_and_the_rules() -> None:
    for args in (("check", "config", PROMETHEUS_YML.name), ("check", "rules", RULES_YML.name)):
        result = promtool(*args)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "SUCCESS" in result.stdout


def test_alert_rules_unit_tests_pass() -> None:
    result = promtool("test", "rules", RULES_TEST_YML.name)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_is_documented_and_unit_tested() -> None:
    tested_quiet: set[str] = set()
    tested_firing: set[str] = set()
    for case in load_yaml(RULES_TEST_YML)["tests"]:
        for check in case["alert_rule_test"]:
            (tested_firing if check["exp_alerts"] else tested_quiet).add(check["alertname"])
    names = set()
    for rule in rules():
        names.add(rule["alert"])
        assert rule["for"], rule["alert"]
        assert rule["labels"]["severity"] in ("critical", "warning", "info"), rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
        assert 'job="fastapi_app"' in rule["expr"], rule["alert"]
    assert len(names) >= 4
    assert names == tested_firing == tested_quiet


def test_a_broken_rule_fails_its_unit_test(tmp_path: Path) -> None:
    """The unit tests can fail: raise the 5xx threshold and the firing case must break."""
    broken = RULES_YML.read_text(encoding="utf-8").replace("> 0.05", "> 0.5")
    assert broken != RULES_YML.read_text(encoding="utf-8")
    (tmp_path / RULES_YML.name).write_text(broken, encoding="utf-8")
    shutil.copy(RULES_TEST_YML, tmp_path)
    result = promtool("test", "rules", RULES_TEST_YML.name, cwd=tmp_path)
    assert result.returncode != 0
    assert "TitanicApiHighErrorRatio" in result.stdout + result.stderr


# ------------------------------------------------------------------ static: Compose stack


def compose() -> dict[str, Any]:
    data: dict[str, Any] = load_yaml(COMPOSE_YML)
    return data


def mounts(service: dict[str, Any]) -> dict[str, Path]:
    """container path -> host path (relative to the repository) of each bind mount.

    Named volumes (a source that is not a path, such as ``prediction-logs``) are left out.
    """
    result = {}
    for volume in service.get("volumes", []):
        source, target, *_ = volume.split(":")
        if source.startswith((".", "/")):
            result[target] = ROOT / source
    return result


def container_ports(service: dict[str, Any]) -> set[int]:
    ports = set()
    for mapping in service["ports"]:
        host_ip, _host_port, container_port = mapping.split(":")
        assert host_ip == "127.0.0.1", f"{mapping}: publish on loopback only"
        ports.add(int(container_port))
    return ports


def test_compose_files_exist_and_images_are_pinned() -> None:
    services = compose()["services"]
    assert set(services) == {"app", "prometheus", "grafana"}
    for name in ("prometheus", "grafana"):
        image = services[name]["image"]
        assert re.fullmatch(r"[\w./-]+:v?\d+\.\d+\.\d+", image), image
    for name, service in services.items():
        for target, source in mounts(service).items():
            assert source.exists(), f"{name} mounts missing {source} at {target}"
    build = services["app"]["build"]
    assert (ROOT / build["context"] / build["dockerfile"]) == DOCKERFILE


def test_compose_prometheus_scrapes_the_app_by_service_name() -> None:
    services = compose()["services"]
    prometheus = services["prometheus"]
    [config_flag] = [a for a in prometheus["command"] if a.startswith("--config.file=")]
    config_path = config_flag.split("=", 1)[1]
    assert mounts(prometheus)[config_path] == DOCKER_PROMETHEUS_YML
    docker_config = load_yaml(DOCKER_PROMETHEUS_YML)
    host_config = load_yaml(PROMETHEUS_YML)
    assert docker_config["global"] == host_config["global"]
    # The same rules, mounted where the container's config looks for them.
    for rule_file in docker_config["rule_files"]:
        assert mounts(prometheus)[str(Path(config_path).parent / rule_file)] == RULES_YML
    docker_jobs = jobs(docker_config)
    assert docker_jobs.keys() == jobs(host_config).keys()
    [app_target] = docker_jobs["fastapi_app"]
    host, port = app_target.split(":")
    assert host == "app" and int(port) in container_ports(services["app"])
    assert docker_jobs["prometheus"] == ["localhost:9090"]
    assert 9090 in container_ports(prometheus)


def test_grafana_provisioning_agrees_with_compose() -> None:
    services = compose()["services"]
    grafana_mounts = mounts(services["grafana"])
    datasources = load_yaml(PROVISIONING / "datasources" / "prometheus.yml")
    providers = load_yaml(PROVISIONING / "dashboards" / "dashboards.yml")
    assert datasources["apiVersion"] == providers["apiVersion"] == 1
    assert grafana_mounts["/etc/grafana/provisioning/datasources"] == PROVISIONING / "datasources"
    assert grafana_mounts["/etc/grafana/provisioning/dashboards"] == PROVISIONING / "dashboards"
    [source] = datasources["datasources"]
    assert source["type"] == "prometheus" and source["isDefault"] is True
    url = urllib.parse.urlsplit(source["url"])
    assert url.hostname == "prometheus" and url.port in container_ports(services["prometheus"])
    assert (
        source["jsonData"]["timeInterval"]
        == load_yaml(DOCKER_PROMETHEUS_YML)["global"]["scrape_interval"]
    )
    [provider] = providers["providers"]
    dashboard_target = next(t for t, s in grafana_mounts.items() if s == DASHBOARD_JSON)
    assert str(Path(dashboard_target).parent) == provider["options"]["path"]
    home = services["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home == dashboard_target


# ------------------------------------------------------------------ static: traffic tool


def test_traffic_refuses_unbounded_or_remote_runs() -> None:
    with pytest.raises(ValueError, match="loopback"):
        traffic.check_target("http://192.0.2.1:8000")
    assert traffic.check_target("http://192.0.2.1:8000/", allow_remote=True) == (
        "http://192.0.2.1:8000"
    )
    assert traffic.check_target("http://localhost:8000") == "http://localhost:8000"
    with pytest.raises(ValueError, match="duration"):
        traffic.run("http://127.0.0.1:1", duration=0, rate=5)
    with pytest.raises(ValueError, match="rate"):
        traffic.run("http://127.0.0.1:1", duration=1, rate=traffic.MAX_RATE + 1)
    with pytest.raises(SystemExit) as exit_info:
        traffic.main(["--url", "http://192.0.2.1:8000", "--duration", "1"])
    assert exit_info.value.code == 2


def test_traffic_mix_is_repeatable_and_covers_every_kind() -> None:
    rng_a, rng_b = random.Random(7), random.Random(7)
    a = [traffic.next_request(rng_a) for _ in range(200)]
    b = [traffic.next_request(rng_b) for _ in range(200)]
    assert a == b
    assert {request.kind for request in a} == set(traffic.EXPECTED_STATUS)
    assert a != [traffic.next_request(random.Random(8)) for _ in range(200)]


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

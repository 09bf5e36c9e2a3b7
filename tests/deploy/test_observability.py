"""The observability stack's files: prometheus.yml, the alert rules, Compose, the traffic tool.

Static tests: promtool checks the config and the rules and runs the rules' unit tests;
the Compose files agree with each other. Without the ``prometheus``/``promtool``
binaries the promtool tests are skipped with a message saying how to install them,
unless ``REQUIRE_PROMETHEUS=1`` (CI), which turns the skip into a failure. The dashboard
is checked by test_dashboard.py, the running stack by test_observability_live.py.
"""

from __future__ import annotations

import random
import re
import shutil
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.deploy.stack import (
    COMPOSE_YML,
    DASHBOARD_JSON,
    DOCKER_PROMETHEUS_YML,
    DOCKERFILE,
    LIMITS_GROUP,
    PACKAGE_GROUP,
    PROMETHEUS_YML,
    PROVISIONING,
    RULES_TEST_YML,
    RULES_YML,
    exposed_names,
    jobs,
    load_yaml,
    metric_names_in,
    promtool,
    rules,
)
from tests.support.metrics import Metrics
from titanic_api.main import app as package_app
from tools import traffic
from tools.servers import REPO_ROOT as ROOT

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


def test_the_package_exposes_every_metric_its_own_rule_groups_read() -> None:
    """The groups the final lesson cannot feed read only what the package exposes at start."""
    with TestClient(package_app) as client:
        exposed = exposed_names(Metrics.parse(client.get("/metrics").text))
    groups = [
        g for g in load_yaml(RULES_YML)["groups"] if g["name"] in {PACKAGE_GROUP, LIMITS_GROUP}
    ]
    assert len(groups) == 2
    for group in groups:
        used = set().union(*(metric_names_in(rule["expr"]) for rule in group["rules"]))
        raw = {name for name in used if ":" not in name}  # not the series the group records
        assert raw, group["name"]
        assert raw <= exposed, f"{group['name']}: {raw - exposed}"


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

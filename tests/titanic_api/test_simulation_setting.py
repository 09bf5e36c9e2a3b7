"""Finding 10: ``/simulate_predictions`` only where a setting enables it; simulated passengers
and probes told apart from real traffic in what the dashboard and the alerts read."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

from tests.deploy.stack import promtool
from tests.support.metrics import scrape
from titanic_api.app import create_app
from titanic_api.settings import COMMITTED_MODEL, Settings
from tools.examples import PASSENGER, SURVIVOR
from tools.servers import REPO_ROOT


def test_the_simulation_is_off_unless_enabled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TITANIC_ENABLE_SIMULATION")
    assert Settings().enable_simulation is False
    with TestClient(create_app()) as client:
        response = client.post("/simulate_predictions?num_executions=3")
        assert (response.status_code, response.json()) == (404, {"detail": "Not Found"})
        assert "/simulate_predictions" not in client.get("/openapi.json").json()["paths"]
        assert scrape(client).value("prediction_type_total", type="simulation") == 0


def test_the_setting_turns_it_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TITANIC_ENABLE_SIMULATION", "true")
    with TestClient(create_app()) as client:
        response = client.post("/simulate_predictions?num_executions=3&seed=1")
        assert response.status_code == 200
        assert response.json()["num_executions"] == 3


def test_settings_given_to_the_app_decide(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(model_uri=str(COMMITTED_MODEL), enable_simulation=False)
    with TestClient(create_app(settings)) as client:
        assert client.post("/simulate_predictions").status_code == 404


@pytest.mark.parametrize("name", ["passenger_age_distribution", "titanic_survival_probability"])
def test_simulated_passengers_are_counted_apart(name: str) -> None:
    with TestClient(create_app()) as client:
        assert client.post("/predict_single", json=PASSENGER).status_code == 200
        assert client.post("/predict_batch", json=[PASSENGER, SURVIVOR]).status_code == 200
        assert client.post("/simulate_predictions?num_executions=7").status_code == 200
        scraped = scrape(client)
    assert scraped.value(f"{name}_count", kind="user") == 3
    assert scraped.value(f"{name}_count", kind="simulation") == 7
    assert scraped.value(f"{name}_bucket", kind="simulation", le="+Inf") == 7
    assert scraped.label_values(f"{name}_count", "kind") == {"user", "simulation"}


# ------------------------------------------------------------------ probes in the alerts

# A pod starting up: its readiness probe answers 503 until the model is loaded, and its
# liveness probe is slow, while the users' requests all succeed, fast. No alert may fire.
JOB = 'job="fastapi_app", instance="a"'
PROBE_SERIES = {
    f'http_requests_total{{{JOB}, endpoint="/ready", status_code="503"}}': "0+12x20",
    f'http_errors_total{{{JOB}, endpoint="/ready"}}': "0+12x20",
    f'http_requests_total{{{JOB}, endpoint="/health", status_code="200"}}': "0+6x20",
    f'http_requests_total{{{JOB}, endpoint="/predict_single", status_code="200"}}': "0+30x20",
    f'http_request_duration_seconds_bucket{{{JOB}, endpoint="/health", le="0.5"}}': "0x20",
    f'http_request_duration_seconds_bucket{{{JOB}, endpoint="/health", le="+Inf"}}': "0+100x20",
    f'http_request_duration_seconds_bucket{{{JOB}, endpoint="/predict_single", le="0.5"}}': (
        "0+30x20"
    ),
    f'http_request_duration_seconds_bucket{{{JOB}, endpoint="/predict_single", le="+Inf"}}': (
        "0+30x20"
    ),
}


def test_probes_neither_fire_nor_hide_the_user_alerts(tmp_path: Path) -> None:
    """Readiness 503s while the model loads and slow liveness answers are not the users'."""
    quiet: list[dict[str, object]] = [
        {"eval_time": "20m", "alertname": name, "exp_alerts": []}
        for name in ("TitanicApiHighErrorRatio", "TitanicApiHighLatencyP95")
    ]
    series = [{"series": name, "values": values} for name, values in PROBE_SERIES.items()]
    tests = tmp_path / "probes_test.yml"
    rules = str(REPO_ROOT / "prometheus_rules.yml")
    test = {"interval": "1m", "input_series": series, "alert_rule_test": quiet}
    tests.write_text(yaml.safe_dump({"rule_files": [rules], "tests": [test]}))
    result = promtool("test", "rules", str(tests))
    assert result.returncode == 0, result.stdout + result.stderr


PROBES = 'endpoint!~"/health|/ready"'


def test_the_user_traffic_alerts_leave_the_probes_out() -> None:
    rules = yaml.safe_load((REPO_ROOT / "prometheus_rules.yml").read_text())
    alerts = {
        rule["alert"]: rule["expr"]
        for group in rules["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }
    for name in ("TitanicApiHighErrorRatio", "TitanicApiHighLatencyP95"):
        assert alerts[name].count("http_") == alerts[name].count(PROBES), name

"""What titanic_api adds over the final lesson: readiness, bounded labels, OpenMetrics,
documented statuses, settings, and a start-up that survives a damaged prediction log."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from tests.support.metrics import Metrics, scrape
from tests.support.monitoring import read_log
from titanic_api.app import create_app
from titanic_api.metrics import METHODS, OTHER_METHOD
from titanic_api.prediction_log import last_execute
from titanic_api.settings import COMMITTED_MODEL, LOG_DIR, Settings
from tools.examples import PASSENGER

NOT_LOADED = "The model is not loaded: see the server log for why."


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(create_app()) as test_client:
        yield test_client


# ---------------------------------------------------------------- /ready and /health


def test_ready_with_the_model(client: TestClient) -> None:
    response = client.get("/ready")
    assert (response.status_code, response.json()) == (
        200,
        {"ready": True, "detail": "The model is loaded."},
    )


def test_not_ready_before_the_model_is_loaded() -> None:
    """Without the lifespan (the model is loaded there) /ready says 503, /health 200."""
    client = TestClient(create_app())  # not entered: the lifespan has not run
    ready = client.get("/ready")
    assert (ready.status_code, ready.json()) == (503, {"ready": False, "detail": NOT_LOADED})
    health = client.get("/health")
    assert (health.status_code, health.json()["status"]) == (200, "degraded")


def test_not_ready_whenever_predictions_answer_503(broken_model: Path) -> None:
    with TestClient(create_app()) as client:
        assert client.post("/predict_single", json=PASSENGER).status_code == 503
        ready = client.get("/ready")
        health = client.get("/health")
    assert (ready.status_code, ready.json()) == (503, {"ready": False, "detail": NOT_LOADED})
    assert (health.status_code, health.json()["status"]) == (200, "degraded")


# ---------------------------------------------------------------- bounded labels


def test_invented_methods_share_one_label_value(client: TestClient) -> None:
    invented = [f"X-METHOD-{i}" for i in range(25)] + ["PROPFIND", "BREW"]
    for method in invented:
        assert client.request(method, "/predict_single").status_code == 405
    client.request("DELETE", "/")  # a standard method keeps its own name
    scraped = scrape(client)
    seen = scraped.label_values("http_requests_total", "method")
    assert seen <= METHODS | {OTHER_METHOD}
    labels = {"endpoint": "/predict_single", "status_code": "405"}
    assert scraped.value("http_requests_total", method=OTHER_METHOD, **labels) == len(invented)
    assert (
        scraped.value("http_requests_total", method="DELETE", endpoint="/", status_code="405") == 1
    )


# ---------------------------------------------------------------- /metrics formats


def test_metrics_in_openmetrics_when_asked(client: TestClient) -> None:
    client.post("/predict_single", json=PASSENGER)
    response = client.get("/metrics", headers={"Accept": "application/openmetrics-text"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert response.text.endswith("# EOF\n")
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    [sample] = [s for s in families["titanic_predictions"].samples if s.name.endswith("_total")]
    assert sample.value == 1
    assert families["passenger_age_distribution"].type == "histogram"


@pytest.mark.parametrize("accept", [None, "text/plain", "*/*", "application/json"])
def test_metrics_in_classic_text_otherwise(client: TestClient, accept: str | None) -> None:
    headers = {"Accept": accept} if accept else {}
    response = client.get("/metrics", headers=headers)
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert "# EOF" not in response.text
    assert Metrics.parse(response.text).value("titanic_predictions_total") == 0


# ---------------------------------------------------------------- every status documented

DOCUMENTED = {
    ("/", "get"): {"200", "413"},
    ("/health", "get"): {"200", "413"},
    ("/ready", "get"): {"200", "413", "503"},
    ("/predict_single", "post"): {"200", "400", "413", "422", "503"},
    ("/predict_batch", "post"): {"200", "400", "413", "422", "503"},
    ("/simulate_predictions", "post"): {"200", "413", "422", "503"},
    ("/feedback", "post"): {"200", "400", "413", "422", "503"},
}


def test_every_status_is_in_the_openapi_document(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    found = {
        (path, method): set(operation["responses"])
        for path, operations in paths.items()
        for method, operation in operations.items()
    }
    assert found == DOCUMENTED


@pytest.mark.parametrize(("method", "path"), DOCUMENTED)
def test_any_route_answers_413_to_an_announced_huge_body(
    client: TestClient, method: str, path: str
) -> None:
    """The body limit runs before routing: any request may get it, so every route says so."""
    response = client.request(method, path, content=b" " * 1_048_577)
    assert (response.status_code, response.text) == (413, "Content Too Large")


@pytest.mark.parametrize("path", ["/predict_single", "/predict_batch"])
def test_the_documented_statuses_are_real(
    client: TestClient, path: str, broken_model: Path
) -> None:
    """Each documented error status, provoked: 400, 413 and 422 here, 503 below."""
    headers = {"content-type": "application/json"}
    deep = client.post(path, content=b"[" * 100_000, headers=headers)
    assert (deep.status_code, deep.json()) == (
        400,
        {"detail": "There was an error parsing the body"},
    )
    huge = client.post(path, content=b" " * 1_048_577, headers=headers)
    assert (huge.status_code, huge.text) == (413, "Content Too Large")
    assert client.post(path, json={"nope": 1}).status_code == 422
    with TestClient(create_app()) as unloaded:  # broken_model: no model to load
        response = unloaded.post(path, json=PASSENGER if path.endswith("single") else [PASSENGER])
    assert (response.status_code, response.json()) == (503, {"detail": NOT_LOADED})


# ---------------------------------------------------------------- settings


def test_settings_defaults() -> None:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.model_uri == str(COMMITTED_MODEL)
    assert settings.prediction_log_path is None
    assert settings.multiproc_dir is None
    assert COMMITTED_MODEL.parents[4] / "logs" == LOG_DIR


def test_settings_read_the_lessons_environment_variables(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TITANIC_MODEL_URI", "models:/titanic/1")
    monkeypatch.setenv("PREDICTION_LOG_PATH", str(tmp_path / "a.jsonl"))
    monkeypatch.setenv("PREDICTION_LOG_DIR", str(tmp_path))
    settings = Settings()
    assert (settings.model_uri, settings.prediction_log_path, settings.prediction_log_dir) == (
        "models:/titanic/1",
        tmp_path / "a.jsonl",
        tmp_path,
    )


def test_an_app_built_with_other_settings_uses_them(tmp_path: Path) -> None:
    log = tmp_path / "chosen.jsonl"
    settings = Settings(model_uri=str(COMMITTED_MODEL), prediction_log_path=log)
    with TestClient(create_app(settings)) as client:
        assert client.post("/predict_single", json=PASSENGER).status_code == 200
    assert [line["execute"] for line in read_log(log)] == [1]


# ---------------------------------------------------------------- a damaged prediction log

WHOLE = json.dumps({"execute": 7, "prediction": 0}) + "\n"
DAMAGED_LAST_LINES = {
    "not JSON": "this is not JSON\n",
    "no execute": '{"prediction": 0}\n',
    "execute is text": '{"execute": "seven"}\n',
    "execute is negative": '{"execute": -3}\n',
    "execute is true": '{"execute": true}\n',
    "execute is a fraction": '{"execute": 7.5}\n',
    "a list": "[7]\n",
    "nested deeper than Python can parse": "[" * 100_000 + "]" * 100_000 + "\n",
}


@pytest.mark.parametrize("last", DAMAGED_LAST_LINES.values(), ids=DAMAGED_LAST_LINES.keys())
def test_a_damaged_last_line_never_stops_start_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, last: str
) -> None:
    """The service starts, predicts, and numbers on after the count of whole lines."""
    log = tmp_path / "predictions.jsonl"
    log.write_text(WHOLE + last)
    monkeypatch.setenv("PREDICTION_LOG_PATH", str(log))
    assert last_execute(log) == 2
    with TestClient(create_app()) as client:
        assert client.get("/ready").status_code == 200
        assert client.post("/predict_single", json=PASSENGER).status_code == 200
    lines = log.read_text().splitlines()
    assert lines[:2] == [WHOLE.rstrip("\n"), last.rstrip("\n")]
    assert json.loads(lines[2])["execute"] == 3


def test_numbering_goes_on_from_the_line_count_as_in_the_final_lesson(tmp_path: Path) -> None:
    """``execute`` is a line's number in its file: what the lines say is never parsed."""
    log = tmp_path / "predictions.jsonl"
    log.write_text(WHOLE + WHOLE)
    assert last_execute(log) == 2

"""Lesson P04: simulated traffic, plus everything the monitoring lessons built so far."""

import asyncio
import json
import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType

import pytest
import requests
from fastapi.testclient import TestClient
from prometheus_client import generate_latest
from starlette.types import Message

from tests.helpers import PASSENGER, SURVIVOR, Metrics, scrape_until
from tests.monitoring_contracts import (
    P04Contract,
    log_files,
    predict_single,
    read_log,
    the_log,
)
from tools.servers import REPO_ROOT, LessonServer

LESSON = "prometheus_04_multi_execute_app"
BODY = json.dumps(PASSENGER)
JSON = {"content-type": "application/json"}


class TestLesson(P04Contract):
    """Everything this stage promises: every earlier stage's tests, plus its own."""


def registry_now(lesson: ModuleType) -> Metrics:
    """The lesson's metrics read straight from its registry (no request, so none counted)."""
    return Metrics.parse(generate_latest(lesson.registry).decode())


def log_length(log_dir: Path) -> int:
    """Lines in this test's prediction log, 0 before the log file exists."""
    return len(read_log(the_log(log_dir))) if log_files(log_dir) else 0


def test_the_answer_is_sent_before_the_metrics_and_the_log(
    client: TestClient, lesson: ModuleType, log_dir: Path
) -> None:
    """The bookkeeping runs as a background task: after the last byte of the answer."""
    body = json.dumps([PASSENGER, SURVIVOR, PASSENGER]).encode()
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/predict_batch",
        "raw_path": b"/predict_batch",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"application/json")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
    }
    before = registry_now(lesson)
    lines_before = log_length(log_dir)
    sent: list[Message] = []
    at_answer: dict[str, float] = {}

    async def receive() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            now = registry_now(lesson)
            at_answer["predictions"] = now.value("titanic_predictions_total")
            at_answer["ages"] = now.value("passenger_age_distribution_count")
            at_answer["lines"] = log_length(log_dir)

    async def serve_one_request() -> None:
        # The lifespan already ran (the client fixture): call the app as a server would.
        await client.app(scope, receive, send)

    asyncio.run(serve_one_request())

    assert sent[0]["status"] == 200
    assert json.loads(b"".join(m.get("body", b"") for m in sent[1:])) == {
        "batch_predictions": [
            {"passenger_index": 0, "prediction": 0, "survival_status": "Not Survived"},
            {"passenger_index": 1, "prediction": 1, "survival_status": "Survived"},
            {"passenger_index": 2, "prediction": 0, "survival_status": "Not Survived"},
        ]
    }
    predictions_before = before.value("titanic_predictions_total")
    ages_before = before.value("passenger_age_distribution_count")
    assert at_answer == {
        "predictions": predictions_before,
        "ages": ages_before,
        "lines": lines_before,
    }
    after = registry_now(lesson)
    assert after.value("titanic_predictions_total") == predictions_before + 3
    assert after.value("passenger_age_distribution_count") == ages_before + 3
    assert log_length(log_dir) == lines_before + 3


def test_latency_is_the_clients_wait_not_the_bookkeeping(
    client: TestClient, lesson: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Slow bookkeeping (1 s) is not in the request's latency, which ends with the answer."""
    recorded: list[int] = []

    def slow_record(*args: object) -> None:
        time.sleep(1.0)
        recorded.append(len(args))

    monkeypatch.setattr(lesson, "record", slow_record)
    before = registry_now(lesson)
    response = client.post("/predict_single", json=PASSENGER)
    assert response.status_code == 200
    assert recorded == [5]  # the background task ran, before the TestClient returned
    after = registry_now(lesson)
    labels = {"endpoint": "/predict_single"}
    count = "http_request_duration_seconds_count"
    seconds = "http_request_duration_seconds_sum"
    assert after.value(count, **labels) - before.value(count, **labels) == 1
    assert after.value(seconds, **labels) - before.value(seconds, **labels) < 1.0


def test_batch_answer_is_json_that_matches_its_documented_model(
    client: TestClient, lesson: ModuleType
) -> None:
    """The ready Response skips FastAPI's check, so the test does it: same shape as documented."""
    response = client.post("/predict_batch", json=[PASSENGER, SURVIVOR])
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    answer = lesson.BatchResponse.model_validate_json(response.content)
    assert answer.model_dump() == response.json()
    schema = client.get("/openapi.json").json()
    ok = schema["paths"]["/predict_batch"]["post"]["responses"]["200"]
    assert ok["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/BatchResponse"
    }


def monitoring_section() -> str:
    readme = (REPO_ROOT / "docs" / "metrics.md").read_text(encoding="utf-8")  # moved in issue 16
    return readme[
        readme.index("<!-- BEGIN monitoring -->") : readme.index("<!-- END monitoring -->")
    ]


@pytest.mark.live
def test_real_server_under_concurrent_load(log_dir: Path) -> None:
    """uvicorn, 8 client threads x 25 requests: exact counts, and a gap-free log."""
    threads, each = 8, 25
    with LessonServer(LESSON, env={"PREDICTION_LOG_DIR": str(log_dir)}) as server:

        def work(thread: int) -> int:
            passengers = 0
            with requests.Session() as session:
                for i in range(each):
                    if i % 5 == 4:
                        url = f"{server.url}/simulate_predictions?num_executions=3&seed={i}"
                        response = session.post(url, timeout=30)
                        passengers += 3
                    else:
                        url = f"{server.url}/predict_single"
                        response = session.post(url, data=BODY, headers=JSON, timeout=30)
                        passengers += 1
                    assert response.status_code == 200, response.text
            return passengers

        with ThreadPoolExecutor(threads) as pool:
            passengers = sum(pool.map(work, range(threads)))
        metrics = scrape_until(
            server.url, lambda now: now.value("titanic_predictions_total") == passengers
        )
    # A fresh process: the values are absolute, not deltas.
    assert passengers == 8 * (20 + 5 * 3)
    assert metrics.value("titanic_predictions_total") == passengers
    assert metrics.value("prediction_type_total", type="single") == 8 * 20
    assert metrics.value("prediction_type_total", type="simulation") == 8 * 5
    labels = {"method": "POST", "status_code": "200"}
    assert metrics.value("http_requests_total", endpoint="/predict_single", **labels) == 160
    assert metrics.value("http_requests_total", endpoint="/simulate_predictions", **labels) == 40
    assert metrics.value("http_requests_in_progress") == 0
    assert metrics.value("prediction_log_errors_total") == 0
    lines = read_log(the_log(log_dir))
    assert [line["execute"] for line in lines] == list(range(1, passengers + 1))


def test_readme_metric_table_is_complete_and_true(metrics: Callable[[], Metrics]) -> None:
    """Each row names samples P04 really shows, of the type it says; every family has a row."""
    scraped = metrics()
    suffixes = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_sum", "_count")}
    documented: set[str] = set()
    for row in monitoring_section().splitlines():
        if not row.startswith("| `"):
            continue
        names_cell, types_cell = row.split("|")[1:3]
        names = re.findall(r"`(\w+)`", names_cell)
        kinds = [kind.strip() for kind in types_cell.split(",")]
        if len(kinds) == 1:  # one type for all the row's samples (a histogram's three)
            kinds *= len(names)
        for name, kind in zip(names, kinds, strict=True):
            [family] = [name.removesuffix(s) for s in suffixes[kind] if name.endswith(s)]
            assert scraped.types.get(family) == kind, f"README: {name} is not a {kind} of P04"
            documented.add(family)
    exposed = {name for name in scraped.types if not name.endswith("_created")}
    missing = {name for name in exposed - documented if not name.startswith("process_")}
    assert not missing, f"metrics of the final lesson missing from the README table: {missing}"


def test_readme_sample_log_line_is_what_the_lesson_writes(
    client: TestClient, log_dir: Path
) -> None:
    [sample] = re.findall(r"```json\n(.*?)\n```", monitoring_section(), flags=re.DOTALL)
    predict_single(client, PASSENGER)
    written = the_log(log_dir).read_text().rstrip("\n")
    [line] = read_log(the_log(log_dir))
    # Only the time and the clone's path differ from one run to the next.
    documented = json.loads(sample)
    for key in ("execution_time", "model_uri"):
        sample = sample.replace(json.dumps(documented[key]), json.dumps(line[key]))
    assert sample == written

"""Bounded work, faults and load, for every lesson that validates its input.

test_robustness.py's promise holds here too: too much (bodies, batches, simulations),
broken model files, an unwritable log and sixteen clients at once on a real server
each get a 2xx or a named 4xx, never a 5xx, and the lesson keeps serving.
"""

from __future__ import annotations

import importlib
import json
import shutil
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx2
import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from tests.lessons.robustness import (
    FIELDS,
    FUZZ,
    JSON,
    MAX_BATCH,
    MAX_SIMULATIONS,
    by_lesson,
    check_answer,
    json_body_paths,
    lessons,
    nested,
    still_serving,
)
from tests.support.lessons import BATCH_LESSONS, FINAL_LESSON, LOGGING_LESSONS, SIMULATION_LESSONS
from tests.support.metrics import Metrics, scrape
from tests.support.monitoring import read_log, total
from tests.support.subject import Subject
from tools.examples import CHILD, PASSENGER, SURVIVOR
from tools.servers import LessonServer

# ---------------------------------------------------------------- bounded work


@by_lesson
def test_bodies_over_one_mebibyte_get_413(client: TestClient) -> None:
    """Announced or streamed, a 4 MiB body is refused, and the server carries on."""
    four_mib = b" " * (4 * 1024 * 1024)

    def stream() -> Iterator[bytes]:
        for _ in range(64):  # 64 KiB chunks, no Content-Length: refused as it arrives
            yield four_mib[: 64 * 1024]

    for path in json_body_paths(client):
        announced = client.post(path, content=four_mib, headers=JSON)
        assert announced.status_code == 413
        assert announced.text == "Content Too Large"  # refused before reading: plain text
        streamed = client.post(path, content=stream(), headers=JSON)
        assert streamed.status_code == 413
        assert streamed.json() == {"detail": "Content Too Large"}
    still_serving(client)


@lessons(BATCH_LESSONS)
def test_batch_over_the_limit_gets_422(client: TestClient) -> None:
    fits = client.post("/predict_batch", json=[PASSENGER] * MAX_BATCH)
    assert fits.status_code == 200
    assert len(fits.json()["batch_predictions"]) == MAX_BATCH
    response = client.post("/predict_batch", json=[PASSENGER] * (MAX_BATCH + 1))
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert (error["type"], error["loc"]) == ("too_long", ["body"])


@lessons(BATCH_LESSONS)
def test_error_answers_grow_at_most_eightfold(client: TestClient) -> None:
    """The 422 echoes the input once per error, and a passenger missing all seven fields
    has eight errors: an answer is at most about 8 times the 1 MiB a body may have.
    Bounded, because the body is; worth knowing before raising the limit."""
    one_blob = json.dumps({"x": "a" * 1_000_000})
    many_blobs = json.dumps([{"x": "a" * 950}] * MAX_BATCH)
    for path, body in (("/predict_single", one_blob), ("/predict_batch", many_blobs)):
        response = client.post(path, content=body, headers=JSON)
        assert response.status_code == 422
        assert len(response.content) < 9 * len(body)


ODD_COUNTS = [
    "",
    "abc",
    "0",
    "-1",
    "100",
    "101",
    "1e2",
    "1.0",
    "10.5",
    "0x10",
    "\uff11\uff10",
    "+5",
    " 5",
    "5 ",
    "1_0",
    "NaN",
    "inf",
    "9" * 5000,
    "\x00",
    "\ud800",
]


@lessons(SIMULATION_LESSONS)
def test_simulation_count_is_bounded_whatever_the_query(client: TestClient) -> None:
    """Odd query strings for num_executions and seed: at most 100 passengers, or a 422."""
    texts = st.one_of(
        st.sampled_from(ODD_COUNTS), st.integers(-(10**20), 10**20).map(str), st.text(max_size=6)
    )
    names = st.sampled_from(["num_executions", "seed", "NUM_EXECUTIONS", "num_executions[]"])

    @FUZZ
    @given(query=st.lists(st.tuples(names, texts), max_size=3))
    def post(query: list[tuple[str, str]]) -> None:
        encoded = "&".join(
            f"{quote(name)}={quote(value, errors='surrogatepass')}" for name, value in query
        )
        response = client.post(f"/simulate_predictions?{encoded}")
        check_answer(response)
        if response.status_code == 200:
            body = response.json()
            assert 1 <= body["num_executions"] == len(body["predictions"]) <= MAX_SIMULATIONS
        else:
            assert response.status_code == 422
            assert {error["loc"][1] for error in response.json()["detail"]} <= {
                "num_executions",
                "seed",
            }

    post()
    assert client.post("/simulate_predictions?num_executions=101").status_code == 422
    assert len(client.post("/simulate_predictions?num_executions=100").json()["predictions"]) == 100
    still_serving(client)


# ---------------------------------------------------------------- faults


def corrupt_model_file(folder: Path) -> None:
    (folder / "model.skops").write_bytes(b"not a model \x00\xff" * 10)


def corrupt_mlmodel(folder: Path) -> None:
    (folder / "MLmodel").write_text("flavors: [this is not\n  valid: yaml\n")


@pytest.fixture(params=[corrupt_model_file, corrupt_mlmodel], ids=["model-file", "MLmodel"])
def corrupt_model(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """A copy of the committed model folder with one file replaced by garbage."""
    folder = tmp_path / "corrupt-model"
    shutil.copytree(importlib.import_module(f"lessons.{FINAL_LESSON}").COMMITTED_MODEL, folder)
    request.param(folder)
    monkeypatch.setenv("TITANIC_MODEL_URI", str(folder))
    return folder


def prediction_requests(client: TestClient) -> list[httpx2.Response]:
    """One request to each prediction endpoint the lesson has."""
    paths = client.get("/openapi.json").json()["paths"]
    answers = [client.post("/predict_single", json=PASSENGER)]
    if "/predict_batch" in paths:
        answers.append(client.post("/predict_batch", json=[PASSENGER, SURVIVOR]))
    if "/simulate_predictions" in paths:
        answers.append(client.post("/simulate_predictions?num_executions=3"))
    return answers


@by_lesson
def test_unreadable_model_starts_degraded_and_answers_503(
    subject: Subject, corrupt_model: Path, server_log: pytest.LogCaptureFixture
) -> None:
    """A model folder that exists but cannot be loaded: up, degraded, 503, and the log says why."""
    with TestClient(subject.app) as client:
        health = client.get("/health")
        answers = prediction_requests(client)
    assert health.status_code == 200
    assert health.json()["status"] == "degraded"
    assert health.json()["dependencies"]["model"] == "not loaded"
    for answer in answers:
        assert answer.status_code == 503
        assert answer.json() == {"detail": "The model is not loaded: see the server log for why."}
    assert f"Could not load the model from {corrupt_model}" in server_log.text


def under_a_file(tmp_path: Path) -> dict[str, str]:
    """A log folder that cannot exist: its parent is a regular file (works as root too)."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder\n")
    return {"PREDICTION_LOG_DIR": str(blocker / "logs")}


LOG_FAULTS: dict[str, Callable[[Path], dict[str, str]]] = {
    "folder-under-a-file": under_a_file,
    "disk-full": lambda _: {"PREDICTION_LOG_PATH": "/dev/full"},  # every write: ENOSPC
}


@lessons(LOGGING_LESSONS)
@pytest.mark.parametrize("fault", list(LOG_FAULTS))
def test_log_failure_still_predicts_and_is_counted(
    subject: Subject,
    fault: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    server_log: pytest.LogCaptureFixture,
) -> None:
    if fault == "disk-full" and not Path("/dev/full").exists():
        pytest.skip("no /dev/full on this system")
    for name, value in LOG_FAULTS[fault](tmp_path).items():
        monkeypatch.setenv(name, value)
    with TestClient(subject.app) as client:
        before = Metrics.parse(client.get("/metrics").text)
        answers = prediction_requests(client)
        after = Metrics.parse(client.get("/metrics").text)
    assert [answer.status_code for answer in answers] == [200] * len(answers)
    passengers = after.value("titanic_predictions_total") - before.value(
        "titanic_predictions_total"
    )
    assert passengers == 1 + 2 + (3 if len(answers) == 3 else 0)
    errors = after.value("prediction_log_errors_total") - before.value(
        "prediction_log_errors_total"
    )
    assert errors == passengers
    assert "Could not write 1 predictions to the log" in server_log.text
    assert "Could not write 2 predictions to the log" in server_log.text
    if fault == "folder-under-a-file":
        assert "Cannot open the prediction log" in server_log.text


# ---------------------------------------------------------------- load, on a real server

LOAD_CLIENTS = 16
REQUESTS_PER_CLIENT = 12  # a fixed amount of work, however fast or busy the machine
PATHS = {
    "single": "/predict_single",
    "batch": "/predict_batch",
    "simulation": "/simulate_predictions",
}


def passenger_key(kind: str, passenger: dict[str, Any], prediction: int) -> str:
    """What identifies one logged prediction: its kind, its input and its answer."""
    return json.dumps(
        [kind, {name: passenger[name] for name in FIELDS}, prediction], sort_keys=True
    )


def one_request(session: httpx2.Client, url: str, kind: str, tag: float) -> list[str]:
    """Send one request of this kind; the keys of the predictions it answered."""
    if kind == "simulation":
        response = session.post(f"{url}/simulate_predictions?num_executions=4", timeout=30)
        assert response.status_code == 200, response.text
        return [
            passenger_key(kind, item["passenger"], item["prediction"])
            for item in response.json()["predictions"]
        ]
    # The age tags the request, so its log lines can be told apart from all others.
    passengers = [{**passenger, "Age": tag} for passenger in (PASSENGER, SURVIVOR, CHILD)]
    if kind == "single":
        passengers = passengers[(int(tag * 1000)) % 3 :][:1]
        response = session.post(
            url + "/predict_single", content=json.dumps(passengers[0]), headers=JSON, timeout=30
        )
        assert response.status_code == 200, response.text
        predictions = [response.json()["prediction"]]
    else:
        response = session.post(
            url + "/predict_batch", content=json.dumps(passengers), headers=JSON, timeout=30
        )
        assert response.status_code == 200, response.text
        predictions = [item["prediction"] for item in response.json()["batch_predictions"]]
    return [passenger_key(kind, p, y) for p, y in zip(passengers, predictions, strict=True)]


@pytest.mark.live
@pytest.mark.parametrize("lesson_name", LOGGING_LESSONS)
def test_sixteen_clients_are_all_served_logged_once_and_counted(
    lesson_name: str, log_dir: Path
) -> None:
    """16 clients at once, 12 requests each: every one served, logged once and counted."""
    kinds = [kind for kind in PATHS if kind != "simulation" or lesson_name == FINAL_LESSON]
    with LessonServer(lesson_name, env={"PREDICTION_LOG_DIR": str(log_dir)}) as server:

        def client(number: int) -> list[tuple[str, list[str]]]:
            done = []
            with httpx2.Client() as session:
                for i in range(REQUESTS_PER_CLIENT):
                    kind = kinds[(number + i) % len(kinds)]
                    tag = 1 + number * 5 + i / 1000  # unique per request, and a valid age
                    done.append((kind, one_request(session, server.url, kind, tag)))
            return done

        with ThreadPoolExecutor(LOAD_CLIENTS) as pool:
            served = [request for done in pool.map(client, range(LOAD_CLIENTS)) for request in done]
        answered = Counter(key for _, keys in served for key in keys)
        metrics = scrape(server.url)
        after_abuse = abuse_and_check_still_serving(server.url)
    requests_of = Counter(kind for kind, _ in served)
    assert len(served) == LOAD_CLIENTS * REQUESTS_PER_CLIENT

    # Logged exactly once: one whole line per prediction answered, numbered 1, 2, 3 ...
    [log] = log_dir.glob("predictions_*.jsonl")
    lines = read_log(log)
    logged = Counter(
        passenger_key(line["prediction_type"], line, line["prediction"]) for line in lines
    )
    assert logged == answered + Counter(after_abuse)
    assert [line["execute"] for line in lines] == list(range(1, logged.total() + 1))

    # Counted exactly: the metrics (read before the abuse) equal what the clients were served.
    survivors = sum(json.loads(key)[2] for key in answered.elements())
    assert metrics.value("titanic_predictions_total") == answered.total()
    assert (
        metrics.value("titanic_predictions_output_total", predicted_class="Survived") == survivors
    )
    # Summed over every label set: the package adds a `kind` label, the lessons have none.
    assert total(metrics, "passenger_age_distribution_count") == answered.total()
    for kind in kinds:
        assert metrics.value("prediction_type_total", type=kind) == requests_of[kind]
        served_200 = {"method": "POST", "endpoint": PATHS[kind], "status_code": "200"}
        assert metrics.value("http_requests_total", **served_200) == requests_of[kind]
    assert metrics.value("http_requests_in_progress") == 0
    assert metrics.value("prediction_log_errors_total") == 0
    assert total(metrics, "http_errors_total") == 0


def abuse_and_check_still_serving(url: str) -> list[str]:
    """Oversized and too deeply nested bodies against the real server: all refused, no 5xx,
    memory flat, and a valid request served afterwards (its key returned)."""

    def stream() -> Iterator[bytes]:
        for _ in range(128):  # 8 MiB in 64 KiB chunks, without a Content-Length
            yield b" " * (64 * 1024)

    before = scrape(url)
    for _ in range(3):
        announced = httpx2.post(
            url + "/predict_batch", content=b" " * (8 << 20), headers=JSON, timeout=30
        )
        assert (announced.status_code, announced.text) == (413, "Content Too Large")
        streamed = httpx2.post(url + "/predict_batch", content=stream(), headers=JSON, timeout=30)
        assert streamed.status_code == 413
        assert streamed.json() == {"detail": "Content Too Large"}
    limit = sys.getrecursionlimit()  # the server's Python has the same default
    for depth in range(limit - 60, limit + 5):
        response = httpx2.post(
            url + "/predict_single", content=nested(depth), headers=JSON, timeout=30
        )
        assert response.status_code in (400, 422), response.text[:300]
    response = httpx2.post(
        url + "/predict_single", content=json.dumps(SURVIVOR), headers=JSON, timeout=10
    )
    assert response.json() == {"prediction": 1, "survival_status": "Survived"}
    after = scrape(url)
    grown = after.value("process_resident_memory_bytes") - before.value(
        "process_resident_memory_bytes"
    )
    assert grown < 64 * 2**20, f"memory grew by {grown / 2**20:.0f} MiB"
    assert total(after, "http_errors_total") == 0
    return [passenger_key("single", SURVIVOR, 1)]


@pytest.mark.live
def test_real_server_starts_with_a_corrupt_model_and_no_log_folder(tmp_path: Path) -> None:
    """uvicorn itself: the app starts anyway, says why in its log, and answers 503."""
    model = tmp_path / "corrupt-model"
    shutil.copytree(importlib.import_module(f"lessons.{FINAL_LESSON}").COMMITTED_MODEL, model)
    corrupt_model_file(model)
    output = tmp_path / "uvicorn.log"
    env = {"TITANIC_MODEL_URI": str(model), **under_a_file(tmp_path)}
    with LessonServer(FINAL_LESSON, env=env, log_path=output) as server:
        health = httpx2.get(server.url + "/health", timeout=10)
        answer = httpx2.post(
            server.url + "/predict_single", content=json.dumps(PASSENGER), headers=JSON, timeout=10
        )
    assert health.json()["status"] == "degraded"
    assert health.json()["dependencies"]["model"] == "not loaded"
    assert answer.status_code == 503
    log = output.read_text()
    assert f"Could not load the model from {model}" in log
    assert "Cannot open the prediction log" in log

"""SIGTERM under load: clean answers, a whole log, and a next start that carries on.

What an orchestrator (systemd, Docker, Kubernetes) does to stop a service is send
SIGTERM; uvicorn then stops accepting connections, lets the requests in flight
finish, and runs the lifespan's shutdown, which closes the prediction log. A
client may see its connection refused or closed (fine: it can retry), never a
5xx, and every line in the log is whole. The final lesson and the package it
became, ``titanic_api``, are both held to it.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path

import httpx2
import pytest

from tests.support.lessons import FINAL_LESSON
from tests.support.monitoring import read_log
from tests.support.package import PackageServer, package_subject
from tools.examples import PASSENGER, SURVIVOR
from tools.servers import LessonServer, ServerProcess

CLIENTS = 8
BATCH = [PASSENGER, SURVIVOR] * 10  # 20 lines in one write: a long write to interrupt
MAX_REQUESTS_PER_CLIENT = 2_000  # a bound on each client's loop
BEFORE_SIGTERM = 100  # answers to wait for (however long they take) before the signal
STARTING_TIMEOUT = 120  # seconds: only a guard against a server that answers nothing
REFUSED = "connection refused or closed"
JSON = {"content-type": "application/json"}


def start(app: str, env: dict[str, str], output: Path | None = None) -> ServerProcess:
    """The final lesson, or the package, under uvicorn on 127.0.0.1 and a free port."""
    if app == "titanic_api":
        return PackageServer("uvicorn", env=env, log_path=output)
    return LessonServer(FINAL_LESSON, env=env, log_path=output)


def sigterm_under_load(app: str, env: dict[str, str], output: Path) -> list[tuple[object, int]]:
    """Start the app, load it from 8 clients, SIGTERM it mid-load.

    Returns every outcome: (status code or REFUSED, passengers answered).
    uvicorn's own output goes to ``output``.
    """
    outcomes: list[tuple[object, int]] = []
    stop = threading.Event()
    with start(app, env, output) as server:

        def client(number: int) -> None:
            with httpx2.Client() as session:
                for i in range(MAX_REQUESTS_PER_CLIENT):
                    if stop.is_set():
                        return
                    single = (number + i) % 2 == 0
                    path, body = (
                        ("/predict_single", PASSENGER) if single else ("/predict_batch", BATCH)
                    )
                    try:
                        response = session.post(
                            server.url + path, content=json.dumps(body), headers=JSON, timeout=30
                        )
                    except httpx2.TransportError:
                        outcomes.append((REFUSED, 0))
                        return  # the server is gone; a real client would retry elsewhere
                    answered = 1 if single else len(response.json().get("batch_predictions", []))
                    outcomes.append((response.status_code, answered))

        threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + STARTING_TIMEOUT
        while len(outcomes) < BEFORE_SIGTERM and time.monotonic() < deadline:
            time.sleep(0.01)  # until the load is well under way: a count, not a time
        exit_code = server.stop(signal.SIGTERM)
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    # uvicorn shuts down gracefully, then re-raises the signal so that its parent
    # sees why it stopped: the exit status is "terminated by SIGTERM".
    assert exit_code == -signal.SIGTERM
    assert "Application shutdown complete." in output.read_text()
    return outcomes


def check_run(outcomes: list[tuple[object, int]], log: Path) -> int:
    """No 5xx, and a whole, gap-free log holding every answered passenger."""
    statuses = {status for status, _ in outcomes}
    assert statuses <= {200, REFUSED}, statuses
    assert sum(1 for status, _ in outcomes if status == 200) >= BEFORE_SIGTERM
    lines = read_log(log)
    numbers = [line["execute"] for line in lines]
    assert numbers == list(range(1, len(lines) + 1))
    answered = sum(passengers for _, passengers in outcomes)
    # A request can be logged and then lose its connection before the answer arrives.
    assert answered <= len(lines) <= answered + CLIENTS * len(BATCH)
    return len(lines)


@pytest.mark.live
@pytest.mark.parametrize("app", [FINAL_LESSON, "titanic_api"])
def test_sigterm_under_load_then_restart(app: str, log_dir: Path, tmp_path: Path) -> None:
    env = {"PREDICTION_LOG_DIR": str(log_dir)}

    # A first start, stopped under load.
    outcomes = sigterm_under_load(app, env, tmp_path / "first-start.log")
    [log] = log_dir.glob("*.jsonl")
    check_run(outcomes, log)
    first = log.read_bytes()

    # By default the next start writes a new file and leaves the old one as it was.
    outcomes = sigterm_under_load(app, env, tmp_path / "second-start.log")
    [second] = [path for path in log_dir.glob("*.jsonl") if path != log]
    lines = check_run(outcomes, second)
    assert log.read_bytes() == first

    # With PREDICTION_LOG_PATH the next start appends after the last whole line, even
    # if a killed server (SIGKILL, power cut) had left half a line at the end.
    with second.open("ab") as file:
        file.write(b'{"execute": 99999, "execution_ti')
    with start(app, {**env, "PREDICTION_LOG_PATH": str(second)}) as server:
        answer = httpx2.post(server.url + "/predict_single", json=SURVIVOR, timeout=30)
    # The final lesson's fields of the answer (the package adds a prediction id).
    added = package_subject().added_answer_fields if app == "titanic_api" else frozenset()
    assert {key: value for key, value in answer.json().items() if key not in added} == {
        "prediction": 1,
        "survival_status": "Survived",
    }
    appended = read_log(second)
    assert [line["execute"] for line in appended] == list(range(1, lines + 2))
    assert appended[-1]["Sex"] == "female"
    assert len(list(log_dir.glob("*.jsonl"))) == 2

"""titanic_api as real processes: server limits, gunicorn's workers, a clean stop.

Every server binds 127.0.0.1 on a free port and is stopped by its pid; every
loop is bounded.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx2
import pytest

from tests.support.metrics import scrape, scrape_until
from tests.support.monitoring import log_files
from tests.support.package import PackageServer, gunicorn_env
from tools.examples import PASSENGER
from tools.servers import HOST, answers_ok

pytestmark = [pytest.mark.live, pytest.mark.slow]
IDLE = 40  # idle connections opened, twice the concurrency limit below


def predict(url: str) -> int:
    """One prediction on a new connection, so that any worker may take it."""
    response = httpx2.post(f"{url}/predict_single", json=PASSENGER, timeout=30)
    assert response.status_code == 200, response.text
    return 1


def wait_for(condition: object, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_idle_connections_are_closed_and_cannot_exhaust_the_server(log_dir: Path) -> None:
    """Connections that never send a request are closed after the idle timeout.

    With uvicorn's own protocol they stay open for good: at the concurrency limit
    every request then gets 503, /health included, until the clients go away.
    """
    env = {
        "TITANIC_IDLE_TIMEOUT": "1",
        "TITANIC_LIMIT_CONCURRENCY": str(IDLE // 2),
        "PREDICTION_LOG_DIR": str(log_dir),
    }
    server = PackageServer("module", env=env)
    with server:
        idle = [socket.create_connection((HOST, server.port), timeout=10) for _ in range(IDLE)]
        try:
            for connection in idle:
                assert connection.recv(1) == b"", "the server closes an idle connection"
            assert httpx2.get(server.url + "/health", timeout=10).status_code == 200
        finally:
            for connection in idle:
                connection.close()


def test_sigterm_stops_cleanly_within_the_grace_period(tmp_path: Path, log_dir: Path) -> None:
    """uvicorn finishes its shutdown (the lifespan closes the log), then exits by the signal."""
    output = tmp_path / "server.log"
    server = PackageServer("module", env={"PREDICTION_LOG_DIR": str(log_dir)}, log_path=output)
    with server:
        predict(server.url)
        began = time.monotonic()
        returncode = server.stop(signal.SIGTERM, timeout=25)
    assert time.monotonic() - began < 20  # TITANIC_GRACEFUL_TIMEOUT, under Kubernetes' 30 s
    assert returncode in (0, -signal.SIGTERM)
    assert "Application shutdown complete." in output.read_text()
    [log] = log_files(log_dir)
    assert [json.loads(line)["execute"] for line in log.read_text().splitlines()] == [1]


def test_two_gunicorn_workers_count_every_request_once(tmp_path: Path, log_dir: Path) -> None:
    """Whichever worker answers a scrape, the counters are the sum over both."""
    env = gunicorn_env(tmp_path, 2, PREDICTION_LOG_DIR=str(log_dir))
    with PackageServer("gunicorn", env=env, log_path=tmp_path / "gunicorn.log") as server:
        wait_for(lambda: len(log_files(log_dir)) == 2)
        sent = 0
        with ThreadPoolExecutor(8) as pool:
            while sent < 400 and not all(p.stat().st_size for p in log_files(log_dir)):
                sent += sum(pool.map(predict, [server.url] * 8))
        assert all(p.stat().st_size for p in log_files(log_dir)), f"one worker served all {sent}"
        scrape_until(server.url, lambda now: now.value("titanic_predictions_total") == sent)
        for _ in range(6):
            metrics = scrape(server.url)
            assert metrics.value("titanic_predictions_total") == sent
            assert metrics.value("passenger_age_distribution_count", kind="user") == sent
            assert (
                metrics.value(
                    "http_requests_total",
                    method="POST",
                    endpoint="/predict_single",
                    status_code="200",
                )
                == sent
            )
            assert metrics.value("http_requests_in_progress") == 0
    lines = [json.loads(line) for p in log_files(log_dir) for line in p.read_text().splitlines()]
    assert len(lines) == sent


def test_a_killed_worker_leaves_the_gauges_and_the_counters_stay_exact(
    tmp_path: Path, log_dir: Path
) -> None:
    """Kill the worker mid-request: its in-progress request leaves the total, its counts stay."""
    env = gunicorn_env(tmp_path, 1, PREDICTION_LOG_DIR=str(log_dir))
    server = PackageServer("gunicorn", env=env, log_path=tmp_path / "gunicorn.log")
    with server:
        for _ in range(5):
            predict(server.url)
        scrape_until(server.url, lambda now: now.value("titanic_predictions_total") == 5)
        # A request in flight: its headers and the start of its body, never the rest.
        stuck = socket.create_connection((HOST, server.port), timeout=10)
        stuck.sendall(
            b"POST /predict_batch HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000\r\n\r\n["
        )
        scrape_until(server.url, lambda now: now.value("http_requests_in_progress") == 1)
        [worker] = server.workers()
        os.kill(worker, signal.SIGKILL)
        stuck.close()
        wait_for(lambda: server.workers() not in ([], [worker]))
        # The new worker loads the model first: until then a request may wait and time out.
        wait_for(lambda: answers_ok(server.url + "/ready", 10), timeout=120)
        after_restart = scrape(server.url)
        assert after_restart.value("http_requests_in_progress") == 0
        assert after_restart.value("titanic_predictions_total") == 5
        for _ in range(3):
            predict(server.url)
        final = scrape_until(server.url, lambda now: now.value("titanic_predictions_total") == 8)
    labels = {"method": "POST", "endpoint": "/predict_single", "status_code": "200"}
    assert final.value("http_requests_total", **labels) == 8
    assert final.value("passenger_age_distribution_count", kind="user") == 8
    assert final.value("http_requests_in_progress") == 0

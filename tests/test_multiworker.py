"""Scale-out on one machine: the final lesson under ``uvicorn --workers 2``.

Each worker is its own process with its own memory, so on its own each would
count only the requests it served. In prometheus_client's multiprocess mode
(``PROMETHEUS_MULTIPROC_DIR`` set to an empty folder before the start) every
worker writes its metric values to files there and /metrics adds them up. This
test starts two real workers and checks that whichever worker answers a scrape,
the counters equal the requests served by both; that multiprocess mode drops
what it documents (the process collector, the ``_created`` series); and that
each worker writes its own prediction log.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from tests.helpers import FINAL_LESSON, PASSENGER, scrape, scrape_until
from tools.servers import LessonServer, ServerProcess

pytestmark = [pytest.mark.live, pytest.mark.slow]

WORKERS = 2
AT_ONCE = 8  # requests in flight together, so that both workers get some
MAX_REQUESTS = 400


def log_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("predictions_*.jsonl"))


def wait_for_workers(folder: Path, server: ServerProcess, timeout: float = 60.0) -> None:
    """Each worker opens its own log once its model is loaded: wait for all of them."""
    deadline = time.monotonic() + timeout
    while len(log_files(folder)) < WORKERS:
        assert server.process is not None and server.process.poll() is None, "uvicorn exited"
        assert time.monotonic() < deadline, f"only {len(log_files(folder))} workers started"
        time.sleep(0.1)


def predict(url: str) -> int:
    """One prediction on a new connection (no session), so any worker may take it."""
    response = requests.post(
        f"{url}/predict_single",
        data=json.dumps(PASSENGER),
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return 1


def test_two_workers_count_every_request_once(tmp_path: Path, log_dir: Path) -> None:
    multiproc = tmp_path / "prometheus-multiproc"
    multiproc.mkdir()  # fresh and empty, as multiprocess mode requires
    env = {"PROMETHEUS_MULTIPROC_DIR": str(multiproc), "PREDICTION_LOG_DIR": str(log_dir)}
    with LessonServer(
        FINAL_LESSON,
        env=env,
        uvicorn_args=["--workers", str(WORKERS)],
        log_path=tmp_path / "uvicorn.log",
    ) as server:
        wait_for_workers(log_dir, server)
        sent = 0
        with ThreadPoolExecutor(AT_ONCE) as pool:
            # Until both workers have served (and logged) something.
            while sent < MAX_REQUESTS and not all(p.stat().st_size for p in log_files(log_dir)):
                sent += sum(pool.map(predict, [server.url] * AT_ONCE))
        files = log_files(log_dir)
        assert all(path.stat().st_size for path in files), f"one worker served all {sent}"

        # The last answers' metrics are written just after they went out.
        scrape_until(server.url, lambda now: now.value("titanic_predictions_total") == sent)
        # Each scrape may be answered by either worker: every one must add up both.
        for _ in range(6):
            metrics = scrape(server.url)
            assert metrics.value("titanic_predictions_total") == sent
            assert metrics.value("prediction_type_total", type="single") == sent
            assert (
                metrics.value(
                    "http_requests_total",
                    method="POST",
                    endpoint="/predict_single",
                    status_code="200",
                )
                == sent
            )
            assert (
                metrics.value("http_request_duration_seconds_count", endpoint="/predict_single")
                == sent
            )
            assert metrics.value("passenger_age_distribution_count") == sent
            assert metrics.value("http_requests_in_progress") == 0
            # What multiprocess mode leaves out: per-process CPU and memory, and _created.
            assert "process_cpu_seconds_total" not in metrics.names()
            assert not [name for name in metrics.names() if name.endswith("_created")]

    # One log per worker process, named after its pid; together they hold every prediction.
    pids = {path.stem.rsplit("_", 1)[1] for path in files}
    assert len(files) == WORKERS and len(pids) == WORKERS
    assert str(server.pid) not in pids, "the supervisor process must not predict"
    lines = [json.loads(line) for path in files for line in path.read_text().splitlines()]
    assert len(lines) == sent
    for path in files:
        executes = [json.loads(line)["execute"] for line in path.read_text().splitlines()]
        assert executes == list(range(1, len(executes) + 1))

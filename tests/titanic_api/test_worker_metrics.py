"""Several gunicorn workers: their CPU and memory in /metrics (finding 9), and dead workers'
metric files merged into one archive, the counters exact (finding 11)."""

from __future__ import annotations

import json
import os
import re
import signal
import time
from pathlib import Path

import httpx2
import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry, generate_latest, multiprocess
from prometheus_client.mmap_dict import MmapedDict, mmap_key

from tests.support.metrics import Metrics, scrape_until
from tests.support.metrics import scrape as scrape_client
from tests.support.package import PackageServer, gunicorn_env
from titanic_api.app import create_app
from titanic_api.metrics import WorkerProcessCollector, archive_dead_worker
from tools.examples import PASSENGER
from tools.servers import REPO_ROOT

DEAD_WORKERS = 400


def dashboard_process_metrics() -> set[str]:
    """The metric names the dashboard's CPU and memory panels select."""
    dashboard = json.loads(
        (REPO_ROOT / "grafana_dashboard/titanic_api_simple_app_monitoring.json").read_text()
    )
    exprs = [
        target["expr"]
        for panel in dashboard["panels"]
        if panel.get("title") in ("CPU usage", "Memory (resident)")
        for target in panel["targets"]
    ]
    return {name for expr in exprs for name in re.findall(r"\b(process_\w+)\{", expr)}


def test_the_dashboard_reads_cpu_and_memory_of_one_process() -> None:
    assert dashboard_process_metrics() == {
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
    }
    with TestClient(create_app()) as client:
        assert dashboard_process_metrics() <= scrape_client(client).names()


def totals(folder: Path) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, str(folder))
    return Metrics.parse(generate_latest(registry).decode()).samples


def write_worker(folder: Path, pid: int, requests: float) -> None:
    """The files a worker leaves: a counter and a histogram, as prometheus_client writes them."""
    counter = MmapedDict(str(folder / f"counter_{pid}.db"))
    key = mmap_key("http_requests_total", "http_requests_total", ["endpoint"], ["/a"], "Help.")
    counter.write_value(key, requests, 0.0)
    counter.close()
    histogram = MmapedDict(str(folder / f"histogram_{pid}.db"))
    for le, count in (("1.0", requests / 2), ("+Inf", requests)):
        bucket = mmap_key("t", "t_bucket", ["le"], [le], "Help.")
        histogram.write_value(bucket, count, 0.0)
    histogram.write_value(mmap_key("t", "t_sum", [], [], "Help."), requests * 0.7, 0.0)
    histogram.close()


def test_dead_workers_files_are_merged_into_one_archive_exactly(tmp_path: Path) -> None:
    """400 dead workers left 800 files, all read at every scrape; now 2, with the same totals."""
    for pid in range(1, DEAD_WORKERS + 1):
        write_worker(tmp_path, 100_000 + pid, float(pid))
    write_worker(tmp_path, os.getpid(), 1000.0)  # a live one
    before = totals(tmp_path)
    for pid in range(1, DEAD_WORKERS + 1):
        archive_dead_worker(tmp_path, 100_000 + pid)
    assert sorted(path.name for path in tmp_path.glob("*.db")) == sorted(
        [
            "counter_archive.db",
            f"counter_{os.getpid()}.db",
            "histogram_archive.db",
            f"histogram_{os.getpid()}.db",
        ]
    )
    after = totals(tmp_path)
    # Counts are exact; a sum of fractions adds up in another order, equal to rounding.
    total: tuple[str, frozenset[tuple[str, str]]] = ("t_sum", frozenset())
    assert after.pop(total) == pytest.approx(before.pop(total), rel=1e-12)
    assert after == before
    requests = ("http_requests_total", frozenset({("endpoint", "/a")}))
    assert after[requests] == sum(range(1, DEAD_WORKERS + 1)) + 1000


def test_only_live_workers_cpu_and_memory_are_collected(tmp_path: Path) -> None:
    (tmp_path / f"gauge_livesum_{os.getpid()}.db").write_bytes(b"")
    (tmp_path / "gauge_livesum_999999999.db").write_bytes(b"")  # no such process
    (tmp_path / "counter_archive.db").write_bytes(b"")
    families = {family.name: family for family in WorkerProcessCollector(tmp_path).collect()}
    [cpu] = families["process_cpu_seconds"].samples
    assert cpu.labels == {"pid": str(os.getpid())} and cpu.value > 0
    [memory] = families["process_resident_memory_bytes"].samples
    assert memory.labels == {"pid": str(os.getpid())} and memory.value > 0


@pytest.mark.live
@pytest.mark.slow
def test_gunicorn_shows_each_workers_cpu_and_memory_and_archives_the_dead(
    tmp_path: Path, log_dir: Path
) -> None:
    env = gunicorn_env(tmp_path, PREDICTION_LOG_DIR=str(log_dir))
    server = PackageServer("gunicorn", env=env)
    with server:

        def predict(count: int) -> None:
            for _ in range(count):
                response = httpx2.post(f"{server.url}/predict_single", json=PASSENGER, timeout=120)
                assert response.status_code == 200

        def all_workers_serve() -> Metrics:
            """Once each worker has loaded the app. A scrape may wait for a worker that is
            still loading its model (after a kill, on a busy machine): a long timeout."""
            deadline = time.monotonic() + 180
            while True:
                response = httpx2.get(f"{server.url}/metrics", timeout=120)
                scraped = Metrics.parse(response.text)
                pids = scraped.label_values("process_cpu_seconds_total", "pid")
                if pids == {str(pid) for pid in server.workers()}:
                    return scraped
                assert time.monotonic() < deadline, pids
                time.sleep(0.2)

        predict(10)
        scraped = all_workers_serve()
        workers = {str(pid) for pid in server.workers()}
        assert dashboard_process_metrics() <= scraped.names()
        for name in ("process_cpu_seconds_total", "process_resident_memory_bytes"):
            assert scraped.label_values(name, "pid") == workers
            assert all(scraped.value(name, pid=pid) > 0 for pid in workers)
        for round_ in range(3):
            # The counts follow each answer by a moment: a worker killed before loses them.
            sent = 10 + 5 * round_
            settled = lambda now: now.value("titanic_predictions_total") == sent  # noqa: B023, E731
            scrape_until(server.url, settled, 60)
            victim = server.workers()[0]
            os.kill(victim, signal.SIGKILL)
            deadline = time.monotonic() + 60
            while victim in server.workers() or len(server.workers()) < 2:
                assert time.monotonic() < deadline, "gunicorn did not replace the worker"
                time.sleep(0.1)
            all_workers_serve()
            predict(5)
        final = scrape_until(
            server.url, lambda now: now.value("titanic_predictions_total") == 25, timeout=30
        )
        live = {str(pid) for pid in server.workers()}
        multiproc = Path(env["PROMETHEUS_MULTIPROC_DIR"])
        counters = sorted(path.name for path in multiproc.glob("counter_*.db"))
    labels = {"method": "POST", "endpoint": "/predict_single", "status_code": "200"}
    assert final.value("http_requests_total", **labels) == 25
    assert final.label_values("process_resident_memory_bytes", "pid") == live
    assert len(counters) == 3 and "counter_archive.db" in counters, counters

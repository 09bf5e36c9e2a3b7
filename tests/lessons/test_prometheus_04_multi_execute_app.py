"""Lesson P04: simulated traffic, plus everything the monitoring lessons built so far."""

import json
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx2
import pytest
from fastapi.testclient import TestClient

from tests.support.lessons import SIMULATION_LESSONS
from tests.support.metrics import Metrics, scrape
from tests.support.monitoring import predict_single, read_log, the_log
from tests.support.simulation_contracts import SimulationContract
from tools.examples import PASSENGER
from tools.servers import REPO_ROOT, LessonServer

LESSON = "prometheus_04_multi_execute_app"
BODY = json.dumps(PASSENGER)
JSON = {"content-type": "application/json"}

# Kept from earlier lessons, and tested where each behaviour starts, over every
# lesson that keeps it (this one among them):
# TestOpenAPISnapshot in test_fastapi_01_test_app.py;
# TestServedByUvicorn, TestModelApi in test_fastapi_04_single_app.py;
# TestValidation in test_fastapi_04_02_single_app.py;
# TestBatch in test_fastapi_05_batch_test_app.py;
# TestMetricsEndpoint in test_prometheus_00_simple_monitoring_app.py;
# TestGoldenSignals in test_prometheus_01_four_signal_monitor_app.py;
# TestModelMetrics in test_prometheus_02_model_monitor_app.py;
# TestPredictionLog in test_prometheus_03_logging_app.py.


@pytest.mark.parametrize("subject", SIMULATION_LESSONS, indirect=True)
class TestSimulation(SimulationContract):
    """P04: POST /simulate_predictions counts and logs n random passengers."""


def monitoring_section() -> str:
    page = (REPO_ROOT / "docs" / "metrics.md").read_text(encoding="utf-8")
    return page[page.index("<!-- BEGIN monitoring -->") : page.index("<!-- END monitoring -->")]


@pytest.mark.live
def test_real_server_under_concurrent_load(log_dir: Path) -> None:
    """uvicorn, 8 client threads x 25 requests: exact counts, and a gap-free log."""
    threads, each = 8, 25
    with LessonServer(LESSON, env={"PREDICTION_LOG_DIR": str(log_dir)}) as server:

        def work(thread: int) -> int:
            passengers = 0
            with httpx2.Client() as session:
                for i in range(each):
                    if i % 5 == 4:
                        url = f"{server.url}/simulate_predictions?num_executions=3&seed={i}"
                        response = session.post(url, timeout=30)
                        passengers += 3
                    else:
                        url = f"{server.url}/predict_single"
                        response = session.post(url, content=BODY, headers=JSON, timeout=30)
                        passengers += 1
                    assert response.status_code == 200, response.text
            return passengers

        with ThreadPoolExecutor(threads) as pool:
            passengers = sum(pool.map(work, range(threads)))
        metrics = scrape(server.url)
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


def test_metrics_page_table_is_complete_and_true(metrics: Callable[[], Metrics]) -> None:
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
            assert scraped.types.get(family) == kind, f"the table: {name} is not a {kind} of P04"
            documented.add(family)
    exposed = {name for name in scraped.types if not name.endswith("_created")}
    missing = {name for name in exposed - documented if not name.startswith("process_")}
    assert not missing, f"the final lesson's metrics the table lacks: {missing}"


def test_metrics_page_sample_log_line_is_what_the_lesson_writes(
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

"""Labels reach another worker or replica than the prediction did, and count exactly once.

Real processes on 127.0.0.1 and free ports, stopped by their pids: gunicorn with 2
workers sharing the default SQLite store, and 2 uvicorn replicas sharing a real
PostgreSQL server (Debian's ``postgresql``; skipped without it unless REQUIRE_POSTGRES=1).
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx2
import pytest

from tests.support.metrics import Metrics, scrape, scrape_until
from tests.support.monitoring import log_files
from tests.support.package import PackageServer, gunicorn_env
from tests.support.postgres import postgres
from titanic_api import profile
from titanic_api.settings import COMMITTED_MODEL
from tools.examples import CHILD, PASSENGER, SURVIVOR
from tools.servers import PostgresServer

__all__ = ["postgres"]  # the fixture, used by name
pytestmark = [pytest.mark.live, pytest.mark.slow]
VERSION = COMMITTED_MODEL.parent.name
REFERENCE = profile.read(COMMITTED_MODEL / profile.PROFILE_PATH)


def post(url: str, path: str, body: object) -> Any:
    """POST on a new connection (any worker may take it); the answer's JSON, after a 200."""
    response = httpx2.post(url + path, json=body, timeout=60)
    assert response.status_code == 200, response.text
    return response.json()


def predict(url: str) -> list[str]:
    answer = post(url, "/predict_batch", [PASSENGER, SURVIVOR, CHILD])
    return [item["prediction_id"] for item in answer["batch_predictions"]]


def labels(ids: list[str], survived: int = 1) -> list[dict[str, object]]:
    return [{"prediction_id": i, "survived": survived} for i in ids]


def ids_by_worker(log_dir: Path) -> list[set[str]]:
    """The prediction ids in each worker's log (a file per worker, named after its pid),
    whole lines only (a line being written has no newline yet)."""
    return [
        {json.loads(line)["prediction_id"] for line in path.read_text().split("\n")[:-1]}
        for path in log_files(log_dir)
    ]


def ids_once_logged(log_dir: Path, ids: list[str], timeout: float = 30.0) -> list[set[str]]:
    """Each worker's logged ids, once every id of ``ids`` is logged (or the time is up):
    the log lines are written after the answer has gone out."""
    deadline = time.monotonic() + timeout
    while True:
        per_worker = ids_by_worker(log_dir)
        if set().union(*per_worker) >= set(ids) or time.monotonic() > deadline:
            return per_worker
        time.sleep(0.05)


def predict_until_both_workers_served(url: str, log_dir: Path) -> list[str]:
    """Predict in fours until both workers' logs hold ids (or 1,200 ids): the ids sent."""
    ids: list[str] = []
    with ThreadPoolExecutor(4) as pool:
        while len(ids) < 1200 and sum(1 for found in ids_by_worker(log_dir) if found) < 2:
            for batch in pool.map(predict, [url] * 4):
                ids += batch
    return ids


def check_summed_quality_metrics(metrics: Metrics, ids: list[str]) -> None:
    """The feedback, label, feature and reference series, summed over both workers."""
    feedback = [
        metrics.value("titanic_feedback_labels_total", result=result)
        for result in ("accepted", "unknown", "already_labelled")
    ]
    assert feedback == [len(ids), 0, len(ids)]
    correct, wrong = (
        metrics.value("titanic_labels_total", model_version=VERSION, outcome=outcome)
        for outcome in ("correct", "wrong")
    )
    # All labelled "survived": the survivors and the child right, the man wrong.
    assert (correct, wrong) == (len(ids) * 2 / 3, len(ids) / 3)
    assert (
        metrics.value(
            "titanic_feature_observations_total",
            model_version=VERSION,
            feature="Sex",
            bin="male",
        )
        == len(ids) / 3
    )
    # The reference ratios: once per series, the profile's values, in multiprocess mode too.
    reference = {
        (dict(labels)["feature"], dict(labels)["bin"]): value
        for (name, labels), value in metrics.samples.items()
        if name == "titanic_feature_reference_ratio"
    }
    assert reference == {(f, b): share for f, b, share in REFERENCE.ratios()}
    assert metrics.value("titanic_reference_accuracy", model_version=VERSION) == (
        REFERENCE.accuracy
    )


def test_two_gunicorn_workers_share_the_sqlite_store(tmp_path: Path, log_dir: Path) -> None:
    env = gunicorn_env(tmp_path, PREDICTION_LOG_DIR=str(log_dir))
    with PackageServer("gunicorn", env=env, log_path=tmp_path / "gunicorn.log") as server:
        ids = predict_until_both_workers_served(server.url, log_dir)
        per_worker = ids_once_logged(log_dir, ids)
        assert len(per_worker) == 2 and all(per_worker), f"one worker served all {len(ids)}"
        assert set().union(*per_worker) == set(ids)
        # One request holds labels for both workers' predictions: whichever worker takes
        # it, half of them were predicted by the other one.
        assert post(server.url, "/feedback", labels(ids)) == {
            "accepted": len(ids),
            "unknown": 0,
            "already_labelled": 0,
        }
        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(lambda i: post(server.url, "/feedback", labels([i], 0)), ids))
        assert answers == [{"accepted": 0, "unknown": 0, "already_labelled": 1}] * len(ids)

        scrape_until(
            server.url,
            lambda now: (
                now.value("titanic_real_predictions_total", model_version=VERSION) == len(ids)
            ),
        )
        for _ in range(4):  # whichever worker answers the scrape, the sums are the same
            check_summed_quality_metrics(scrape(server.url), ids)


def test_two_replicas_share_a_postgresql_store(postgres: PostgresServer, tmp_path: Path) -> None:
    env = {"TITANIC_FEEDBACK_STORE": postgres.url}
    first = PackageServer(
        env={**env, "PREDICTION_LOG_DIR": str(tmp_path / "a")}, log_path=tmp_path / "a.log"
    )
    second = PackageServer(
        env={**env, "PREDICTION_LOG_DIR": str(tmp_path / "b")}, log_path=tmp_path / "b.log"
    )
    with first, second:
        assert httpx2.get(second.url + "/health").json()["feedback_store"] == "postgresql"
        on_first = predict(first.url)
        assert post(second.url, "/feedback", labels(on_first)) == {
            "accepted": 3,
            "unknown": 0,
            "already_labelled": 0,
        }
        assert post(first.url, "/feedback", labels([*on_first, "0" * 32])) == {
            "accepted": 0,
            "unknown": 1,
            "already_labelled": 3,
        }
        # The same 300 labels sent to both replicas at once: each counted by one of them.
        many = [i for _ in range(100) for i in predict(first.url)]
        with ThreadPoolExecutor(2) as pool:
            answers = list(
                pool.map(lambda url: post(url, "/feedback", labels(many)), [first.url, second.url])
            )
        assert sum(a["accepted"] for a in answers) == 300
        assert sum(a["already_labelled"] for a in answers) == 300
        assert sum(a["unknown"] for a in answers) == 0
        counted = [
            sum(
                scrape(url).value("titanic_labels_total", model_version=VERSION, outcome=outcome)
                for outcome in ("correct", "wrong")
            )
            for url in (first.url, second.url)
        ]
        assert sum(counted) == 303
        assert counted[1] == 3 + answers[1]["accepted"]

"""The prediction log shared by worker processes, bounded in size and in start-up memory.

Two ``PredictionLog`` objects on one path stand for two gunicorn workers: each opens
the file itself, and ``flock`` locks belong to an open file, so they exclude each other
exactly as two processes' would. The live test at the end runs gunicorn for real.
"""

from __future__ import annotations

import json
import logging
import threading
import tracemalloc
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx2
import pytest
from fastapi.testclient import TestClient

from tests.support.metrics import scrape
from tests.support.monitoring import read_log
from tests.support.package import PackageServer, gunicorn_env
from titanic_api import prediction_log
from titanic_api.app import create_app
from titanic_api.prediction_log import PredictionLog, last_execute
from titanic_api.settings import COMMITTED_MODEL, Settings
from tools.examples import PASSENGER, SURVIVOR

SHARED: dict[str, object] = {
    "execution_time": "2026-12-06T00:00:00+00:00",
    "prediction_type": "single",
}


def record(index: int) -> dict[str, object]:
    return {"Age": float(index), "prediction": index % 2}


OPENED: list[PredictionLog] = []


def opened(path: Path, **kwargs: Any) -> PredictionLog:
    log = PredictionLog(path, **kwargs)
    log.open()
    OPENED.append(log)
    return log


@pytest.fixture(autouse=True)
def close_the_logs() -> Iterator[None]:
    yield
    while OPENED:
        OPENED.pop().close()


def numbers_in(paths: list[Path]) -> list[int]:
    """The ``execute`` numbers of whole files read in order (oldest file first)."""
    return [line["execute"] for path in paths for line in read_log(path)]


# ------------------------------------------------------------- finding 4: one file, two workers


def test_two_workers_on_one_file_number_it_once(tmp_path: Path) -> None:
    """Each worker used to count its own lines: 1, 1, 2, 2... Now the file holds the count."""
    path = tmp_path / "predictions.jsonl"
    first, second = opened(path), opened(path)
    for index in range(10):
        (first if index % 3 else second).write(SHARED, [record(index)] * (1 + index % 2))
    assert numbers_in([path]) == list(range(1, 16))


def test_a_worker_that_starts_later_numbers_on(tmp_path: Path) -> None:
    path = tmp_path / "predictions.jsonl"
    first = opened(path)
    first.write(SHARED, [record(1), record(2)])
    second = opened(path)  # a worker restarted by gunicorn
    second.write(SHARED, [record(3)])
    first.write(SHARED, [record(4)])
    assert numbers_in([path]) == [1, 2, 3, 4]


class FailingHalfway:
    """A file whose disk fills up: half a write goes in, the other worker tries, then ENOSPC."""

    def __init__(self, file: Any, meanwhile: threading.Thread) -> None:
        self.file, self.meanwhile = file, meanwhile

    def write(self, data: bytes) -> int:
        if self.meanwhile.is_alive() or self.meanwhile.ident is not None:
            raise OSError(28, "No space left on device")
        written: int = self.file.write(data[: len(data) // 2])
        self.meanwhile.start()
        self.meanwhile.join(0.5)  # the other worker waits for the lock (or, unlocked, writes)
        return written

    def __getattr__(self, name: str) -> Any:
        return getattr(self.file, name)


def test_a_failed_write_only_takes_back_its_own_bytes(tmp_path: Path) -> None:
    """The failing worker truncates to where its write started, while the other one waits."""
    path = tmp_path / "predictions.jsonl"
    failing, other = opened(path), opened(path)
    failing.write(SHARED, [record(1)])
    meanwhile = threading.Thread(target=other.write, args=(SHARED, [record(2), record(3)]))
    failing._file = FailingHalfway(failing._file, meanwhile)  # type: ignore[assignment]
    failing.write(SHARED, [record(9)] * 5)
    meanwhile.join(10)
    lines = read_log(path)
    assert [line["Age"] for line in lines] == [1.0, 2.0, 3.0]
    assert [line["execute"] for line in lines] == [1, 2, 3]


# ------------------------------------------------------------- finding 5: rotation by size


def test_the_log_rotates_by_size_and_keeps_the_newest_files(tmp_path: Path) -> None:
    path = tmp_path / "predictions.jsonl"
    log = opened(path, max_bytes=1000, backups=2)
    for index in range(60):
        log.write(SHARED, [record(index)])
    files = [path.with_name(path.name + ".2"), path.with_name(path.name + ".1"), path]
    assert sorted(tmp_path.iterdir()) == sorted(files), "two backups kept, the rest deleted"
    sizes = [file.stat().st_size for file in files]
    assert all(0 < size <= 1000 for size in sizes), sizes
    numbers = numbers_in(files)
    assert numbers == list(range(numbers[0], 61)), "consecutive across the files, none torn"
    line = len((path.read_bytes().splitlines(keepends=True))[0])
    assert len(numbers) > 2 * (1000 // line), "the two backups are (nearly) full"


def test_two_workers_rotating_lose_and_tear_nothing(tmp_path: Path) -> None:
    path = tmp_path / "predictions.jsonl"
    first = opened(path, max_bytes=700, backups=100)
    second = opened(path, max_bytes=700, backups=100)

    def work(log: PredictionLog, start: int) -> None:
        for index in range(start, start + 100, 2):
            log.write(SHARED, [record(index)] * (1 + index % 3))

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(work, (first, second), (0, 1)))
    backups = sorted(tmp_path.glob("predictions.jsonl.*"), key=lambda p: -int(p.suffix[1:]))
    assert len(backups) > 5, "it rotated many times"
    numbers = numbers_in([*backups, path])
    assert numbers == list(range(1, 1 + sum(1 + i % 3 for i in range(100))))


def test_a_write_larger_than_the_limit_is_never_split(tmp_path: Path) -> None:
    path = tmp_path / "predictions.jsonl"
    log = opened(path, max_bytes=100, backups=3)
    log.write(SHARED, [record(1)])
    log.write(SHARED, [record(index) for index in range(2, 7)])
    log.write(SHARED, [record(7)])
    backup = path.with_name(path.name + ".1")
    assert numbers_in([path.with_name(path.name + ".2"), backup, path]) == list(range(1, 8))
    assert numbers_in([backup]) == [2, 3, 4, 5, 6]


def test_the_service_rotates_with_its_settings(tmp_path: Path) -> None:
    path = tmp_path / "predictions.jsonl"
    settings = Settings(
        model_uri=str(COMMITTED_MODEL),
        prediction_log_path=path,
        prediction_log_max_bytes=2000,
        prediction_log_backups=1,
    )
    with TestClient(create_app(settings)) as client:
        for passenger in [PASSENGER, SURVIVOR] * 6:
            assert client.post("/predict_single", json=passenger).status_code == 200
    backup = path.with_name(path.name + ".1")
    assert sorted(tmp_path.glob("predictions*")) == [path, backup]
    assert path.stat().st_size <= 2000 and backup.stat().st_size <= 2000
    numbers = numbers_in([backup, path])
    assert numbers == list(range(numbers[0], 13))


def test_the_rotation_settings_are_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PREDICTION_LOG_MAX_BYTES", "5000")
    monkeypatch.setenv("PREDICTION_LOG_BACKUPS", "7")
    settings = Settings()
    assert (settings.prediction_log_max_bytes, settings.prediction_log_backups) == (5000, 7)


# ------------------------------------------------------------- finding 8: a huge torn last line


def test_a_huge_torn_last_line_costs_bounded_memory_at_start(tmp_path: Path) -> None:
    """A 256 MB torn tail (sparse: no disk used) is cut off without being read into memory."""
    path = tmp_path / "predictions.jsonl"
    whole = b'{"execute": 1}\n{"execute": 2}\n'
    path.write_bytes(whole + b'{"execute": 3, "Pclass')
    torn_size = 256 * 1024 * 1024
    with path.open("r+b") as file:
        file.truncate(torn_size)
    tracemalloc.start()
    try:
        log = opened(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * 1024 * 1024, f"{peak / 1e6:.0f} MB peak for a {torn_size / 1e6:.0f} MB tail"
    assert path.read_bytes() == whole
    log.write(SHARED, [record(3)])
    assert numbers_in([path]) == [1, 2, 3]
    assert last_execute(path) == 3


# ------------------------------------------------------------- finding 11: a log that fails


def test_a_failing_log_is_reported_once_then_once_per_interval(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Not one traceback per request: one, then a line with the count at most once a minute."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder\n")
    lost: list[int] = []
    log = opened(blocker / "predictions.jsonl", on_error=lost.append)
    now = [1000.0]
    monkeypatch.setattr(prediction_log, "time", SimpleNamespace(monotonic=lambda: now[0]))
    caplog.set_level(logging.INFO, logger="uvicorn.error")
    caplog.clear()
    for _ in range(50):
        log.write(SHARED, [record(1), record(2)])
    assert sum(lost) == 100, "every lost line is counted"
    assert [bool(r.exc_info) for r in caplog.records] == [True], "one traceback only"
    now[0] += prediction_log.ERROR_REPORT_INTERVAL
    log.write(SHARED, [record(1)])
    [first, summary] = caplog.records
    assert summary.levelno == logging.ERROR and not summary.exc_info
    assert "Could not write 99 predictions to the log since the last report" in summary.message


def test_the_service_counts_every_line_it_could_not_log(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder\n")
    settings = Settings(model_uri=str(COMMITTED_MODEL), prediction_log_path=blocker / "x.jsonl")
    with TestClient(create_app(settings)) as client:
        caplog.clear()
        for _ in range(20):
            assert client.post("/predict_single", json=PASSENGER).status_code == 200
        assert scrape(client).value("prediction_log_errors_total") == 20
    assert sum(1 for r in caplog.records if r.exc_info) <= 1


# ------------------------------------------------------------- finding 4 and 5 under gunicorn


@pytest.mark.live
@pytest.mark.slow
def test_gunicorn_workers_share_one_rotating_log(tmp_path: Path) -> None:
    """Two workers, one PREDICTION_LOG_PATH, a small size limit: every line once, numbered."""
    path = tmp_path / "logs" / "predictions.jsonl"
    env = gunicorn_env(
        tmp_path,
        PREDICTION_LOG_PATH=str(path),
        PREDICTION_LOG_MAX_BYTES="20000",
        PREDICTION_LOG_BACKUPS="1000",
    )
    requests = 240
    with PackageServer("gunicorn", env=env) as server:

        def predict(index: int) -> int:
            batch = [{**PASSENGER, "Age": float(index % 80 + 1)}] * (1 + index % 3)
            response = httpx2.post(f"{server.url}/predict_batch", json=batch, timeout=30)
            assert response.status_code == 200, response.text
            return len(batch)

        with ThreadPoolExecutor(8) as pool:
            passengers = sum(pool.map(predict, range(requests)))
    backups = sorted(path.parent.glob("predictions.jsonl.*"), key=lambda p: -int(p.suffix[1:]))
    assert len(backups) > 3
    assert all(p.stat().st_size <= 20000 for p in [*backups, path])
    lines = [line for p in [*backups, path] for line in read_log(p)]
    assert [line["execute"] for line in lines] == list(range(1, passengers + 1))
    assert sorted(line["Age"] for line in lines) == sorted(
        float(i % 80 + 1) for i in range(requests) for _ in range(1 + i % 3)
    )
    json.dumps(lines)  # every line was whole JSON (read_log parsed each)

"""prometheus_03 on: the JSON-lines prediction log on disk, as a behaviour class.

Tested in tests/lessons/test_prometheus_03_logging_app.py over every lesson that keeps
the log, and on ``titanic_api`` by tests/titanic_api/test_contract.py; see
``tests.support.model_metrics_contracts`` for how the monitoring behaviours are read.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.support.metrics import scrape
from tests.support.monitoring import (
    BAD_PASSENGER,
    BATCH,
    DAMAGED_LAST_LINES,
    Scrape,
    changes,
    check_log_line,
    file_size_limit,
    force_failure,
    log_files,
    model_probabilities,
    predict_batch,
    predict_single,
    read_log,
    the_log,
)
from tests.support.subject import Subject
from tools.examples import CHILD, PASSENGER, SURVIVOR

# ---------------------------------------------------------------- prometheus_03 on


class PredictionLogContract:
    """prometheus_03 on: one whole JSON line per predicted passenger, numbered 1, 2, 3 ..."""

    def test_one_line_per_passenger(
        self, subject: Subject, client: TestClient, log_dir: Path, metrics: Scrape
    ) -> None:
        before = metrics()
        single = predict_single(client, PASSENGER)
        batch = predict_batch(client, BATCH)
        lines = read_log(the_log(log_dir))
        assert [line["execute"] for line in lines] == [1, 2, 3, 4]
        assert [line["prediction"] for line in lines] == [single, *batch]
        for line, passenger, kind in zip(
            lines, [PASSENGER, *BATCH], ["single", "batch", "batch", "batch"], strict=True
        ):
            check_log_line(line, subject, passenger, kind)
        probabilities = model_probabilities(subject, [PASSENGER, *BATCH])
        assert [line["probability"]["Survived"] for line in lines] == pytest.approx(
            probabilities, abs=1e-12
        )
        assert metrics().value("prediction_log_errors_total") == before.value(
            "prediction_log_errors_total"
        )

    def test_default_file_named_after_start_time_and_pid(
        self, subject: Subject, log_dir: Path
    ) -> None:
        for _ in range(2):
            with TestClient(subject.app) as client:
                predict_single(client, PASSENGER)
        files = log_files(log_dir)
        assert len(files) == 2, "one new file per server start"
        for path in files:
            assert re.fullmatch(
                rf"predictions_\d{{8}}T\d{{6}}_\d{{6}}Z_{os.getpid()}\.jsonl", path.name
            )
            assert [line["execute"] for line in read_log(path)] == [1]

    def test_default_folder_is_git_ignored(
        self, subject: Subject, monkeypatch: pytest.MonkeyPatch, repo_root: Path
    ) -> None:
        monkeypatch.delenv("PREDICTION_LOG_DIR")
        path = subject.default_log_path()
        assert path.parent == repo_root / "logs"
        assert not path.is_relative_to(repo_root / "mlruns")
        ignored = subprocess.run(
            ["git", "check-ignore", "--quiet", str(path.relative_to(repo_root))],
            cwd=repo_root,
            check=False,
        )
        assert ignored.returncode == 0, "logs/ must be ignored by git"

    def test_rejected_and_failed_requests_are_not_logged(
        self, subject: Subject, client: TestClient, log_dir: Path
    ) -> None:
        assert client.post("/predict_single", json=BAD_PASSENGER).status_code == 422
        assert client.post("/predict_batch", json=[PASSENGER, BAD_PASSENGER]).status_code == 422
        assert force_failure(subject).post("/predict_single", json=PASSENGER).status_code == 500
        assert read_log(the_log(log_dir)) == []

    def test_missing_model_logs_nothing(
        self, broken_model: Path, client: TestClient, log_dir: Path
    ) -> None:
        assert client.post("/predict_batch", json=BATCH).status_code == 503
        assert read_log(the_log(log_dir)) == []

    def test_concurrent_requests_get_unique_gap_free_numbers(
        self, client: TestClient, log_dir: Path, metrics: Scrape
    ) -> None:
        threads, requests_each = 8, 25

        def work(thread: int) -> int:
            passengers = 0
            for i in range(requests_each):
                if (thread + i) % 5 == 0:
                    passengers += len(predict_batch(client, [SURVIVOR, CHILD]))
                else:
                    predict_single(client, {**PASSENGER, "Age": float(thread * 100 + i + 1) / 10})
                    passengers += 1
            return passengers

        before = metrics()
        with ThreadPoolExecutor(threads) as pool:
            passengers = sum(pool.map(work, range(threads)))
        lines = read_log(the_log(log_dir))
        assert len(lines) == passengers == 240
        assert [line["execute"] for line in lines] == list(range(1, passengers + 1))
        singles = sorted(line["Age"] for line in lines if line["prediction_type"] == "single")
        expected = sorted(
            float(t * 100 + i + 1) / 10
            for t in range(threads)
            for i in range(requests_each)
            if (t + i) % 5
        )
        assert singles == expected, "every single prediction logged exactly once"
        after = metrics()
        assert after.value("titanic_predictions_total") - before.value(
            "titanic_predictions_total"
        ) == len(lines)
        assert after.value("http_requests_in_progress") == 0

    def test_append_numbers_on_after_the_last_whole_line(
        self, subject: Subject, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """``execute`` is the line's number in the file: appending goes on from the line count."""
        path = tmp_path / "kept" / "predictions.jsonl"
        path.parent.mkdir()
        earlier = b"".join(
            json.dumps({"execute": n, "prediction": 0}).encode() + b"\n" for n in (1, 2, 41)
        )
        path.write_bytes(earlier + b'{"execute": 42, "Pcla')  # a write cut short by a crash
        monkeypatch.setenv("PREDICTION_LOG_PATH", str(path))
        with TestClient(subject.app) as client:
            predict_single(client, PASSENGER)
            predict_batch(client, [SURVIVOR, CHILD])
        assert path.read_bytes().startswith(earlier)
        lines = read_log(path)
        assert [line["execute"] for line in lines] == [1, 2, 41, 4, 5, 6]
        for line, passenger, kind in zip(
            lines[3:], [PASSENGER, SURVIVOR, CHILD], ["single", "batch", "batch"], strict=True
        ):
            check_log_line(line, subject, passenger, kind)
        assert log_files(tmp_path / "prediction-logs") == [], "no default file when appending"

    @pytest.mark.parametrize("damaged", list(DAMAGED_LAST_LINES), ids=list(DAMAGED_LAST_LINES))
    def test_a_damaged_last_line_never_stops_the_start(
        self,
        subject: Subject,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        server_log: pytest.LogCaptureFixture,
        damaged: str,
    ) -> None:
        """Whatever the existing log's last line holds, the app starts, says so, and numbers on."""
        path = tmp_path / "predictions.jsonl"
        whole = b'{"execute": 1}\n{"execute": 2}\n' + DAMAGED_LAST_LINES[damaged]
        path.write_bytes(whole + b'{"execute": 4, "Pcla')  # and a torn line after it
        monkeypatch.setenv("PREDICTION_LOG_PATH", str(path))
        with TestClient(subject.app) as client:
            assert client.get("/health").json()["status"] == "ok"
            predict_single(client, SURVIVOR)
        data = path.read_bytes()
        assert data.startswith(whole)
        line = json.loads(data[len(whole) :])
        assert line["execute"] == 4, "numbered on after the file's three whole lines"
        check_log_line(line, subject, SURVIVOR, "single")
        assert str(path) in server_log.text, "the server log says what it did with the file"

    def test_file_is_read_once_at_start_not_per_request(
        self, subject: Subject, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The next number is kept in memory: lines someone else appends are not re-counted."""
        path = tmp_path / "predictions.jsonl"
        monkeypatch.setenv("PREDICTION_LOG_PATH", str(path))
        with TestClient(subject.app) as client:
            predict_single(client, PASSENGER)
            with path.open("ab") as file:
                file.write(b'{"note": "appended by hand"}\n' * 5)
            predict_single(client, PASSENGER)
        numbers = [json.loads(line).get("execute") for line in path.read_bytes().splitlines()]
        assert numbers == [1, None, None, None, None, None, 2]

    @pytest.mark.parametrize("where", ["under-a-file", "disk-full"])
    def test_unwritable_log_still_answers_and_counts(
        self, subject: Subject, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
    ) -> None:
        if where == "under-a-file":
            blocker = tmp_path / "file.txt"
            blocker.write_text("a file, not a folder\n")
            path = blocker / "sub" / "log.jsonl"
        else:
            path = Path("/dev/full")
            if not path.exists():
                pytest.skip("no /dev/full on this system")
        monkeypatch.setenv("PREDICTION_LOG_PATH", str(path))
        with TestClient(subject.app) as client:
            before = scrape(client)
            assert predict_single(client, PASSENGER) == 0
            assert predict_batch(client, BATCH) == [0, 1, 1]
            after = scrape(client)
        assert changes(before, after, "prediction_log_errors_total") == {
            ("prediction_log_errors_total", ""): 4
        }
        assert changes(before, after, "titanic_predictions_total") == {
            ("titanic_predictions_total", ""): 4
        }
        if where == "under-a-file":
            assert blocker.read_text() == "a file, not a folder\n"

    def test_disk_filling_up_mid_write_leaves_only_whole_lines(
        self, subject: Subject, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        path = tmp_path / "predictions.jsonl"
        monkeypatch.setenv("PREDICTION_LOG_PATH", str(path))
        with TestClient(subject.app) as client:
            predict_single(client, PASSENGER)
            before = scrape(client)
            line_length = path.stat().st_size
            # Room for one and a half more lines: the batch's write is cut short.
            with file_size_limit(path.stat().st_size + line_length * 3 // 2):
                assert predict_batch(client, BATCH) == [0, 1, 1]
            predict_single(client, SURVIVOR)
            after = scrape(client)
        lines = read_log(path)
        assert [line["execute"] for line in lines] == [1, 2]
        check_log_line(lines[1], subject, SURVIVOR, "single")
        assert changes(before, after, "prediction_log_errors_total") == {
            ("prediction_log_errors_total", ""): len(BATCH)
        }

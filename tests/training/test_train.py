"""The data, the trainer, and the committed model the lessons serve."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import mlflow.sklearn
import pandas as pd
import pytest
from mlflow.models import Model
from mlflow.tracking import MlflowClient

from lessons import fastapi_04_single_app
from tests.support.lessons import MODEL_LESSONS
from titanic_api import profile
from tools.examples import SURVIVOR
from tools.servers import REPO_ROOT
from training import train

DATA = REPO_ROOT / "data" / "titanic.csv"
COMMITTED = fastapi_04_single_app.COMMITTED_MODEL


def test_data_matches_its_readme() -> None:
    assert (
        hashlib.sha256(DATA.read_bytes()).hexdigest() in (REPO_ROOT / "data/README.md").read_text()
    )
    frame = pd.read_csv(DATA)
    assert len(frame) == 891
    assert int(frame.Survived.sum()) == 342
    assert frame.isna().sum()[["Age", "Embarked"]].tolist() == [177, 2]
    by_sex = frame.groupby("Sex").Survived.mean().round(3).to_dict()
    assert by_sex == {"female": 0.741, "male": 0.19}
    by_class = frame.groupby("Pclass").Survived.mean().round(3).tolist()
    assert by_class == [0.63, 0.473, 0.242]
    assert (frame.SibSp.max(), frame.Parch.max(), frame.Fare.max()) == (8, 6, 512.3292)


def test_every_model_lesson_serves_the_registered_champion(tmp_path: Path) -> None:
    # Query a copy: opening a store may write to it, and the committed one must not change.
    shutil.copy(REPO_ROOT / "mlruns" / "mlflow.db", tmp_path / "mlflow.db")
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    champion = client.get_model_version_by_alias(train.REGISTERED_MODEL_NAME, train.ALIAS)
    model_id = str(champion.source).removeprefix("models:/")
    assert COMMITTED.parent.name == model_id
    assert COMMITTED.is_relative_to(REPO_ROOT / "mlruns")
    for name in MODEL_LESSONS:
        lesson = __import__(f"lessons.{name}", fromlist=["COMMITTED_MODEL"])
        assert lesson.COMMITTED_MODEL == COMMITTED, name
    # Relative to the clone's root, not where the training machine kept it
    # (tests/titanic_api/test_profile.py checks the whole store holds no absolute path).
    location = client.get_logged_model(model_id).artifact_location
    assert location == f"mlruns/titanic-survival/models/{model_id}/artifacts"


def test_committed_model_metadata() -> None:
    metadata = Model.load(str(COMMITTED))
    flavor = metadata.flavors["sklearn"]
    assert flavor["serialization_format"] == "skops"
    assert flavor["skops_trusted_types"] == train.SKOPS_TRUSTED_TYPES
    assert metadata.metadata == {"experiment_id": "1"}
    assert metadata.signature is not None
    assert metadata.signature.inputs.input_names() == train.FEATURES
    assert (COMMITTED / "input_example.json").is_file()


def test_lessons_work_from_another_clone_path(tmp_path: Path) -> None:
    """A clone somewhere else finds its own committed model, relative to the lesson file."""
    clone = tmp_path / "elsewhere" / "titanic-mlops-tutorial"
    shutil.copytree(REPO_ROOT / "lessons", clone / "lessons")
    shutil.copytree(REPO_ROOT / "mlruns", clone / "mlruns")
    script = (
        "from fastapi.testclient import TestClient\n"
        "from lessons import fastapi_04_02_single_app as lesson\n"
        "with TestClient(lesson.app) as client:\n"
        "    print(lesson.COMMITTED_MODEL)\n"
        "    print(client.post('/predict_single', json=" + repr(SURVIVOR) + ").json())\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=clone, capture_output=True, text=True, check=True
    )
    model_path, answer = result.stdout.splitlines()
    assert Path(model_path).is_relative_to(clone)
    assert answer == "{'prediction': 1, 'survival_status': 'Survived'}"


@pytest.mark.slow
def test_trainer_reproduces_the_model(tmp_path: Path) -> None:
    """`python -m training.train --mlruns DIR` gives the committed model again, as good."""
    result = subprocess.run(
        [sys.executable, "-m", "training.train", "--mlruns", str(tmp_path)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=170,
    )
    assert "Registered:       models:/titanic-survival@champion (version 1)" in result.stdout
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    version = client.get_model_version_by_alias("titanic-survival", "champion")
    run = client.get_run(str(version.run_id))
    metrics = run.data.metrics
    assert set(metrics) == {"accuracy", "precision", "recall", "f1", "roc_auc"}
    assert metrics["accuracy"] >= 0.80
    assert metrics["roc_auc"] >= 0.85
    assert run.data.params["seed"] == str(train.SEED)
    model_id = str(version.source).removeprefix("models:/")
    model_dir = tmp_path / "titanic-survival" / "models" / model_id / "artifacts"
    assert f"Model files:      {model_dir}" in result.stdout
    retrained = mlflow.sklearn.load_model(str(model_dir))
    committed = mlflow.sklearn.load_model(str(COMMITTED))
    features, _ = train.load_data()
    pd.testing.assert_frame_equal(
        pd.DataFrame(retrained.predict_proba(features)),
        pd.DataFrame(committed.predict_proba(features)),
    )
    # The reference profile (titanic_api.profile) is saved with the model, the same again.
    assert profile.read(model_dir / profile.PROFILE_PATH) == profile.read(
        COMMITTED / profile.PROFILE_PATH
    )

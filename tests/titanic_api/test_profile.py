"""The reference profile (titanic_api.profile) and the committed store it travels in."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError
from sklearn.model_selection import train_test_split

from titanic_api import profile
from titanic_api.model import load
from titanic_api.settings import COMMITTED_MODEL
from tools.servers import REPO_ROOT
from training import train

COMMITTED_PROFILE = COMMITTED_MODEL / profile.PROFILE_PATH


def small_profile() -> profile.ReferenceProfile:
    ages = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, float("nan")]
    columns: dict[str, Sequence[object]] = {
        "Age": ages,
        "SibSp": [0] * 8 + [1, 1, 1],
        "Parch": [0] * 11,
        "Fare": [10.0 * i for i in range(11)],
        "Pclass": [1, 2, 3, 3, 3, 3, 3, 3, 3, 3, 3],
        "Sex": ["male"] * 10 + ["female"],
        "Embarked": ["S"] * 10 + [None],
    }
    return profile.compute(columns, np.array([0.1, 0.2, 0.8, 0.9]), np.array([0, 1, 1, 1]))


def test_deciles_rounded_and_deduplicated() -> None:
    reference = small_profile()
    age = reference.features["Age"]
    # Deciles of 1..10 are 1.9, 2.8, ..., 9.1: two significant figures, after a lower edge 0.
    assert age.edges == [0.0, 1.9, 2.8, 3.7, 4.6, 5.5, 6.4, 7.3, 8.2, 9.1]
    assert age.bins[:2] == ["[0, 1.9)", "[1.9, 2.8)"]
    assert age.bins[-1] == "[9.1, +Inf)"
    assert age.proportions == [0.1] * 10
    assert age.rows == 10  # the missing age is left out
    # A feature with few distinct values gets fewer bins (the deciles coincide).
    assert reference.features["SibSp"].bins == ["[0, 1)", "[1, +Inf)"]
    assert reference.features["SibSp"].proportions == pytest.approx([8 / 11, 3 / 11])
    assert reference.features["Parch"].model_dump() == {
        "kind": "numeric",
        "edges": [0.0],
        "bins": ["[0, +Inf)"],
        "proportions": [1.0],
        "rows": 11,
    }
    # Every category the API accepts has a bin, the unseen one at 0.
    assert reference.features["Embarked"].model_dump() == {
        "kind": "categorical",
        "edges": None,
        "bins": ["C", "Q", "S"],
        "proportions": [0.0, 0.0, 1.0],
        "rows": 10,
    }
    assert reference.accuracy == 0.75  # 0.2 predicts 0 for a survivor
    assert reference.brier_score == pytest.approx((0.01 + 0.64 + 0.04 + 0.01) / 4)
    assert reference.held_out_rows == 4


def test_readable_edges() -> None:
    assert [profile.readable(x) for x in (31.8, 7.8542, 77.9583, 0.0567, 512.3)] == [
        32.0,
        7.9,
        78.0,
        0.057,
        510.0,
    ]
    assert profile.bin_labels([0.0, 7.5, 10.0]) == ["[0, 7.5)", "[7.5, 10)", "[10, +Inf)"]


def test_a_batch_is_counted_into_the_bins() -> None:
    binner = profile.Binner(small_profile())
    columns: dict[str, Sequence[object]] = {
        "Age": [0.5, 1.9, 1.95, 99.0],  # an edge belongs to the bin it opens
        "SibSp": [0, 0, 1, 10],
        "Parch": [0, 0, 0, 0],
        "Fare": [0.0, 0.0, 0.0, 1000.0],
        "Pclass": [1, 1, 3, 3],
        "Sex": ["female", "female", "female", "male"],
        "Embarked": ["C", "Q", "Q", "Q"],
    }
    counts = sorted(binner.count(columns, np.array([0.0, 0.5, 0.99, 1.0])))
    assert counts == sorted(
        [
            ("Pclass", "1", 2),
            ("Pclass", "3", 2),
            ("Sex", "female", 3),
            ("Sex", "male", 1),
            ("Age", "[0, 1.9)", 1),
            ("Age", "[1.9, 2.8)", 2),
            ("Age", "[9.1, +Inf)", 1),
            ("SibSp", "[0, 1)", 2),
            ("SibSp", "[1, +Inf)", 2),
            ("Parch", "[0, +Inf)", 4),
            ("Fare", "[0, 10)", 3),
            ("Fare", "[90, +Inf)", 1),
            ("Embarked", "C", 1),
            ("Embarked", "Q", 3),
            ("survival_probability", "[0, 0.13)", 1),
            ("survival_probability", "[0.5, 0.68)", 1),
            ("survival_probability", "[0.87, +Inf)", 2),
        ]
    )


def test_written_and_read_back(tmp_path: Path) -> None:
    reference = small_profile()
    path = profile.write(reference, tmp_path / profile.PROFILE_FILE)
    assert profile.read(path) == reference
    assert list(reference.ratios())[:3] == [
        ("Pclass", "1", 1 / 11),
        ("Pclass", "2", 1 / 11),
        ("Pclass", "3", 9 / 11),
    ]


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: d["features"]["Age"].update(proportions=[0.5] * 10), "sum to 1"),
        (lambda d: d["features"]["Sex"].update(bins=["f", "m"]), "Sex's bins must be"),
        (lambda d: d["features"].pop("Fare"), "the features must be exactly"),
        (lambda d: d["features"]["Age"]["bins"].reverse(), "labels must be those of the edges"),
    ],
)
def test_a_damaged_profile_is_refused(tmp_path: Path, damage: object, message: str) -> None:
    document = json.loads(small_profile().model_dump_json())
    damage(document)  # type: ignore[operator]
    path = tmp_path / profile.PROFILE_FILE
    path.write_text(json.dumps(document))
    with pytest.raises(ValidationError, match=message):
        profile.read(path)


def test_the_committed_model_carries_its_training_data_profile() -> None:
    """The committed profile is the one the training data and the committed model give."""
    committed = profile.read(COMMITTED_PROFILE)
    features, target = train.load_data()
    x_train, x_test, _, y_test = train_test_split(
        features, target, test_size=train.TEST_SIZE, stratify=target, random_state=train.SEED
    )
    model = load(str(COMMITTED_MODEL)).model
    recomputed = profile.compute(
        {name: x_train[name].tolist() for name in train.FEATURES},
        model.predict_proba(x_test)[:, 1],
        y_test.to_numpy(),
    )
    assert committed == recomputed
    assert committed.features["Age"].bins == [
        "[0, 15)", "[15, 19)", "[19, 22)", "[22, 25)", "[25, 29)",
        "[29, 32)", "[32, 36)", "[36, 41)", "[41, 49)", "[49, +Inf)",
    ]  # fmt: skip
    assert (committed.features["Age"].rows, committed.features["Fare"].rows) == (574, 712)
    assert (round(committed.accuracy, 3), committed.held_out_rows) == (0.838, 179)


# A path from the root: "/work/...", "file:///work/...", "path: /home/..." (not "models:/m-1").
ABSOLUTE = re.compile(r"file:/|(?:^|[\s'\"=])/[\w.-]")


def absolute_paths(mlruns: Path) -> list[str]:
    """Every text in the store (database cells, text files) that holds an absolute path."""
    texts = []
    with contextlib.closing(sqlite3.connect(mlruns / "mlflow.db")) as db:
        tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            for row in db.execute(f'SELECT * FROM "{table}"'):
                texts += [f"{table}: {cell}" for cell in row if isinstance(cell, str)]
    for path in sorted(mlruns.rglob("*")):
        if path.is_file() and path.suffix in {"", ".yaml", ".json", ".txt"}:
            texts += [f"{path.name}: {line}" for line in path.read_text().splitlines()]
    return [text for text in texts if ABSOLUTE.search(text.split(": ", 1)[1])]


def test_the_committed_store_holds_no_absolute_path(tmp_path: Path) -> None:
    assert absolute_paths(REPO_ROOT / "mlruns") == []
    # The check finds one where MLflow would have written it.
    broken = tmp_path / "mlruns"
    shutil.copytree(REPO_ROOT / "mlruns", broken)
    with contextlib.closing(sqlite3.connect(broken / "mlflow.db")) as db, db:
        db.execute("UPDATE logged_models SET artifact_location = '/home/someone/mlruns/x'")
    (broken / "notes.txt").write_text("artifact_path: file:///home/someone/mlruns\n")
    assert absolute_paths(broken) == [
        "logged_models: /home/someone/mlruns/x",
        "notes.txt: artifact_path: file:///home/someone/mlruns",
    ]


def test_models_uri_resolves_in_a_clone_elsewhere(tmp_path: Path) -> None:
    """`models:/titanic-survival@champion` loads from another clone's root, with its profile."""
    clone = tmp_path / "elsewhere" / "titanic-mlops-tutorial"
    shutil.copytree(REPO_ROOT / "mlruns", clone / "mlruns")
    script = (
        "import mlflow.artifacts, mlflow.sklearn\n"
        "model = mlflow.sklearn.load_model('models:/titanic-survival@champion')\n"
        "print(type(model).__name__)\n"
        "print(mlflow.artifacts.download_artifacts("
        f"'models:/titanic-survival@champion/{profile.PROFILE_PATH}', dst_path='out'))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=clone,
        env={**os.environ, "MLFLOW_TRACKING_URI": "sqlite:///mlruns/mlflow.db"},
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    kind, downloaded = result.stdout.splitlines()[-2:]
    assert kind == "Pipeline"
    assert profile.read(clone / downloaded) == profile.read(COMMITTED_PROFILE)

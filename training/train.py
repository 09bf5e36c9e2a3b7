"""Train the Titanic survival model and store it with MLflow.

Run from the repository root::

    python -m training.train                  # writes into ./mlruns (the committed store)
    python -m training.train --mlruns /tmp/mr  # writes somewhere else

The model is a scikit-learn ``Pipeline`` that takes the seven raw passenger
fields the API receives (``Pclass, Sex, Age, SibSp, Parch, Fare, Embarked``)
and does its own imputation and encoding, so the served model needs no
preprocessing outside itself.

Everything MLflow records goes under one folder (``--mlruns``):

* ``<DIR>/mlflow.db``: the tracking store (runs, params, metrics, the model
  registry) in SQLite;
* ``<DIR>/<experiment name>/models/<model id>/artifacts``: the model itself, with
  its reference profile in ``extra_files/reference_profile.json``
  (``titanic_api.profile``: the training data's distributions, for drift metrics).

The committed store (the repository's ``mlruns/``) holds no absolute path:
every artifact location is recorded relative to the repository root, so
``models:/`` URIs work in any clone, from its root. A store elsewhere
(``--mlruns``) is this machine's own: MLflow records absolute paths there, so
its ``models:/`` URIs work from any directory.

The model is registered as ``titanic-survival`` with the alias ``champion``.
"""

from __future__ import annotations

import argparse
import contextlib
import sqlite3
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.models.model import ModelInfo
from mlflow.tracking import MlflowClient
from mlflow.types import ColSpec, Schema
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from titanic_api import profile

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA_PATH = REPO_ROOT / "data" / "titanic.csv"
DEFAULT_MLRUNS = REPO_ROOT / "mlruns"

EXPERIMENT_NAME = "titanic-survival"
REGISTERED_MODEL_NAME = "titanic-survival"
ALIAS = "champion"

NUMERIC_FEATURES = ["Age", "SibSp", "Parch", "Fare"]
CATEGORICAL_FEATURES = ["Pclass", "Sex", "Embarked"]
FEATURES = ["Pclass", "Sex", "Age", "SibSp", "Parch", "Fare", "Embarked"]
TARGET = "Survived"

SEED = 42
TEST_SIZE = 0.2
CLASSIFIER_PARAMS = {"n_estimators": 200, "learning_rate": 0.05, "max_depth": 3}

# What the model takes and gives, written out rather than inferred from a
# sample: the same seven fields, with the same types, that the API validates.
SIGNATURE = ModelSignature(
    inputs=Schema(
        [
            ColSpec("long", "Pclass"),
            ColSpec("string", "Sex"),
            ColSpec("double", "Age"),
            ColSpec("long", "SibSp"),
            ColSpec("long", "Parch"),
            ColSpec("double", "Fare"),
            ColSpec("string", "Embarked"),
        ]
    ),
    outputs=Schema([ColSpec("long", "Survived")]),
)

# MLflow 3 saves scikit-learn models with skops, which loads only types it knows
# are safe. scikit-learn's estimators are on skops' own list; these two are
# the only other types this pipeline contains. Trust them by name, never
# "everything" (skops.io.get_untrusted_types() lists what a file needs).
SKOPS_TRUSTED_TYPES = ["numpy.dtype", "sklearn.tree._tree.Tree"]
# MLflow records the script's absolute path as the source; this is the same, from the clone.
SOURCE_TAGS = {"mlflow.source.name": "training/train.py"}


@dataclass(frozen=True)
class TrainingResult:
    """Where the model went and how well it did on the hold-out set."""

    tracking_uri: str
    experiment_id: str
    run_id: str
    model_id: str
    model_path: Path
    version: str
    metrics: dict[str, float]


def build_pipeline() -> Pipeline:
    """The whole model: imputation, encoding and the classifier in one object."""
    numeric = SimpleImputer(strategy="median")  # 177 passengers have no Age
    categorical = Pipeline(
        [
            ("impute", SimpleImputer(strategy="most_frequent")),  # 2 have no Embarked
            ("encode", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
        ]
    )
    preprocess = ColumnTransformer(
        [("numeric", numeric, NUMERIC_FEATURES), ("categorical", categorical, CATEGORICAL_FEATURES)]
    )
    classifier = GradientBoostingClassifier(**CLASSIFIER_PARAMS, random_state=SEED)
    return Pipeline([("preprocess", preprocess), ("classifier", classifier)])


def load_data(path: Path = DATA_PATH) -> tuple[pd.DataFrame, pd.Series]:
    """The seven raw features, typed as the API sends them, and the target."""
    frame = pd.read_csv(path)
    features = frame[FEATURES].astype(
        {"Pclass": "int64", "SibSp": "int64", "Parch": "int64", "Age": "float64", "Fare": "float64"}
    )
    return features, frame[TARGET]


def evaluate(model: Pipeline, features: pd.DataFrame, target: pd.Series) -> dict[str, float]:
    """The hold-out metrics the run logs (the threshold for a survivor is 0.5)."""
    probabilities = model.predict_proba(features)[:, 1]
    predictions = (probabilities >= 0.5).astype(int)
    return {
        "accuracy": accuracy_score(target, predictions),
        "precision": precision_score(target, predictions),
        "recall": recall_score(target, predictions),
        "f1": f1_score(target, predictions),
        "roc_auc": roc_auc_score(target, probabilities),
    }


@contextlib.contextmanager
def tracking_store(mlruns: Path, relative: bool) -> Iterator[tuple[str, str]]:
    """Point MLflow at the store in ``mlruns``; yield its tracking URI and the experiment's id.

    With a SQLite store MLflow's default artifact root is ./mlruns relative to the
    *current directory*; the experiment's artifact folder is named explicitly so
    the model always lands beside the database.

    ``relative``: MLflow turns every local artifact location into an absolute path
    when it creates an experiment (the default one included) and derives the
    locations of runs, logged models and model versions from it; it has no setting
    to keep them relative. So the two experiments' locations are set relative in
    the store itself, once, before anything is logged; then, working in the folder
    that holds ``mlruns``, MLflow derives, writes and reads relative locations
    (``tests/titanic_api/test_profile.py`` checks that the committed store holds no
    absolute path).
    """
    folder = mlruns.parent if relative else Path.cwd()
    with contextlib.chdir(folder):
        tracking_uri = f"sqlite:///{mlruns.relative_to(folder) if relative else mlruns}/mlflow.db"
        mlflow.set_tracking_uri(tracking_uri)
        mlflow.set_registry_uri(tracking_uri)
        experiment = mlflow.get_experiment_by_name(EXPERIMENT_NAME)
        if experiment is not None:
            yield tracking_uri, experiment.experiment_id
            return
        experiment_id = mlflow.create_experiment(
            EXPERIMENT_NAME, artifact_location=(mlruns / EXPERIMENT_NAME).as_uri()
        )
        if relative:
            with contextlib.closing(sqlite3.connect(mlruns / "mlflow.db")) as db, db:
                db.executemany(
                    "UPDATE experiments SET artifact_location = ? WHERE experiment_id = ?",
                    [(f"{mlruns.name}/0", 0), (f"{mlruns.name}/{EXPERIMENT_NAME}", experiment_id)],
                )
        yield tracking_uri, experiment_id


def run_params(x_train: pd.DataFrame, x_test: pd.DataFrame) -> dict[str, object]:
    """The run's parameters: the classifier's, the seed and the split."""
    return {
        "classifier": "GradientBoostingClassifier",
        **CLASSIFIER_PARAMS,
        "seed": SEED,
        "test_size": TEST_SIZE,
        "train_rows": len(x_train),
        "test_rows": len(x_test),
    }


def log_model(
    model: Pipeline, example: pd.DataFrame, experiment_id: str, reference_file: Path
) -> ModelInfo:
    """Log the model to the active run as skops and register it under REGISTERED_MODEL_NAME."""
    return mlflow.sklearn.log_model(
        model,
        name="model",
        signature=SIGNATURE,
        input_example=example,
        registered_model_name=REGISTERED_MODEL_NAME,
        serialization_format="skops",
        skops_trusted_types=SKOPS_TRUSTED_TYPES,
        # The model file does not know its experiment; the prediction log wants it.
        metadata={"experiment_id": experiment_id},
        extra_files=[str(reference_file)],
        tags=SOURCE_TAGS,
    )


def train(mlruns: Path = DEFAULT_MLRUNS, data_path: Path = DATA_PATH) -> TrainingResult:
    """Train, evaluate, log and register the model (and its reference profile) under ``mlruns``."""
    mlruns = mlruns.resolve()
    relative = mlruns == DEFAULT_MLRUNS.resolve()
    data_path = data_path.resolve()
    mlruns.mkdir(parents=True, exist_ok=True)
    features, target = load_data(data_path)
    x_train, x_test, y_train, y_test = train_test_split(
        features, target, test_size=TEST_SIZE, stratify=target, random_state=SEED
    )
    model = build_pipeline().fit(x_train, y_train)
    metrics = evaluate(model, x_test, y_test)
    reference = profile.compute(
        {name: x_train[name].tolist() for name in FEATURES},
        model.predict_proba(x_test)[:, 1],
        y_test.to_numpy(),
    )

    with (
        tracking_store(mlruns, relative) as (tracking_uri, experiment_id),
        tempfile.TemporaryDirectory() as scratch,
        mlflow.start_run(
            experiment_id=experiment_id, run_name="gradient-boosting", tags=SOURCE_TAGS
        ) as run,
    ):
        mlflow.log_params(run_params(x_train, x_test))
        mlflow.log_metrics(metrics)
        # Saved with the model, in its folder: extra_files/reference_profile.json.
        reference_file = profile.write(reference, Path(scratch) / profile.PROFILE_FILE)
        model_info = log_model(model, x_train.head(3), experiment_id, reference_file)
        version = str(model_info.registered_model_version)
        MlflowClient(tracking_uri).set_registered_model_alias(REGISTERED_MODEL_NAME, ALIAS, version)

    model_path = mlruns / EXPERIMENT_NAME / "models" / model_info.model_id / "artifacts"
    return TrainingResult(
        tracking_uri=f"sqlite:///{mlruns / 'mlflow.db'}",
        experiment_id=experiment_id,
        run_id=run.info.run_id,
        model_id=model_info.model_id,
        model_path=model_path,
        version=version,
        metrics=metrics,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--mlruns",
        type=Path,
        default=DEFAULT_MLRUNS,
        help="folder for the tracking database and artifacts (default: the repository's mlruns/)",
    )
    args = parser.parse_args(argv)
    result = train(args.mlruns)
    print("Hold-out metrics: " + ", ".join(f"{k}={v:.3f}" for k, v in result.metrics.items()))
    print(f"Tracking store:   {result.tracking_uri}")
    print(f"Run:              {result.run_id} (experiment {result.experiment_id})")
    print(f"Registered:       models:/{REGISTERED_MODEL_NAME}@{ALIAS} (version {result.version})")
    print(f"Model files:      {result.model_path}")
    serve = "uvicorn lessons.fastapi_04_02_single_app:app"
    print(f"Serve it:         TITANIC_MODEL_URI={result.model_path} {serve}")


if __name__ == "__main__":
    main()

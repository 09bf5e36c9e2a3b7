"""The BentoML peer: the committed MLflow model, imported with ``bentoml.mlflow``, behind one API.

It runs in BentoML's own virtual environment, which ``benchmarks.peers`` makes
(BentoML is not one of the course's requirements). ``python bentoml_service.py
MODEL_URI`` imports the model into the store that ``BENTOML_HOME`` names;
``bentoml serve bentoml_service:Titanic`` then serves it: ``POST /predict`` with
``{"passengers": [...]}``, the passengers as the package takes them, answers
their class probabilities, as BentoML's documentation for MLflow models shows.
"""

import sys
from typing import Annotated

import bentoml
import numpy as np
import pandas as pd
from bentoml.validators import DataframeSchema

FEATURES = ["Pclass", "Sex", "Age", "SibSp", "Parch", "Fare", "Embarked"]
MODEL_TAG = "titanic:latest"


@bentoml.service(workers=1)
class Titanic:
    bento_model = bentoml.models.BentoModel(MODEL_TAG)

    def __init__(self) -> None:
        self.model = bentoml.mlflow.load_model(self.bento_model)

    @bentoml.api
    def predict(
        self,
        passengers: Annotated[pd.DataFrame, DataframeSchema(orient="records", columns=FEATURES)],
    ) -> np.ndarray:
        return np.asarray(self.model.predict(passengers))


if __name__ == "__main__":
    bentoml.mlflow.import_model(MODEL_TAG.split(":")[0], sys.argv[1])

"""What the benchmark measures: the servers, the scenarios, and each server's protocol."""

from __future__ import annotations

import json
import os
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

import numpy as np

from benchmarks.load import Run
from titanic_api.simulation import random_passenger
from tools.servers import ServerProcess

Passengers = list[dict[str, object]]


class Scenario(Enum):
    """One kind of load; a server takes part in the scenarios its ``Target`` lists."""

    SINGLE_1 = "single predictions, 1 client"
    SINGLE_8 = "single predictions, 8 clients"
    BATCH_100 = "100-passenger batches, alternating with the other servers"
    BATCH_1000 = "1,000-passenger batches, alternating with the other servers"
    METRICS = "/metrics scrapes"
    BACK_TO_BACK = "1,000-passenger batches back to back from one client"
    PAIRED = "single predictions alternating with the model in process"


BATCHES = {100: Scenario.BATCH_100, 1_000: Scenario.BATCH_1000}
SINGLES = {1: Scenario.SINGLE_1, 8: Scenario.SINGLE_8}
COMMON = (Scenario.SINGLE_1, Scenario.SINGLE_8, Scenario.BATCH_100, Scenario.BATCH_1000)


class Server(Enum):
    """Every server of the report; the value is its label."""

    PACKAGE = "titanic_api"
    PACKAGE_QUALITY_OFF = "titanic_api, model-quality features off"
    MLFLOW = "mlflow models serve"
    MLSERVER = "MLServer (mlserver-mlflow)"
    BENTOML = "BentoML (bentoml.mlflow)"
    LESSON_04_02 = "fastapi_04_02_single_app"
    LESSON_05 = "fastapi_05_batch_test_app"
    LESSON_P03 = "prometheus_03_logging_app"
    LESSON_FINAL = "prometheus_04_multi_execute_app"
    PACKAGE_LONG_LOG = "titanic_api, 50,000 lines logged first"
    PACKAGE_TWO_WORKERS = "titanic_api, gunicorn with 2 workers"


PEERS = (Server.MLFLOW, Server.MLSERVER, Server.BENTOML)
PREFILL_LINES = 50_000


@dataclass(frozen=True)
class Api:
    """How to ask a server for predictions, and where its answer holds the probabilities."""

    predict_path: str
    batch_path: str | None
    wrap: Callable[[Passengers], object]  # passengers -> the JSON body
    probabilities: Callable[[object], np.ndarray] | None = None  # JSON answer -> (n, 2)


def lesson_body(passengers: Passengers) -> object:
    """A lesson (and the package) takes one passenger as an object and a batch as a list."""
    return passengers[0] if len(passengers) == 1 else passengers


def mlflow_body(passengers: Passengers) -> object:
    """MLflow's scoring server takes rows as ``dataframe_records``, one or many."""
    return {"dataframe_records": passengers}


# The model's signature: Pclass, SibSp, Parch are longs; Age and Fare doubles; the rest text.
V2_TYPES = {"Pclass": "INT64", "SibSp": "INT64", "Parch": "INT64", "Age": "FP64", "Fare": "FP64"}
FEATURES = ("Pclass", "Sex", "Age", "SibSp", "Parch", "Fare", "Embarked")


def v2_body(passengers: Passengers) -> object:
    """The V2 (Open Inference) protocol: one input tensor per column, decoded as a DataFrame."""
    return {
        "parameters": {"content_type": "pd"},
        "inputs": [
            {
                "name": name,
                "shape": [len(passengers), 1],
                "datatype": V2_TYPES.get(name, "BYTES"),
                "data": [passenger[name] for passenger in passengers],
                **({} if name in V2_TYPES else {"parameters": {"content_type": "str"}}),
            }
            for name in FEATURES
        ],
    }


def bentoml_body(passengers: Passengers) -> object:
    """BentoML's service API: the method's arguments by name (benchmarks/bentoml_service.py)."""
    return {"passengers": passengers}


def v2_probabilities(answer: object) -> np.ndarray:
    [output] = answer["outputs"]  # type: ignore[index]
    return np.asarray(output["data"], dtype=float).reshape(output["shape"])


def mlflow_probabilities(answer: object) -> np.ndarray:
    return np.asarray(answer["predictions"], dtype=float)  # type: ignore[index]


def plain_probabilities(answer: object) -> np.ndarray:
    return np.asarray(answer, dtype=float)


LESSON_API = Api("/predict_single", "/predict_batch", lesson_body)
SINGLE_ONLY_API = Api("/predict_single", None, lesson_body)
MLFLOW_API = Api("/invocations", "/invocations", mlflow_body, mlflow_probabilities)
V2_API = Api("/v2/models/titanic/infer", "/v2/models/titanic/infer", v2_body, v2_probabilities)
BENTOML_API = Api("/predict", "/predict", bentoml_body, plain_probabilities)


@dataclass
class Target:
    """One server under test, how to talk to it, and what it measured."""

    name: Server
    server: ServerProcess
    api: Api
    scenarios: tuple[Scenario, ...]
    log_dir: Path | None = None
    versions: dict[str, str] = field(default_factory=dict)
    start_to_first_prediction: float = float("nan")
    start_cpu: float = float("nan")  # CPU seconds the server's processes used until then
    log_lines_before: int = 0
    log_lines_after: int = 0
    runs: dict[Scenario, list[Run]] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return self.name.value

    def body(self, passengers: Passengers) -> bytes:
        return json.dumps(self.api.wrap(passengers)).encode()

    def record(self, scenario: Scenario, run: Run) -> None:
        self.runs.setdefault(scenario, []).append(run)


def make_passengers(count: int, seed: int = 2026) -> Passengers:
    """Valid, varied passengers (the same every run), drawn like tools.traffic draws them."""
    rng = random.Random(seed)
    return [random_passenger(rng) for _ in range(count)]


def cpu_seconds(pid: int) -> float:
    """CPU time used so far by a process and its children (Linux /proc; NaN elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                total += cpu_seconds(int(child))
        return total
    except (OSError, ValueError, IndexError):
        return float("nan")


def count_lines(folder: Path | None) -> int:
    if folder is None:
        return 0
    total = 0
    for path in folder.glob("*.jsonl"):
        with path.open("rb") as file:
            total += sum(1 for _ in file)
    return total

"""The model's own limit: the committed model called in the benchmark's process, no HTTP."""

from __future__ import annotations

import json
import os
import statistics
import time
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.load import Run
from benchmarks.targets import Passengers
from tools.servers import QUIET_ENV


class ModelLimit:
    """What no server can beat: the same work in one process, without a server around it.

    - ``predict_proba`` alone on 1 and on 1,000 passengers (``medians``);
    - the whole of a batch's necessary work, parsing the 1,000-passenger JSON body
      into a DataFrame and calling ``predict_proba``, with its wall and CPU time
      (``batches``): the servers' CPU per batch is compared with it;
    - one-passenger calls alternating with a server's single predictions (``paired``).
    """

    def __init__(self, model: Path, passengers: Passengers) -> None:
        os.environ.update(QUIET_ENV)
        import mlflow.sklearn

        self.model = mlflow.sklearn.load_model(str(model))
        self.frames = {size: pd.DataFrame(passengers[:size]) for size in (1, 1_000)}
        self.body = json.dumps(passengers[:1_000]).encode()
        self.medians: list[dict[int, float]] = []  # per round: rows -> median seconds
        self.paired: list[Run] = []  # per round: 1-row calls alternating with the server
        self.batches: list[Run] = []  # per round: parse + predict_proba, back to back

    def probabilities(self, passengers: Passengers) -> np.ndarray:
        """``Pipeline.predict_proba``: what every server must answer, bit for bit."""
        return np.asarray(self.model.predict_proba(pd.DataFrame(passengers)))

    def predict_one(self) -> bool:
        self.model.predict_proba(self.frames[1])
        return True

    def parse_and_predict(self) -> np.ndarray:
        """A batch's necessary work: its JSON body to a DataFrame, and the model's call."""
        return np.asarray(self.model.predict_proba(pd.DataFrame(json.loads(self.body))))

    def batches_back_to_back(self, repeat: int) -> Run:
        """``repeat`` batches one after the other: wall time of each, CPU time of all."""
        run = Run(requests=repeat)
        cpu_before = time.process_time()
        began = time.perf_counter()
        for _ in range(repeat):
            sent = time.perf_counter()
            self.parse_and_predict()
            run.latencies.append(time.perf_counter() - sent)
        run.elapsed = time.perf_counter() - began
        run.server_cpu = time.process_time() - cpu_before
        return run

    def measure(self, repeat: dict[int, int]) -> None:
        """Median time of ``predict_proba`` on 1 and on 1,000 rows."""
        medians = {}
        for size, frame in self.frames.items():
            self.model.predict_proba(frame)
            durations = []
            for _ in range(repeat[size]):
                began = time.perf_counter()
                self.model.predict_proba(frame)
                durations.append(time.perf_counter() - began)
            medians[size] = statistics.median(durations)
        self.medians.append(medians)

"""The prediction service: predict, record (metrics and log), simulate.

The routes (``titanic_api.routes``) only speak HTTP; everything a prediction
does besides calling the model happens here, so it can be tested and reused
without a request.
"""

import random
from datetime import UTC, datetime
from typing import Any

import numpy as np
from fastapi import BackgroundTasks

from titanic_api import model as model_module
from titanic_api.feedback import new_ids
from titanic_api.feedback_metrics import ModelMonitor
from titanic_api.metrics import Metrics
from titanic_api.prediction_log import PredictionLog
from titanic_api.schemas import Outcome, Passenger
from titanic_api.simulation import random_passenger


class PredictionService:
    """Predictions with their bookkeeping: the model metrics and the prediction log."""

    def __init__(
        self,
        metrics: Metrics,
        log: PredictionLog,
        model_details: dict[str, object],
        monitor: ModelMonitor | None = None,
    ) -> None:
        self.metrics = metrics
        self.log = log
        self.model_details = model_details
        # Model monitoring (titanic_api.feedback_metrics): ids, drift counts, labels.
        self.monitor = monitor

    def predict(
        self,
        model: Any,
        passengers: list[dict[str, object]],
        kind: str,
        background: BackgroundTasks,
    ) -> list[Outcome]:
        """One model call for any number of passengers; the bookkeeping follows the answer.

        Called on the event loop (the endpoints are ``async``): a prediction is CPU
        work under the GIL, so a thread pool would only add two thread switches per
        request and make threads take turns; one worker process uses one core either
        way, and more cores need more worker processes (``titanic_api/gunicorn_conf.py``).
        The price: while a prediction runs, the worker answers nothing else, /health
        and /ready included (docs/performance.md has the figures).

        FastAPI runs background tasks after the answer's last byte is sent: the
        client does not wait for the metrics and the log lines. A normal stop
        (SIGTERM) waits for them; a process killed in between loses them.
        """
        probabilities = model_module.predict_proba(model, passengers)
        predictions: list[Outcome] = probabilities.argmax(axis=1).tolist()
        background.add_task(self.record, kind, passengers, predictions, probabilities)
        return predictions

    async def predict_real(
        self,
        model: Any,
        passengers: list[dict[str, object]],
        kind: str,
        background: BackgroundTasks,
    ) -> tuple[list[Outcome], list[str]]:
        """``predict`` for real traffic: each prediction gets an id, stored before the answer.

        So any id a client holds is already known to every worker and replica; the
        drift counts follow the answer with the metrics and the log lines.
        """
        probabilities = model_module.predict_proba(model, passengers)
        predictions: list[Outcome] = probabilities.argmax(axis=1).tolist()
        if self.monitor is None:
            ids = new_ids(len(predictions))
        else:
            ids = await self.monitor.remember(probabilities[:, 1], predictions)
        background.add_task(self.record, kind, passengers, predictions, probabilities, ids)
        return predictions, ids

    def simulate(
        self, model: Any, count: int, seed: int | None, background: BackgroundTasks
    ) -> tuple[list[Passenger], list[Outcome]]:
        """``count`` random passengers (the same ones for the same seed) and their predictions."""
        rng = random.Random(seed)
        passengers = [Passenger.model_validate(random_passenger(rng)) for _ in range(count)]
        records = [vars(passenger) for passenger in passengers]
        return passengers, self.predict(model, records, "simulation", background)

    async def record(
        self,
        kind: str,
        passengers: list[dict[str, object]],
        predictions: list[Outcome],
        probabilities: np.ndarray,
        ids: list[str] | None = None,
    ) -> None:
        """Update the model metrics and append one log line per passenger.

        ``ids``: real traffic's prediction ids (none for simulated passengers), added
        to its log lines; real passengers are also counted into the reference
        profile's bins.

        ``async`` although it never awaits: FastAPI runs an async background task
        on the event loop itself, where a plain function would cost one more trip
        to the thread pool.
        """
        ages = np.fromiter((p["Age"] for p in passengers), dtype=float, count=len(passengers))
        survivors = sum(predictions)
        self.metrics.record_predictions(kind, ages, probabilities[:, 1], survivors)
        records = [
            {
                **passenger,
                "prediction": prediction,
                "probability": {"Not Survived": p_not, "Survived": p_yes},
            }
            for passenger, prediction, (p_not, p_yes) in zip(
                passengers, predictions, probabilities.tolist(), strict=True
            )
        ]
        if ids is not None:
            if self.monitor is not None:
                columns = {name: [p[name] for p in passengers] for name in model_module.FEATURES}
                self.monitor.observe(columns, probabilities[:, 1])
            for record, prediction_id in zip(records, ids, strict=True):
                record["prediction_id"] = prediction_id
        shared = {
            "execution_time": datetime.now(UTC).isoformat(),
            **self.model_details,
            "prediction_type": kind,
        }
        self.log.write(shared, records)

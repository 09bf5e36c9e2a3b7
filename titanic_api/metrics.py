"""The service's metrics, the golden-signals middleware and the /metrics answer.

From the monitoring lessons (P00 to P04): the same names, types, labels and
buckets. What changes here:

- **Bulk histograms.** A 1,000-passenger batch observes 2,000 values (ages and
  survival probabilities). ``BulkHistogram`` is a prometheus_client *custom
  collector*: it counts a whole batch into its buckets with numpy in one call.
  In multiprocess mode a custom collector cannot share its values with the other
  workers, so there the classic ``Histogram`` (observed value by value) is used.
- **Bounded labels.** The method label takes the standard methods only; any
  other method a client invents is counted as ``other`` (as in the lessons).
- **OpenMetrics** when the scraper's ``Accept`` header asks for it
  (prometheus_client's own ``choose_encoder``), the classic text format otherwise.
- **Multiprocess mode** (``PROMETHEUS_MULTIPROC_DIR``): /metrics adds up every
  worker's files; ``titanic_api/gunicorn_conf.py`` calls ``mark_process_dead``
  when a worker exits, so its live gauges leave the totals.
"""

import threading
import time
from collections.abc import Iterable, Iterator, Sequence

import numpy as np
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    multiprocess,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from titanic_api.feedback_metrics import QualityMetrics
from titanic_api.schemas import SURVIVAL_STATUS

UNMATCHED = "<unmatched>"
OTHER_METHOD = "other"
# RFC 9110's methods and PATCH: every other method a client sends is counted as "other".
METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}
)
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
AGE_BUCKETS = (5, 12, 18, 25, 35, 45, 55, 65, 80, 100)
PROBABILITY_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


class BulkHistogram(Collector):
    """A histogram without labels that takes a whole array of observations at once.

    ``np.searchsorted`` finds each value's bucket (the first upper bound >= the
    value, as Prometheus' ``le`` means), ``np.bincount`` counts them: a handful
    of numpy calls for 1,000 values instead of 1,000 Python calls.
    """

    def __init__(
        self, name: str, documentation: str, buckets: Sequence[float], registry: CollectorRegistry
    ) -> None:
        self.name = name
        self.documentation = documentation
        self.bounds = np.array([*buckets, float("inf")], dtype=float)
        self._counts = np.zeros(len(self.bounds), dtype=np.int64)
        self._sum = 0.0
        self._created = time.time()
        self._lock = threading.Lock()
        registry.register(self)

    def observe_many(self, values: np.ndarray) -> None:
        counts = np.bincount(
            np.searchsorted(self.bounds, values, side="left"), minlength=len(self.bounds)
        )
        total = float(values.sum())
        with self._lock:
            self._counts += counts
            self._sum += total

    def collect(self) -> Iterable[Metric]:
        with self._lock:
            cumulative = np.cumsum(self._counts).tolist()
            total = self._sum
        metric = Metric(self.name, self.documentation, "histogram")
        for bound, count in zip(self.bounds.tolist(), cumulative, strict=True):
            metric.add_sample(f"{self.name}_bucket", {"le": floatToGoString(bound)}, count)
        metric.add_sample(f"{self.name}_count", {}, cumulative[-1])
        metric.add_sample(f"{self.name}_sum", {}, total)
        metric.add_sample(f"{self.name}_created", {}, self._created)
        return [metric]


class ClassicHistogram:
    """The same ``observe_many`` on prometheus_client's Histogram (for multiprocess mode)."""

    def __init__(
        self, name: str, documentation: str, buckets: Sequence[float], registry: CollectorRegistry
    ) -> None:
        self.histogram = Histogram(name, documentation, buckets=buckets, registry=registry)

    def observe_many(self, values: np.ndarray) -> None:
        for value in values.tolist():
            self.histogram.observe(value)


class Metrics:
    """Every metric of the service, in its own registry (never prometheus_client's global one)."""

    def __init__(self, multiprocess_mode: bool = False) -> None:
        self.multiprocess_mode = multiprocess_mode
        self.registry = registry = CollectorRegistry()
        if not multiprocess_mode:
            # CPU and memory are per process: multiprocess mode cannot add them up.
            ProcessCollector(registry=registry)
        self.predictions = Counter(
            "titanic_predictions", "Passengers the model has predicted for.", registry=registry
        )
        self.requests = Counter(
            "http_requests",
            "HTTP requests answered, by method, route template and status code.",
            ["method", "endpoint", "status_code"],
            registry=registry,
        )
        self.latency = Histogram(
            "http_request_duration_seconds",
            "Time to answer an HTTP request, by route template.",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.errors = Counter(
            "http_errors",
            "HTTP requests that failed on the server side (status 500 or above).",
            ["method", "endpoint"],
            registry=registry,
        )
        self.in_progress = Gauge(
            "http_requests_in_progress",
            "HTTP requests being answered right now.",
            registry=registry,
            multiprocess_mode="livesum",  # with several workers: the sum over the live ones
        )
        self.predicted_class = Counter(
            "titanic_predictions_output",
            "Passengers predicted, by predicted class.",
            ["predicted_class"],
            registry=registry,
        )
        self.prediction_type = Counter(
            "prediction_type",
            "Prediction requests, by kind: single, batch or simulation.",
            ["type"],
            registry=registry,
        )
        histogram = ClassicHistogram if multiprocess_mode else BulkHistogram
        self.ages = histogram(
            "passenger_age_distribution",
            "Ages of the passengers sent for prediction, in years.",
            AGE_BUCKETS,
            registry,
        )
        self.survival_probability = histogram(
            "titanic_survival_probability",
            "The model's probability that a passenger survived.",
            PROBABILITY_BUCKETS,
            registry,
        )
        self.log_errors = Counter(
            "prediction_log_errors",
            "Predictions that could not be written to the prediction log.",
            registry=registry,
        )
        # Model monitoring: drift, ids and labels (titanic_api.feedback_metrics).
        self.quality = QualityMetrics(registry, multiprocess_mode)
        # The labelled series exist from the start, so they read 0 before the first prediction.
        for status in SURVIVAL_STATUS.values():
            self.predicted_class.labels(status)
        for kind in ("single", "batch", "simulation"):
            self.prediction_type.labels(kind)

    def record_predictions(
        self, kind: str, ages: np.ndarray, probabilities: np.ndarray, survivors: int
    ) -> None:
        """The model metrics for one request's passengers (``probabilities``: of survival)."""
        count = len(probabilities)
        self.prediction_type.labels(kind).inc()
        self.predictions.inc(count)
        self.predicted_class.labels("Survived").inc(survivors)
        self.predicted_class.labels("Not Survived").inc(count - survivors)
        self.ages.observe_many(ages)
        self.survival_probability.observe_many(probabilities)

    def exposition(self, accept: str | None) -> tuple[bytes, str]:
        """The body and content type of a /metrics answer for this ``Accept`` header."""
        encoder, content_type = choose_encoder(accept or "")
        if self.multiprocess_mode:
            combined = CollectorRegistry()
            multiprocess.MultiProcessCollector(combined)
            for collector in self.quality.extra_collectors():  # the reference gauges
                combined.register(collector)
            return encoder(combined), content_type
        return encoder(self.registry), content_type


def bounded_method(method: str) -> str:
    return method if method in METHODS else OTHER_METHOD


class GoldenSignals:
    """Count, time and classify every request except scrapes of /metrics (pure ASGI).

    The clock stops when the last byte of the answer is sent: the latency is the
    client's wait, not the bookkeeping that follows (see ``titanic_api.routes``).
    """

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] == "/metrics":
            await self.app(scope, receive, send)
            return
        metrics = self.metrics
        start = time.perf_counter()
        status_code = 500  # stays 500 if the endpoint raises before answering
        counted = False

        def count() -> None:
            """Record the request once: when its answer is sent, or when it fails."""
            nonlocal counted
            if counted:
                return
            counted = True
            endpoint = route_template(scope)
            method = bounded_method(scope["method"])
            metrics.requests.labels(method, endpoint, str(status_code)).inc()
            metrics.latency.labels(endpoint).observe(time.perf_counter() - start)
            if status_code >= 500:
                metrics.errors.labels(method, endpoint).inc()
            metrics.in_progress.dec()

        async def send_and_note_status(message: Message) -> None:
            nonlocal status_code
            if message["type"] == "http.response.start":
                status_code = message["status"]
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                count()

        metrics.in_progress.inc()
        try:
            await self.app(scope, receive, send_and_note_status)
        finally:
            count()


def route_template(scope: Scope) -> str:
    """The path template of the route that answered ("/predict_single"), or UNMATCHED.

    FastAPI notes the path operation it matched in the scope; the documentation
    pages (/docs, /openapi.json) are plain Starlette routes that do not, so those
    are looked up among the app's routes.
    """
    route = scope.get("route")
    if route is not None:
        return str(route.path)
    app = scope.get("app")
    routes: Iterator[object] = iter(getattr(getattr(app, "router", None), "routes", ()))
    for candidate in routes:
        if candidate.matches(scope)[0] is Match.FULL:  # type: ignore[attr-defined]
            return str(getattr(candidate, "path", UNMATCHED))
    return UNMATCHED

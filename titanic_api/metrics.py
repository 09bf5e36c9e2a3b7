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
- **Simulated passengers apart**: the age and probability histograms carry a
  ``kind`` label, ``user`` or ``simulation`` (``POST /simulate_predictions``).
"""

import fcntl
import os
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

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
from prometheus_client.mmap_dict import MmapedDict
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
# Why a request was refused before an endpoint answered it (http_refusals_total's reason):
# 503 past the concurrency limit, 408 for a head or a body that came too slowly,
# 413 for an announced body over the limit, 400 for a request HTTP/1.1 forbids, and a
# connection dropped because its client read too little of an answer for too long.
REFUSAL_REASONS = (
    "overload",
    "header_timeout",
    "body_timeout",
    "too_large",
    "invalid_http",
    "send_timeout",
)


# The ``kind`` label of the passenger histograms: real requests, or simulated passengers.
USER, SIMULATION = "user", "simulation"
KINDS = (USER, SIMULATION)


class BulkHistogram(Collector):
    """A histogram by ``kind`` that takes a whole array of observations at once.

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
        self._counts = {kind: np.zeros(len(self.bounds), dtype=np.int64) for kind in KINDS}
        self._sums = dict.fromkeys(KINDS, 0.0)
        self._created = time.time()
        self._lock = threading.Lock()
        registry.register(self)

    def observe_many(self, values: np.ndarray, kind: str) -> None:
        counts = np.bincount(
            np.searchsorted(self.bounds, values, side="left"), minlength=len(self.bounds)
        )
        total = float(values.sum())
        with self._lock:
            self._counts[kind] += counts
            self._sums[kind] += total

    def collect(self) -> Iterable[Metric]:
        with self._lock:
            cumulative = {kind: np.cumsum(self._counts[kind]).tolist() for kind in KINDS}
            sums = dict(self._sums)
        metric = Metric(self.name, self.documentation, "histogram")
        for kind in KINDS:
            for bound, count in zip(self.bounds.tolist(), cumulative[kind], strict=True):
                labels = {"kind": kind, "le": floatToGoString(bound)}
                metric.add_sample(f"{self.name}_bucket", labels, count)
            metric.add_sample(f"{self.name}_count", {"kind": kind}, cumulative[kind][-1])
            metric.add_sample(f"{self.name}_sum", {"kind": kind}, sums[kind])
            metric.add_sample(f"{self.name}_created", {"kind": kind}, self._created)
        return [metric]


class ClassicHistogram:
    """The same ``observe_many`` on prometheus_client's Histogram (for multiprocess mode)."""

    def __init__(
        self, name: str, documentation: str, buckets: Sequence[float], registry: CollectorRegistry
    ) -> None:
        self.histogram = Histogram(
            name, documentation, ["kind"], buckets=buckets, registry=registry
        )
        for kind in KINDS:
            self.histogram.labels(kind)

    def observe_many(self, values: np.ndarray, kind: str) -> None:
        child = self.histogram.labels(kind)
        for value in values.tolist():
            child.observe(value)


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
        self._add_golden_signals(registry)
        self._add_model_metrics(registry, multiprocess_mode)
        self._add_refusal_metrics(registry)
        # Model monitoring: drift, ids and labels (titanic_api.feedback_metrics).
        self.quality = QualityMetrics(registry, multiprocess_mode)

    def _add_golden_signals(self, registry: CollectorRegistry) -> None:
        """Traffic, latency, errors and saturation, by route template."""
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

    def _add_model_metrics(self, registry: CollectorRegistry, multiprocess_mode: bool) -> None:
        """What the model answered: classes, request kinds, ages, survival probability."""
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
        # The labelled series exist from the start, so they read 0 before the first prediction.
        for status in SURVIVAL_STATUS.values():
            self.predicted_class.labels(status)
        for kind in ("single", "batch", "simulation"):
            self.prediction_type.labels(kind)

    def _add_refusal_metrics(self, registry: CollectorRegistry) -> None:
        """Predictions the log could not keep, and requests refused before an endpoint."""
        self.log_errors = Counter(
            "prediction_log_errors",
            "Predictions that could not be written to the prediction log.",
            registry=registry,
        )
        self.refusals = Counter(
            "http_refusals",
            "Requests refused before an endpoint answered them, by reason (see REFUSAL_REASONS).",
            ["reason"],
            registry=registry,
        )
        for reason in REFUSAL_REASONS:
            self.refusals.labels(reason)

    def record_predictions(
        self, kind: str, ages: np.ndarray, probabilities: np.ndarray, survivors: int
    ) -> None:
        """The model metrics for one request's passengers (``probabilities``: of survival)."""
        count = len(probabilities)
        self.prediction_type.labels(kind).inc()
        self.predictions.inc(count)
        self.predicted_class.labels("Survived").inc(survivors)
        self.predicted_class.labels("Not Survived").inc(count - survivors)
        source = SIMULATION if kind == SIMULATION else USER
        self.ages.observe_many(ages, source)
        self.survival_probability.observe_many(probabilities, source)

    def refused(self, reason: str) -> None:
        """Count one refusal (``reason``: one of REFUSAL_REASONS)."""
        self.refusals.labels(reason).inc()

    def exposition(self, accept: str | None) -> tuple[bytes, str]:
        """The body and content type of a /metrics answer for this ``Accept`` header.

        prometheus_client's negotiation raises TypeError for a version it cannot
        compare (``version=abc``): such a header gets the classic text format.
        """
        try:
            encoder, content_type = choose_encoder(accept or "")
        except (TypeError, ValueError):
            encoder, content_type = choose_encoder("")
        if self.multiprocess_mode:
            folder = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
            combined = CollectorRegistry()
            multiprocess.MultiProcessCollector(combined)
            for collector in self.quality.extra_collectors():  # the reference gauges
                combined.register(collector)
            WorkerProcessCollector(folder, registry=combined)
            with folder_lock(folder, exclusive=False):
                return encoder(combined), content_type
        return encoder(self.registry), content_type


# ---------------------------------------------------------------- several worker processes


class WorkerProcessCollector(Collector):
    """CPU and memory of every live worker, under prometheus_client's own names.

    prometheus_client's ``ProcessCollector`` describes the process that answers the
    scrape: with several workers, each scrape would show one of them at random, so
    in multiprocess mode it is left out. This collector reads each live worker's
    ``/proc`` entry instead (the workers are the pids of the live gauges' files) and
    labels the series with ``pid``: ``sum by (instance)`` gives the container's CPU
    and memory, as the dashboard's panels ask.
    """

    def __init__(self, folder: Path, registry: CollectorRegistry | None = None) -> None:
        self.folder = folder
        if registry is not None:
            registry.register(self)

    def live_workers(self) -> list[int]:
        pids = (path.stem.rsplit("_", 1)[-1] for path in self.folder.glob("gauge_live*_*.db"))
        return sorted({int(pid) for pid in pids if pid.isdigit()})

    def collect(self) -> Iterable[Metric]:
        families: dict[str, Metric] = {}
        for pid in self.live_workers():
            for family in ProcessCollector(registry=None, pid=str(pid).strip).collect():
                merged = families.setdefault(
                    family.name, Metric(family.name, family.documentation, family.type)
                )
                for sample in family.samples:
                    merged.add_sample(sample.name, {**sample.labels, "pid": str(pid)}, sample.value)
        return list(families.values())


@contextmanager
def folder_lock(folder: Path, exclusive: bool) -> Iterator[None]:
    """Scrapes (shared) never read the metric files while a dead worker's are archived."""
    with (folder / "archive.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield


def archive_dead_worker(folder: Path, pid: int) -> None:
    """Add a dead worker's counters and histograms into one archive file, and drop its files.

    Every file is read at every scrape: after many worker restarts (each leaving its
    files behind) a scrape slowed from milliseconds to a fifth of a second. The dead
    worker's values are added, key by key, to ``counter_archive.db`` and
    ``histogram_archive.db`` (prometheus_client's own file format: a file's type is
    its name's first word), so the totals stay exact; scrapes wait meanwhile.
    Gauges are left to ``multiprocess.mark_process_dead``.
    """
    with folder_lock(folder, exclusive=True):
        for kind in ("counter", "histogram"):
            dead = folder / f"{kind}_{pid}.db"
            if not dead.exists():
                continue
            archive = MmapedDict(str(folder / f"{kind}_archive.db"))
            try:
                for key, value, timestamp, _ in MmapedDict.read_all_values_from_file(str(dead)):
                    total, _ = archive.read_value(key)
                    archive.write_value(key, total + value, timestamp)
            finally:
                archive.close()
            dead.unlink()


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

    FastAPI notes the path operation it matched in the scope. For requests
    answered before routing (``titanic_api.limits``) and the documentation pages,
    the app's routes are looked up, those of included routers too.
    """
    route = scope.get("route")
    if route is not None:
        return str(route.path)
    app = scope.get("app")
    for candidate in all_routes(getattr(getattr(app, "router", None), "routes", ())):
        if candidate.matches(scope)[0] is not Match.NONE:  # type: ignore[attr-defined]
            return str(getattr(candidate, "path", UNMATCHED))
    return UNMATCHED


def all_routes(routes: Iterable[object]) -> Iterator[object]:
    """Routes, with each router that ``include_router`` added replaced by its own routes."""
    for route in routes:
        included = getattr(route, "original_router", None)
        yield from all_routes(included.routes) if included is not None else (route,)

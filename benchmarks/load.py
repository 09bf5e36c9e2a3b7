"""A small closed-loop load generator: N threads, one keep-alive connection each.

Each client thread sends a request, waits for the whole answer, and sends the
next one, for a fixed time. That is how "N concurrent clients" is meant in the
report: at most N requests are in flight at any moment.

``http.client`` is used directly (no session layer): per request it costs the
client some tens of microseconds of CPU, which ``Run.client_cpu_per_request``
reports so the reader can check the client is not what is being measured.
"""

from __future__ import annotations

import http.client
import itertools
import statistics
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

JSON = {"Content-Type": "application/json"}


@dataclass
class Run:
    """What one stretch of load measured."""

    requests: int = 0
    errors: int = 0
    elapsed: float = 0.0
    client_cpu: float = 0.0
    server_cpu: float = float("nan")  # CPU seconds the server used meanwhile, where measured
    latencies: list[float] = field(default_factory=list)

    @property
    def throughput(self) -> float:
        """Successful requests per second."""
        return (self.requests - self.errors) / self.elapsed if self.elapsed else 0.0

    @property
    def client_cpu_per_request(self) -> float:
        return self.client_cpu / self.requests if self.requests else 0.0

    @classmethod
    def combine(cls, runs: Sequence[Run]) -> Run:
        """Several stretches of the same load, counted as one."""
        total = cls()
        for run in runs:
            total.requests += run.requests
            total.errors += run.errors
            total.elapsed += run.elapsed
            total.client_cpu += run.client_cpu
            total.latencies.extend(run.latencies)
        return total


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) of ``values``, by linear interpolation."""
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[max(1, min(99, round(q))) - 1]


class Client:
    """One keep-alive HTTP/1.1 connection to ``base_url``."""

    def __init__(self, base_url: str, timeout: float = 60.0) -> None:
        parts = urlsplit(base_url)
        self.connection = http.client.HTTPConnection(
            parts.hostname or "127.0.0.1", parts.port, timeout=timeout
        )

    def call(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        """Send one request; return its status code and body (the whole body is read)."""
        try:
            self.connection.request(method, path, body=body, headers=JSON if body else {})
            response = self.connection.getresponse()
            return response.status, response.read()
        except (OSError, http.client.HTTPException):
            self.connection.close()  # reconnects on the next call
            return 0, b""

    def close(self) -> None:
        self.connection.close()


def drive(
    base_url: str,
    path: str,
    bodies: Sequence[bytes],
    *,
    concurrency: int,
    duration: float,
    method: str = "POST",
) -> Run:
    """``concurrency`` clients POST ``bodies`` (in turn) to ``path`` for ``duration`` seconds."""
    results = [Run() for _ in range(concurrency)]
    start_line = threading.Barrier(concurrency + 1)
    begins = [0.0] * concurrency
    ends = [0.0] * concurrency

    def client_loop(index: int) -> None:
        client = Client(base_url)
        run = results[index]
        cycle = itertools.cycle([*bodies[index:], *bodies[:index]])
        client.call("GET", "/")  # connect before the clock starts
        start_line.wait()
        cpu_before = time.thread_time()
        now = begins[index] = time.perf_counter()
        deadline = now + duration
        while now < deadline:
            sent = now
            status, _ = client.call(method, path, next(cycle))
            now = time.perf_counter()
            run.requests += 1
            if status == 200:
                run.latencies.append(now - sent)
            else:
                run.errors += 1
        ends[index] = now
        run.client_cpu = time.thread_time() - cpu_before
        client.close()

    threads = [threading.Thread(target=client_loop, args=(i,)) for i in range(concurrency)]
    for thread in threads:
        thread.start()
    start_line.wait()
    for thread in threads:
        thread.join()
    total = Run(elapsed=max(ends) - min(begins))
    for run in results:
        total.requests += run.requests
        total.errors += run.errors
        total.client_cpu += run.client_cpu
        total.latencies.extend(run.latencies)
    return total


def time_requests(
    base_url: str, path: str, bodies: Sequence[bytes], *, repeat: int, method: str = "POST"
) -> Run:
    """One client sends each body in turn, ``repeat`` requests in all (no time limit)."""
    client = Client(base_url)
    run = Run()
    client.call("GET", "/")
    cpu_before = time.thread_time()
    begin = time.perf_counter()
    for body in itertools.islice(itertools.cycle(bodies), repeat):
        sent = time.perf_counter()
        status, _ = client.call(method, path, body)
        run.requests += 1
        if status == 200:
            run.latencies.append(time.perf_counter() - sent)
        else:
            run.errors += 1
    run.elapsed = time.perf_counter() - begin
    run.client_cpu = time.thread_time() - cpu_before
    client.close()
    return run


def alternate(probes: Mapping[str, Callable[[], bool]], repeat: int) -> dict[str, Run]:
    """Call every probe once in turn, ``repeat`` times over, and time each call.

    Used when two figures are compared as a ratio: calls that follow each other
    within milliseconds meet the same load from the rest of the machine, so
    the ratio holds even while other programs come and go.
    """
    runs = {name: Run() for name in probes}
    cpu_before = time.thread_time()
    began = time.perf_counter()
    for _ in range(repeat):
        for name, probe in probes.items():
            run = runs[name]
            sent = time.perf_counter()
            ok = probe()
            run.requests += 1
            if ok:
                run.latencies.append(time.perf_counter() - sent)
            else:
                run.errors += 1
    elapsed = time.perf_counter() - began
    for run in runs.values():
        run.elapsed = elapsed
        run.client_cpu = (time.thread_time() - cpu_before) / len(runs)
    return runs


def http_probe(client: Client, path: str, bodies: Sequence[bytes]) -> Callable[[], bool]:
    """A probe that POSTs the next of ``bodies`` and succeeds on a 200."""
    cycle = itertools.cycle(bodies)
    return lambda: client.call("POST", path, next(cycle))[0] == 200

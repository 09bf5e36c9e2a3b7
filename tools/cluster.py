"""A Kubernetes cluster played on one machine, from deploy/k8s: replicas, a Service, Prometheus.

- **Pods.** Each replica is the Deployment's own command and environment
  (deploy/k8s/deployment.yaml: ``python -m titanic_api``, one uvicorn process), as a
  separate process on 127.0.0.1 and a free port, with its own empty prediction-log folder
  (the pod's emptyDir). A replica counts as ready when its readiness probe's path answers
  200. ``app="module:app"`` serves another app (a lesson, say) under plain uvicorn instead.
- **The Service.** A round-robin over the ready replicas; a client that finds a replica's
  port closed (connection refused) retries the next one, as a client of a real Service
  would after kube-proxy's rules lag behind a pod that went away.
- **Prometheus.** A real one (``/usr/bin/prometheus``, free port, temporary data folder,
  stopped by its pid) with one scrape job built from the ServiceMonitor and the Service
  (``tools.cluster_manifests``). Its rules are the rendered PrometheusRule's spec.
  Scrapes and rule evaluations happen every second.

``tools.rehearse`` plays a story on it; ``tools.drill`` the model-monitoring drill.
"""

from __future__ import annotations

import itertools
import json
import random
import signal
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.parser import text_string_to_metric_families

from titanic_api.settings import Settings
from tools import traffic
from tools.cluster_manifests import INTERVAL, container, rules_spec, scrape_job
from tools.servers import HOST, PROMETHEUS, PrometheusServer, ServerProcess, free_port

TIMEOUT = 10.0


# ------------------------------------------------------------------ HTTP
def get_status(base_url: str, path: str) -> int:
    """The status code of GET ``base_url + path``; 0 when nothing answers."""
    return traffic.send(base_url, traffic.Request("probe", "GET", path))


def wait_for(what: str, condition: Any, timeout: float = 60.0, pause: float = 0.2) -> Any:
    """Poll ``condition()`` until it returns something true; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: still not true after {timeout:.0f} s")
        time.sleep(pause)


def scraped(url: str, sample: str) -> float:
    """The sum of one sample name's values on a replica's /metrics (all label sets)."""
    with urllib.request.urlopen(url + "/metrics", timeout=TIMEOUT) as response:
        text = response.read().decode()
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == sample
    )


# ------------------------------------------------------------------ the cluster
@dataclass
class Replica:
    """One pod: a uvicorn process on its own port."""

    index: int
    port: int
    log_dir: Path
    process: ServerProcess | None = None
    starts: int = 0

    @property
    def pod(self) -> str:
        return f"titanic-api-{self.index}"

    @property
    def instance(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.instance}"


@dataclass
class Sent:
    """What a client sent through the Service."""

    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    passengers: int = 0
    refused_then_retried: int = 0
    failed: list[str] = field(default_factory=list)  # requests that got no answer at all
    by_replica: Counter[str] = field(default_factory=Counter)
    labels: Counter[str] = field(default_factory=Counter)  # POST /feedback's answers, added
    seen_at: float | None = None  # when Prometheus had scraped all of it (set by its reader)


class Cluster:
    """N replicas of the app, a round-robin Service over the ready ones, and Prometheus."""

    def __init__(
        self,
        workdir: Path,
        replicas: int = 3,
        app: str | None = None,
        prometheus: str = PROMETHEUS,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.workdir = workdir
        self.spec = container()
        self.app = app  # None: the Deployment's own command
        self.extra_env = dict(env or {})  # set in every pod (a shared store's URL, say)
        self.ready_path = self.spec["readinessProbe"]["httpGet"]["path"]
        self.replicas = [
            Replica(i, free_port(), workdir / f"titanic-api-{i}" / "prediction-logs")
            for i in range(replicas)
        ]
        self.ready: list[Replica] = []
        self.lock = threading.Lock()
        self.turn = itertools.count()
        self.prometheus_binary = prometheus
        self.prometheus: ServerProcess | None = None
        self.started_at = 0.0  # time.time() when running() started

    # --------------------------------------------------------------- pods
    def command(self, replica: Replica) -> list[str]:
        """The Deployment's command (``python -m titanic_api``), or uvicorn serving ``--app``."""
        if self.app is not None:
            port, graceful = str(replica.port), self.env(replica)["TITANIC_GRACEFUL_TIMEOUT"]
            return [sys.executable, "-m", "uvicorn", self.app, "--host", HOST, "--port", port] + [
                "--timeout-graceful-shutdown",
                graceful,
            ]
        command = list(self.spec["command"])
        assert command[:2] == ["python", "-m"], command
        return [sys.executable, *command[1:]]

    def env(self, replica: Replica) -> dict[str, str]:
        """The Deployment's environment, on this replica's port and folders."""
        env = {item["name"]: str(item["value"]) for item in self.spec.get("env", [])}
        replica.log_dir.mkdir(parents=True, exist_ok=True)
        env["TITANIC_HOST"] = HOST
        env["TITANIC_PORT"] = str(replica.port)
        env["PREDICTION_LOG_DIR"] = str(replica.log_dir)  # the pod's emptyDir
        env["HOME"] = str(replica.log_dir.parent)
        return env | self.extra_env

    def serves_simulations(self) -> bool:
        """Whether the pods answer POST /simulate_predictions (the Deployment says no)."""
        env = {item["name"]: str(item["value"]) for item in self.spec.get("env", [])}
        env |= self.extra_env
        setting = env.get("TITANIC_ENABLE_SIMULATION", "false")
        return Settings.model_validate({"enable_simulation": setting}).enable_simulation

    def log_path(self, replica: Replica) -> Path:
        """The replica's uvicorn output, all its starts one after the other."""
        return self.workdir / f"{replica.pod}.log"

    def launch(self, replica: Replica) -> None:
        """Start the replica's process (the kubelet starting the container)."""
        replica.process = ServerProcess(
            self.command(replica),
            replica.url,
            ready_path=self.ready_path,
            env=self.env(replica),
            log_path=self.log_path(replica),
            start_timeout=120,
        ).start()
        replica.starts += 1

    def wait_ready(self, replica: Replica) -> None:
        """Wait for the readiness probe's path to answer 200, then route traffic to it."""
        wait_for(
            f"{replica.pod} ready",
            lambda: get_status(replica.url, self.ready_path) == 200,
            timeout=120,
        )
        with self.lock:
            if replica not in self.ready:
                self.ready.append(replica)
                self.ready.sort(key=lambda r: r.index)

    def start_replica(self, replica: Replica) -> None:
        self.launch(replica)
        self.wait_ready(replica)

    def stop_replica(self, replica: Replica, pause: float = 0.5) -> int | None:
        """Take the replica out of the Service, wait ``pause`` s (the preStop sleep), SIGTERM it."""
        with self.lock:
            if replica in self.ready:
                self.ready.remove(replica)
        time.sleep(pause)
        assert replica.process is not None
        return replica.process.stop(signal.SIGTERM, timeout=30)

    def rolling_restart(self) -> None:
        """Restart every replica in turn, the next only once the last one is ready again."""
        for replica in self.replicas:
            self.stop_replica(replica)
            self.start_replica(replica)

    # --------------------------------------------------------------- the Service
    def send(self, request: traffic.Request, sent: Sent, attempts: int = 20) -> int:
        """Send one request through the Service; retry on a refused connection only."""
        return self.exchange(request, sent, attempts)[0]

    def exchange(self, request: traffic.Request, sent: Sent, attempts: int = 20) -> tuple[int, Any]:
        """Send one request through the Service: its status (0: no answer) and JSON answer."""
        for _ in range(attempts):
            with self.lock:
                replica = self.ready[next(self.turn) % len(self.ready)] if self.ready else None
            if replica is None:
                time.sleep(0.05)
                continue
            try:
                status, answer = traffic.call(replica.url, request)
            except urllib.error.URLError as error:
                if isinstance(error.reason, ConnectionRefusedError):
                    sent.refused_then_retried += 1
                    time.sleep(0.02)
                    continue
                sent.failed.append(f"{request.method} {request.path} on {replica.pod}: {error}")
                return 0, None
            except OSError as error:
                sent.failed.append(f"{request.method} {request.path} on {replica.pod}: {error}")
                return 0, None
            sent.statuses[(request.kind, status)] += 1
            sent.by_replica[replica.instance] += 1
            if status == 200:
                sent.passengers += request.passengers
            return status, answer
        sent.failed.append(f"{request.method} {request.path}: refused {attempts} times")
        return 0, None

    def drive(
        self,
        requests: int,
        seed: int,
        sent: Sent | None = None,
        until: threading.Event | None = None,
        profile: str = "normal",
        labels: str | None = None,
    ) -> Sent:
        """Send up to ``requests`` requests of tools.traffic's mix (stop early on ``until``).

        ``profile``: tools.traffic's passengers; ``labels`` ("true" or "wrong"): follow each
        answered prediction request with its labels on POST /feedback, through the Service
        (so, most of the time, to another replica than the one that predicted).
        """
        sent = sent or Sent()
        rng = random.Random(seed)
        for _ in range(requests):
            if until is not None and until.is_set():
                break
            request = traffic.next_request(rng, profile, self.serves_simulations())
            status, answer = self.exchange(request, sent)
            label_request = traffic.feedback(request, answer, labels == "wrong")
            if status == 200 and labels and label_request is not None:
                status, counts = self.exchange(label_request, sent)
                if status == 200 and isinstance(counts, dict):
                    sent.labels.update({r: counts[r] for r in traffic.FEEDBACK_RESULTS})
        return sent

    # --------------------------------------------------------------- Prometheus
    def prometheus_config(self) -> Path:
        rules = self.workdir / "prometheus-rule.yml"
        rules.write_text(yaml.safe_dump(rules_spec(), sort_keys=False), encoding="utf-8")
        config = {
            "global": {"scrape_interval": INTERVAL, "evaluation_interval": INTERVAL},
            "rule_files": [str(rules)],
            "scrape_configs": [scrape_job([(r.pod, r.instance) for r in self.replicas])],
        }
        path = self.workdir / "prometheus.yml"
        path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        return path

    def start_prometheus(self) -> ServerProcess:
        self.prometheus = PrometheusServer(
            None, self.workdir, config=self.prometheus_config(), binary=self.prometheus_binary
        ).start()
        all_up = 'count(up{job="fastapi_app"} == 1)'
        wait_for(all_up, lambda: self.value(all_up) == len(self.replicas))
        return self.prometheus

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        """An instant query; the result's series."""
        assert self.prometheus is not None, "Prometheus is not running"
        params = {"query": expr} | ({"time": f"{at:.3f}"} if at is not None else {})
        url = self.prometheus.url + "/api/v1/query?" + urllib.parse.urlencode(params)
        with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
            answer = json.load(response)
        assert answer["status"] == "success", answer
        result: list[dict[str, Any]] = answer["data"]["result"]
        return result

    def value(self, expr: str, at: float | None = None) -> float | None:
        """The single value of an instant query (None when empty)."""
        result = self.query(expr, at)
        if not result:
            return None
        [series] = result
        return float(series["value"][1])

    def served(self, counter: str = "titanic_predictions") -> dict[str, float]:
        """Each running replica's counter, read from its own /metrics."""
        return {
            r.instance: scraped(r.url, counter + "_total")
            for r in self.replicas
            if r.process is not None and r.process.process and r.process.process.poll() is None
        }

    def wait_scraped(self, counter: str = "titanic_predictions", timeout: float = 30) -> float:
        """Wait until Prometheus' sum of the counter equals what the replicas report."""
        total = sum(self.served(counter).values())
        expr = f'sum({counter}_total{{job="fastapi_app"}})'
        wait_for(f"{expr} == {total}", lambda: self.value(expr) == total, timeout=timeout)
        return total

    # --------------------------------------------------------------- all of it
    def stop_all(self) -> None:
        """Stop Prometheus and every replica, each by its pid."""
        for server in [self.prometheus, *(r.process for r in self.replicas)]:
            if server is not None:
                server.stop()

    @contextmanager
    def running(self) -> Iterator[Cluster]:
        """Start every replica (in parallel, like a Deployment) and Prometheus; stop all."""
        self.started_at = time.time()
        with ExitStack() as stack:
            stack.callback(self.stop_all)
            threads = [
                threading.Thread(target=self.launch, args=(r,), daemon=True) for r in self.replicas
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            for replica in self.replicas:
                if replica.process is None:
                    raise RuntimeError(f"{replica.pod} did not start; see {self.workdir}")
                self.wait_ready(replica)
            self.start_prometheus()
            yield self

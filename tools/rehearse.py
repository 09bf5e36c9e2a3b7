"""Rehearse deploy/k8s on one machine: replicas, a Service, and the Operator's Prometheus.

No cluster runs here, so this plays one, from the manifests themselves::

    python -m tools.rehearse --replicas 3

- **Pods.** Each replica is the Deployment's own command and environment
  (deploy/k8s/deployment.yaml: ``python -m titanic_api``, one uvicorn process), as a
  separate process on 127.0.0.1 and a free port, with its own empty prediction-log folder
  (the pod's emptyDir). A replica counts as ready when its readiness probe's path answers
  200. ``--app module:app`` serves another app (a lesson, say) under plain uvicorn instead.
- **The Service.** A round-robin over the ready replicas; a client that finds a replica's
  port closed (connection refused) retries the next one, as a client of a real Service
  would after kube-proxy's rules lag behind a pod that went away.
- **Prometheus.** A real one (``/usr/bin/prometheus``, free port, temporary data folder,
  stopped by its pid) with one scrape job built from the ServiceMonitor and the Service:
  the job name the Operator would give it, one target per replica, and the relabelling
  the Operator generates (``job`` from the Service label named by ``jobLabel``; the
  ``namespace``, ``service``, ``pod`` and ``endpoint`` labels). Its rules are the
  rendered PrometheusRule's spec. Scrapes and rule evaluations happen every second.

The tool then sends traffic, stops one replica and starts it again, and restarts every
replica in turn (SIGTERM, wait for ready), printing what Prometheus and the dashboard see.
``tests/deploy/test_rehearsal.py`` runs the same steps and checks them.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.parser import text_string_to_metric_families

from tools import traffic
from tools.k8s_generate import K8S_DIR, PROMETHEUS_RULE
from tools.servers import HOST, PROMETHEUS, REPO_ROOT, PrometheusServer, ServerProcess, free_port

BASE = REPO_ROOT / K8S_DIR
# Scrape and evaluate every second (the ServiceMonitor says 15s: too slow for a test).
INTERVAL = "1s"
TIMEOUT = 10.0


# ------------------------------------------------------------------ the manifests
def manifest(file: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((BASE / file).read_text(encoding="utf-8"))
    return data


def namespace() -> str:
    return str(manifest("kustomization.yaml")["namespace"])


def container() -> dict[str, Any]:
    [spec] = manifest("deployment.yaml")["spec"]["template"]["spec"]["containers"]
    return dict(spec)


def sanitize(label: str) -> str:
    """A Kubernetes label name as a Prometheus meta label suffix (what the SD does)."""
    return re.sub(r"[^a-zA-Z0-9_]", "_", label)


def scrape_job(targets: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """The Operator's scrape job for the ServiceMonitor, over ``(pod, host:port)`` targets.

    Service discovery is replaced by static targets carrying the meta labels
    Kubernetes' would give them; the relabelling is what the Operator generates.
    """
    monitor, service = manifest("servicemonitor.yaml"), manifest("service.yaml")
    [endpoint] = monitor["spec"]["endpoints"]
    ns, service_name = namespace(), service["metadata"]["name"]
    service_labels = service["metadata"]["labels"]
    meta = {f"__meta_kubernetes_service_label_{sanitize(k)}": v for k, v in service_labels.items()}
    meta |= {
        "__meta_kubernetes_namespace": ns,
        "__meta_kubernetes_service_name": service_name,
        "__meta_kubernetes_endpoint_port_name": endpoint["port"],
    }
    relabel = [
        {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
        {"source_labels": ["__meta_kubernetes_service_name"], "target_label": "service"},
        {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
        {"target_label": "endpoint", "replacement": endpoint["port"]},
        # job: the Service's name, unless jobLabel names a Service label that is set.
        {"source_labels": ["__meta_kubernetes_service_name"], "target_label": "job"},
    ]
    if "jobLabel" in monitor["spec"]:
        relabel.append(
            {
                "source_labels": [
                    f"__meta_kubernetes_service_label_{sanitize(monitor['spec']['jobLabel'])}"
                ],
                "target_label": "job",
                "regex": "(.+)",
                "replacement": "${1}",
            }
        )
    return {
        "job_name": f"serviceMonitor/{ns}/{monitor['metadata']['name']}/0",
        "scrape_interval": INTERVAL,
        "metrics_path": endpoint.get("path", "/metrics"),
        # The Operator keeps the labels the targets expose (honor_labels false).
        "static_configs": [
            {"targets": [address], "labels": {**meta, "__meta_kubernetes_pod_name": pod}}
            for pod, address in targets
        ],
        "relabel_configs": relabel,
    }


def rules_spec() -> dict[str, Any]:
    """The rendered PrometheusRule's spec: the rules Prometheus loads."""
    spec: dict[str, Any] = yaml.safe_load(
        (REPO_ROOT / PROMETHEUS_RULE).read_text(encoding="utf-8")
    )["spec"]
    return spec


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


class Cluster:
    """N replicas of the app, a round-robin Service over the ready ones, and Prometheus."""

    def __init__(
        self,
        workdir: Path,
        replicas: int = 3,
        app: str | None = None,
        prometheus: str = PROMETHEUS,
    ) -> None:
        self.workdir = workdir
        self.spec = container()
        self.app = app  # None: the Deployment's own command
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
        return env

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
        data = None if request.body is None else json.dumps(request.body).encode()
        headers = {"Content-Type": "application/json"} if data is not None else {}
        for _ in range(attempts):
            with self.lock:
                replica = self.ready[next(self.turn) % len(self.ready)] if self.ready else None
            if replica is None:
                time.sleep(0.05)
                continue
            http = urllib.request.Request(
                replica.url + request.path, data=data, method=request.method, headers=headers
            )
            try:
                with urllib.request.urlopen(http, timeout=TIMEOUT) as response:
                    response.read()
                    status = int(response.status)
            except urllib.error.HTTPError as error:
                error.read()
                status = int(error.code)
            except urllib.error.URLError as error:
                if isinstance(error.reason, ConnectionRefusedError):
                    sent.refused_then_retried += 1
                    time.sleep(0.02)
                    continue
                sent.failed.append(f"{request.method} {request.path} on {replica.pod}: {error}")
                return 0
            except OSError as error:
                sent.failed.append(f"{request.method} {request.path} on {replica.pod}: {error}")
                return 0
            sent.statuses[(request.kind, status)] += 1
            sent.by_replica[replica.instance] += 1
            if status == 200:
                sent.passengers += request.passengers
            return status
        sent.failed.append(f"{request.method} {request.path}: refused {attempts} times")
        return 0

    def drive(
        self,
        requests: int,
        seed: int,
        sent: Sent | None = None,
        until: threading.Event | None = None,
    ) -> Sent:
        """Send up to ``requests`` requests of tools.traffic's mix (stop early on ``until``)."""
        sent = sent or Sent()
        rng = random.Random(seed)
        for _ in range(requests):
            if until is not None and until.is_set():
                break
            self.send(traffic.next_request(rng), sent)
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
        scraped = 'count(up{job="fastapi_app"} == 1)'
        wait_for(scraped, lambda: self.value(scraped) == len(self.replicas))
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


# ------------------------------------------------------------------ the command line
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--replicas", type=int, default=3, choices=range(2, 6))
    parser.add_argument("--requests", type=int, default=300, help="per traffic phase")
    parser.add_argument("--app", help="module:app to run (default: the Deployment's)")
    parser.add_argument("--keep", action="store_true", help="keep the working folder")
    args = parser.parse_args(argv)
    if shutil.which(PROMETHEUS) is None:
        print(f"{PROMETHEUS} not found: apt-get install prometheus", file=sys.stderr)
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="titanic-rehearsal-"))
    try:
        cluster = Cluster(workdir, args.replicas, args.app)
        with cluster.running():
            assert cluster.prometheus is not None
            served = cluster.app or " ".join(cluster.spec["command"])
            print(f"{args.replicas} replicas of {served} and Prometheus at")
            print(f"    {cluster.prometheus.url} (job fastapi_app, one target per replica)")
            sent = cluster.drive(args.requests, seed=1)
            total = cluster.wait_scraped()
            print(
                f"sent {sum(sent.statuses.values())} requests, per replica {dict(sent.by_replica)}"
            )
            print(f"passengers: {sent.passengers} sent, {total:.0f} in Prometheus")
            victim = cluster.replicas[-1]
            cluster.stop_replica(victim)
            down = 'up{job="fastapi_app"} == 0'
            found = wait_for(down, lambda: cluster.query(down))
            print(
                f"stopped {victim.pod}: {down} selects {[s['metric']['instance'] for s in found]}"
            )
            cluster.start_replica(victim)
            cluster.drive(args.requests, seed=2, sent=sent)
            cluster.wait_scraped()
            print("rolling restart ...")
            stop = threading.Event()
            client = threading.Thread(target=cluster.drive, args=(10_000, 3, sent, stop))
            client.start()
            try:
                cluster.rolling_restart()
            finally:
                stop.set()
                client.join()
            print(
                f"{len(sent.failed)} requests lost, {sent.refused_then_retried} refused and retried"
            )
            if args.keep:
                print(f"Prometheus' data, its configuration and the replicas' logs: {workdir}")
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""deploy/edge/: HAProxy in front of the Titanic API, per-client limits (issue 20).

Offline, the overlay renders and passes the checks the base passes. Live, the very file the
ConfigMap carries (deploy/edge/haproxy.cfg) runs with Debian's haproxy on 127.0.0.1 in front
of ``python -m titanic_api``, both on free ports and stopped by their pids; only the
variables the Deployment sets are given other values (addresses, and smaller limits so that
a test reaches them with a few requests). Without haproxy the live tests skip, unless
``REQUIRE_HAPROXY=1`` (CI), which turns the skip into a failure.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx2
import pytest

from tests.deploy.k8s_checks import (
    check_crd_schemas,
    check_kubernetes_schemas,
    check_wiring,
    name,
    of_kind,
    render,
)
from tests.support.metrics import Metrics, scrape, scrape_until
from tests.support.package import PackageServer
from titanic_api import routes as package_routes
from titanic_api.main import app
from tools.examples import PASSENGER
from tools.servers import HOST, REPO_ROOT, ServerProcess, free_port

EDGE = REPO_ROOT / "deploy" / "edge"
CONFIG = EDGE / "haproxy.cfg"
# Paths the edge keeps inside the cluster: Prometheus scrapes the pods directly, and a
# simulation is the course's demo, not a client's request.
INTERNAL = {"/metrics", "/simulate_predictions", "/docs/oauth2-redirect"}
PUBLIC = {"proxy": "public"}
# The live tests' limits (the Deployment's are larger), and what they send.
CONNECTIONS = 5
REQUESTS = 10
SENT = 15


def haproxy_binary() -> str:
    found = shutil.which("haproxy")
    if found is None:
        hint = "haproxy is not installed (apt-get install haproxy)"
        if os.environ.get("REQUIRE_HAPROXY") == "1":
            pytest.fail(f"REQUIRE_HAPROXY=1 but {hint}")
        pytest.skip(hint)
    return found


def check_config(config: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [haproxy_binary(), "-c", "-f", str(config)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


# ------------------------------------------------------------------ offline: the overlay


@pytest.fixture(scope="module")
def rendered() -> list[dict]:
    return render(EDGE)


@pytest.fixture(scope="module")
def deployment_env(rendered: list[dict]) -> dict[str, str]:
    [edge] = [d for d in of_kind(rendered, "Deployment") if d["metadata"]["name"].endswith("edge")]
    [container] = edge["spec"]["template"]["spec"]["containers"]
    return {variable["name"]: variable["value"] for variable in container["env"]}


def test_the_overlay_is_the_base_plus_the_edge(rendered: list[dict]) -> None:
    base = {name(obj) for obj in render()}
    edge = {name(obj) for obj in rendered} - base
    assert base <= {name(obj) for obj in rendered}
    assert {re.sub(r"-[a-z0-9]{10}$", "", n) for n in edge} == {
        "ConfigMap/titanic-api-edge",
        "Deployment/titanic-api-edge",
        "Service/titanic-api-edge",
        "ServiceMonitor/titanic-api-edge",
    }
    for check in (check_kubernetes_schemas, check_crd_schemas, check_wiring):
        assert check(rendered) == [], check.__name__


def test_the_configmap_holds_the_rehearsed_file(rendered: list[dict]) -> None:
    [config_map] = [c for c in of_kind(rendered, "ConfigMap") if "edge" in c["metadata"]["name"]]
    assert config_map["data"] == {"haproxy.cfg": CONFIG.read_text(encoding="utf-8")}


def test_the_deployment_sets_every_variable_the_file_reads(deployment_env: dict[str, str]) -> None:
    read = set(re.findall(r"\$\{(\w+)\}", CONFIG.read_text(encoding="utf-8")))
    assert read == set(deployment_env)
    # The Service's address resolves only in the cluster: haproxy -c resolves it, so it is
    # replaced here by an address that resolves anywhere.
    env = {**deployment_env, "TITANIC_API_ADDRESS": f"{HOST}:80"}
    result = check_config(CONFIG, env)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_broken_file_is_refused(deployment_env: dict[str, str], tmp_path: Path) -> None:
    """The check above can fail: a misspelt directive, or a variable the Deployment lacks."""
    env = {**deployment_env, "TITANIC_API_ADDRESS": f"{HOST}:80"}
    broken = tmp_path / "haproxy.cfg"
    broken.write_text(CONFIG.read_text().replace("stick-table", "stick-tabel"), encoding="utf-8")
    assert check_config(broken, env).returncode != 0
    without = {k: v for k, v in env.items() if k != "EDGE_BIND"}
    assert check_config(CONFIG, without).returncode != 0


def test_every_route_is_public_or_kept_inside() -> None:
    text = CONFIG.read_text(encoding="utf-8")
    exact = {p for line in re.findall(r"acl public_path path (.+)", text) for p in line.split()}
    prefixes = re.findall(r"acl public_path path_beg (\S+)", text)
    declared = [*app.routes, *package_routes.router.routes, *package_routes.simulation.routes]
    routes = {getattr(route, "path", "") for route in declared} - {""}
    mounted = {path for path in routes if f"{path}/" in prefixes}
    assert exact | mounted | INTERNAL == routes
    assert not exact & INTERNAL


# ------------------------------------------------------------------ live: the edge on 127.0.0.1


class Edge(ServerProcess):
    """haproxy -db -f deploy/edge/haproxy.cfg, ready when its /healthz answers."""

    def __init__(self, upstream: PackageServer, deployment_env: dict[str, str], **limits: str):
        self.port = free_port()
        metrics_port = free_port()
        env = {
            **deployment_env,
            "EDGE_BIND": f"{HOST}:{self.port}",
            "EDGE_METRICS_BIND": f"{HOST}:{metrics_port}",
            "TITANIC_API_ADDRESS": f"{HOST}:{upstream.port}",
            **limits,
        }
        command = [haproxy_binary(), "-db", "-f", str(CONFIG)]
        super().__init__(
            command,
            f"http://{HOST}:{metrics_port}",
            ready_path="/healthz",
            ready_ok_only=True,
            env=env,
        )
        self.public = f"http://{HOST}:{self.port}"

    def metrics(self) -> Metrics:
        return scrape(self.url)

    def wait_for(self, settled: Callable[[Metrics], bool]) -> Metrics:
        return scrape_until(self.url, settled, timeout=60)


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PackageServer]:
    haproxy_binary()
    logs = tmp_path_factory.mktemp("edge-logs")
    with PackageServer("module", env={"PREDICTION_LOG_DIR": str(logs)}) as server:
        yield server


@pytest.mark.live
def test_the_edge_passes_the_public_endpoints_and_hides_the_rest(
    upstream: PackageServer, deployment_env: dict[str, str]
) -> None:
    with Edge(upstream, deployment_env) as proxy, httpx2.Client(base_url=proxy.public) as client:
        answer = client.post("/predict_single", json=PASSENGER)
        assert answer.status_code == 200
        direct = httpx2.post(upstream.url + "/predict_single", json=PASSENGER)
        assert answer.json().keys() == direct.json().keys()
        assert client.get("/health").json()["status"] == "ok"
        for path in ("/metrics", "/simulate_predictions", "/%6detrics", "/nowhere"):
            assert client.get(path).status_code == 404, path
        assert client.post("/simulate_predictions").status_code == 404
        assert httpx2.get(upstream.url + "/metrics").status_code == 200  # inside: still there
        counted = proxy.metrics()
    assert counted.value("haproxy_frontend_http_responses_total", **PUBLIC, code="4xx") == 5
    assert counted.value("haproxy_frontend_http_responses_total", **PUBLIC, code="2xx") == 2
    assert counted.value("haproxy_frontend_requests_denied_total", **PUBLIC) == 5


def one_more_request(port: int) -> bytes:
    """What a new connection gets for GET /health: b"" if it is closed or reset unanswered."""
    try:
        with socket.create_connection((HOST, port), timeout=30) as connection:
            connection.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            return connection.recv(65536)
    except (ConnectionResetError, BrokenPipeError):
        return b""


@pytest.mark.live
def test_a_client_past_its_connections_is_closed_and_counted(
    upstream: PackageServer, deployment_env: dict[str, str]
) -> None:
    with Edge(upstream, deployment_env, EDGE_MAX_CONNECTIONS=str(CONNECTIONS)) as proxy:
        held = [
            socket.create_connection((HOST, proxy.port), timeout=30) for _ in range(CONNECTIONS)
        ]
        try:
            # HAProxy's threads take them up in any order: wait until all are counted.
            proxy.wait_for(
                lambda m: m.value("haproxy_frontend_current_sessions", **PUBLIC) == CONNECTIONS
            )
            assert one_more_request(proxy.port) == b""  # closed or reset, unanswered
        finally:
            for connection in held:
                connection.close()
        assert proxy.metrics().value("haproxy_frontend_denied_connections_total", **PUBLIC) == 1
        # Its connections closed, the client is served again.
        assert httpx2.get(proxy.public + "/health", timeout=30).status_code == 200


@pytest.mark.live
def test_a_client_past_its_request_rate_gets_429_and_it_is_counted(
    upstream: PackageServer, deployment_env: dict[str, str]
) -> None:
    """REQUESTS in any 10 seconds (the test's limit; the Deployment allows 200)."""
    with Edge(upstream, deployment_env, EDGE_MAX_REQUESTS=str(REQUESTS)) as proxy:
        with httpx2.Client(base_url=proxy.public, timeout=30) as client:
            statuses = [client.get("/health").status_code for _ in range(SENT)]
        counted = proxy.metrics()
    assert statuses == [200] * REQUESTS + [429] * (SENT - REQUESTS)
    assert counted.value("haproxy_frontend_http_responses_total", **PUBLIC, code="4xx") == 5
    assert counted.value("haproxy_frontend_requests_denied_total", **PUBLIC) == SENT - REQUESTS


# ------------------------------------------------------------------ what the pages and CI say


def test_the_kubernetes_page_says_what_the_rehearsal_checks() -> None:
    page = (REPO_ROOT / "docs" / "kubernetes.md").read_text(encoding="utf-8")
    stated = [
        f"with a limit of {CONNECTIONS} connections",
        f"with a limit of {REQUESTS} requests in 10 seconds, {SENT} requests get"
        f" {REQUESTS} × 200 and then {SENT - REQUESTS} × 429",
        "`haproxy_frontend_requests_denied_total` says 5",
        '--8<-- "deploy/edge/haproxy.cfg"',
        "kubectl apply -k deploy/edge",
    ]
    assert [text for text in stated if text not in page] == []


def test_ci_installs_and_requires_haproxy() -> None:
    ci = (REPO_ROOT / ".ci" / "run").read_text(encoding="utf-8")
    [install] = [line for line in ci.splitlines() if line.startswith("apt-get install")]
    assert "haproxy" in install.split()
    assert "export REQUIRE_HAPROXY=1" in ci.splitlines()

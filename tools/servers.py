"""Start a process that serves on a free loopback port, and always stop it again by its pid.

``ServerProcess`` starts any such command and waits until it answers; the tests, the
notebook, the benchmarks and the picture script use two of its kinds:

- ``LessonServer``: a lesson, started exactly as a learner starts it, from the
  repository root::

      uvicorn lessons.<name>:app --host 127.0.0.1 --port <port>

- ``PrometheusServer``: a real Prometheus scraping a running app (with the
  configuration ``prometheus_config`` writes, or one of its own).

Each stops by its own process id, also when the code using it fails::

    with LessonServer("fastapi_05_batch_test_app") as server:
        httpx2.get(server.url + "/")
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
PROMETHEUS = "/usr/bin/prometheus"  # Debian's package (apt-get install prometheus)

# MLflow would otherwise try to send usage data to the internet.
QUIET_ENV = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}


def free_port(host: str = HOST) -> int:
    """A TCP port nothing listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def is_serving(url: str, timeout: float = 1.0) -> bool:
    """True if an HTTP server answers at ``url`` (any status code)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout):
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


def answers_ok(url: str, timeout: float = 1.0) -> bool:
    """True if ``url`` answers with a 2xx status (Prometheus' /-/ready says 503 while it starts)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return 200 <= response.status < 300
    except OSError:  # refused, timed out, or an HTTPError (4xx, 5xx)
        return False


class ServerProcess:
    """A server process started on loopback, stopped by its pid on exit.

    ``command`` is run from ``cwd`` (the repository root); ``ready_path`` is polled until
    it answers (with any status; with a 2xx if ``ready_ok_only``). The
    process' output goes to ``log_path`` (a file, never a pipe that could fill
    up and block it).
    """

    def __init__(
        self,
        command: Sequence[str],
        url: str,
        *,
        ready_path: str = "/",
        ready_ok_only: bool = False,
        env: Mapping[str, str] | None = None,
        log_path: Path | None = None,
        start_timeout: float = 60.0,
        cwd: Path = REPO_ROOT,
    ) -> None:
        self.command = list(command)
        self.cwd = cwd
        self.url = url
        self.ready_path = ready_path
        self.is_ready = answers_ok if ready_ok_only else is_serving
        self.env = {**os.environ, **QUIET_ENV, **(env or {})}
        self.log_path = log_path
        self.start_timeout = start_timeout
        self.process: subprocess.Popen[bytes] | None = None
        self.user: str | None = None  # run as this user (PostgreSQL refuses to run as root)
        self.started_at = 0.0
        self.ready_after = 0.0

    @property
    def pid(self) -> int:
        assert self.process is not None, "not started"
        return self.process.pid

    def start(self) -> Self:
        log = self.log_path.open("ab") if self.log_path else subprocess.DEVNULL
        self.started_at = time.perf_counter()
        self.process = subprocess.Popen(
            self.command,
            cwd=self.cwd,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            user=self.user,
        )
        if self.log_path:
            log.close()  # type: ignore[union-attr]  # the child keeps its own handle
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def wait_ready(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{' '.join(self.command)} exited with {self.process.returncode}"
                    + (f"; see {self.log_path}" if self.log_path else "")
                )
            if self.is_ready(self.url + self.ready_path, 0.5):
                self.ready_after = time.perf_counter() - self.started_at
                return
            time.sleep(0.05)
        raise TimeoutError(f"{' '.join(self.command)} did not answer within {self.start_timeout}s")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int | None:
        """Send ``sig`` to the process (by pid), wait, and kill it if it lingers."""
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(timeout)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class LessonServer(ServerProcess):
    """``uvicorn lessons.<lesson>:app`` on 127.0.0.1 and a free port."""

    def __init__(
        self,
        lesson: str,
        *,
        port: int | None = None,
        env: Mapping[str, str] | None = None,
        uvicorn_args: Sequence[str] = (),
        log_path: Path | None = None,
        start_timeout: float = 60.0,
    ) -> None:
        self.lesson = lesson
        self.port = port or free_port()
        command = [
            sys.executable,
            "-m",
            "uvicorn",
            f"lessons.{lesson}:app",
            "--host",
            HOST,
            "--port",
            str(self.port),
            *uvicorn_args,
        ]
        super().__init__(
            command,
            f"http://{HOST}:{self.port}",
            ready_path="/openapi.json",
            env=env,
            log_path=log_path,
            start_timeout=start_timeout,
        )


def prometheus_config(app_port: int, prometheus_port: int, folder: Path) -> Path:
    """The repository's prometheus.yml, pointed at these ports and scraping every second."""
    config = yaml.safe_load((REPO_ROOT / "prometheus.yml").read_text())
    config["global"]["scrape_interval"] = "1s"
    config["global"]["evaluation_interval"] = "1s"
    config["rule_files"] = [str(REPO_ROOT / name) for name in config.get("rule_files", [])]
    ports = {"prometheus": prometheus_port, "fastapi_app": app_port}
    for job in config["scrape_configs"]:
        job["static_configs"] = [{"targets": [f"{HOST}:{ports[job['job_name']]}"]}]
    path = folder / "prometheus.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


class PrometheusServer(ServerProcess):
    """Prometheus on 127.0.0.1 and a free port, scraping the app at ``app_port`` every second.

    It runs the repository's prometheus.yml (rules included) with the ports
    filled in, or the ``config`` file given instead (``app_port`` is then
    unused); its data and output go into ``folder``. Like any ServerProcess
    it starts on ``with`` (or ``start()``), not before.
    """

    def __init__(
        self,
        app_port: int | None,
        folder: Path,
        *,
        config: Path | None = None,
        binary: str = PROMETHEUS,
        start_timeout: float = 60.0,
    ) -> None:
        self.port = free_port()
        if config is None:
            assert app_port is not None, "the repository's prometheus.yml needs the app's port"
            config = prometheus_config(app_port, self.port, folder)
        command = [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={folder / 'data'}",
            f"--web.listen-address={HOST}:{self.port}",
            "--log.level=warn",
        ]
        super().__init__(
            command,
            f"http://{HOST}:{self.port}",
            ready_path="/-/ready",
            ready_ok_only=True,  # 503 until it has loaded its storage and config
            log_path=folder / "prometheus.log",
            start_timeout=start_timeout,
        )


# ------------------------------------------------------------------ PostgreSQL


def postgres_binary(name: str) -> Path | None:
    """Debian's PostgreSQL program ``name`` (apt-get install postgresql), newest version first."""
    found = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), key=lambda p: p.parts[-3])
    return found[-1] if found else None


def accepts_connections(url: str, timeout: float = 1.0) -> bool:
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=max(1, int(timeout))):
            return True
    except psycopg.OperationalError:
        return False


class PostgresServer(ServerProcess):
    """A throw-away PostgreSQL server on 127.0.0.1 and a free port, stopped by its pid.

    ``initdb`` makes a new cluster in a new temporary folder (trusting local
    connections from user ``titanic``, no fsync: nothing in it outlives the test), then
    ``postgres`` runs in the foreground, so its pid is the server's own. PostgreSQL
    refuses to run as root: as root, both run as the unprivileged user ``run_as``.
    ``url`` is the ``postgresql://`` URL of its database ``postgres``.
    """

    def __init__(self, run_as: str = "postgres", start_timeout: float = 60.0) -> None:
        initdb, postgres = postgres_binary("initdb"), postgres_binary("postgres")
        if initdb is None or postgres is None:
            raise FileNotFoundError("PostgreSQL is not installed (apt-get install postgresql)")
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="titanic-postgres-"))
        self.initdb = [str(initdb), "-D", str(self.folder / "data"), "-U", "titanic"]
        self.initdb += ["--auth=trust", "--encoding=UTF8", "--no-sync"]
        command = [str(postgres), "-D", str(self.folder / "data"), "-h", HOST]
        command += ["-p", str(self.port), "-k", str(self.folder), "-F"]
        super().__init__(
            command,
            f"postgresql://titanic@{HOST}:{self.port}/postgres",
            ready_path="",
            log_path=self.folder / "postgres.log",
            start_timeout=start_timeout,
        )
        self.is_ready = accepts_connections
        if os.geteuid() == 0:
            self.user = run_as
            shutil.chown(self.folder, run_as)

    def start(self) -> PostgresServer:
        try:
            subprocess.run(
                self.initdb, user=self.user, capture_output=True, check=True, timeout=120
            )
            super().start()
        except BaseException:
            shutil.rmtree(self.folder, ignore_errors=True)
            raise
        return self

    def stop(self, sig: int = signal.SIGINT, timeout: float = 15.0) -> int | None:
        """Fast shutdown (SIGINT: SIGTERM would wait for every client to disconnect)."""
        try:
            return super().stop(sig, timeout)
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)

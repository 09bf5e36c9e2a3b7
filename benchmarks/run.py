"""``python -m benchmarks [--quick] [--out FILE] [--note TEXT]``: measure serving speed.

What it does, in order:

1. Starts every server, one after the other, on 127.0.0.1 and a free port:
   the production package ``titanic_api`` (``python -m titanic_api``, one
   process), the same committed model under ``mlflow models serve --env-manager
   local``, four lessons under uvicorn for information
   (``tools.servers.LessonServer``), a second copy of the package that first
   predicts 50,000 passengers (so its log already holds 50,000 lines in the
   running process), and the package under gunicorn with two workers in
   Prometheus' multiprocess mode. For each it times process start to the first
   successful prediction.
2. Warms each server up, then measures in rounds. Within a round the servers
   take turns, in short slices, at single predictions with 1 and then 8
   clients for a fixed time; 100- and 1,000-passenger batches alternate
   between the servers request by request, and the CPU time each server
   process used for them is read from /proc (after a short pause, so that
   work done after answering counts too); then the package and MLflow each
   get 1,000-passenger batches back to back from one client, in turns (so
   work a server does after answering delays its next answer, and the CPU
   per batch includes it); /metrics is scraped; and the package's single
   predictions alternate call by call with the model's ``predict_proba`` in
   this process. Ratios are taken within a round and the
   median over rounds is reported, so other work on the machine slows both
   sides of a comparison alike.
3. Stops every server by its pid (also on Ctrl-C or an error) and prints the
   Markdown report; ``--out`` also writes it to a file.

Exit status 1 if any request failed (the figures would be meaningless), else 0;
a FAIL in the targets table is a finding, not a crash.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.load import Client, Run, alternate, drive, http_probe, time_requests
from benchmarks.report import Environment, render
from tools.servers import HOST, QUIET_ENV, REPO_ROOT, LessonServer, ServerProcess, free_port
from tools.traffic import random_passenger

MODEL_PATH = (
    REPO_ROOT / "mlruns/titanic-survival/models/m-5c784fcf692248669a11bef6a1632938/artifacts"
)
SCRATCH = REPO_ROOT / "benchmarks" / ".scratch"
PREFILL_LINES = 50_000
BATCH_SIZES = (100, 1_000)
CONCURRENCY = (1, 8)
BOOKKEEPING_GRACE = 0.3  # seconds; a 1,000-passenger batch's bookkeeping takes about 4 ms


@dataclass(frozen=True)
class Settings:
    """How long each measurement runs; ``--quick`` shrinks everything."""

    rounds: int
    slot: float  # seconds of load per server, scenario and round
    slices: int  # the slot is cut into this many turns, alternating between servers
    warmup: float  # seconds of single predictions before measuring
    batch_repeat: dict[int, int]  # batches timed per size, server and round
    scrapes: int  # /metrics scrapes timed per server and round
    inprocess_repeat: dict[int, int]  # predict_proba calls timed per size and round
    paired: int  # single predictions alternating with in-process calls, per round


FULL = Settings(
    rounds=5,
    slot=4.0,
    slices=4,
    warmup=1.5,
    batch_repeat={100: 20, 1_000: 10},
    scrapes=30,
    inprocess_repeat={1: 200, 1_000: 30},
    paired=200,
)
QUICK = Settings(
    rounds=1,
    slot=1.5,
    slices=2,
    warmup=0.5,
    batch_repeat={100: 8, 1_000: 5},
    scrapes=10,
    inprocess_repeat={1: 100, 1_000: 10},
    paired=60,
)


@dataclass
class Target:
    """One server under test and how to talk to it."""

    # scenarios: single1, single8 (predictions/s), batch (alternating with the other
    # servers), metrics (scrapes), b2b (batches back to back), paired (vs the model)

    key: str
    label: str
    server: ServerProcess
    predict_path: str
    batch_path: str | None
    metrics: bool
    wrap: Callable[[list[dict[str, object]]], object]  # passengers -> JSON body
    log_dir: Path | None = None
    scenarios: tuple[str, ...] = ("single1", "single8", "batch", "metrics")
    start_to_first_prediction: float = float("nan")
    start_cpu: float = float("nan")  # CPU seconds the server's processes used until then
    log_lines_before: int = 0
    log_lines_after: int = 0
    runs: dict[str, list[Run]] = field(default_factory=dict)

    def body(self, passengers: list[dict[str, object]]) -> bytes:
        return json.dumps(self.wrap(passengers)).encode()

    def record(self, scenario: str, run: Run) -> None:
        self.runs.setdefault(scenario, []).append(run)


ALL_SCENARIOS = ("single1", "single8", "batch", "metrics")


def lesson_body(passengers: list[dict[str, object]]) -> object:
    """A lesson takes one passenger as an object and a batch as a plain list."""
    return passengers[0] if len(passengers) == 1 else passengers


def mlflow_body(passengers: list[dict[str, object]]) -> object:
    """MLflow's scoring server takes rows as ``dataframe_records``, one or many."""
    return {"dataframe_records": passengers}


def make_passengers(count: int, seed: int = 2026) -> list[dict[str, object]]:
    """Valid, varied passengers (the same every run), drawn like tools.traffic draws them."""
    rng = random.Random(seed)
    return [random_passenger(rng) for _ in range(count)]


def first_prediction(target: Target, body: bytes, timeout: float = 60.0) -> float:
    """Seconds from process start until the first 200 from the prediction endpoint."""
    client = Client(target.server.url)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            status, _ = client.call("POST", target.predict_path, body)
            if status == 200:
                return time.perf_counter() - target.server.started_at
            time.sleep(0.02)
    finally:
        client.close()
    raise TimeoutError(f"{target.label} gave no successful prediction within {timeout}s")


def cpu_seconds(pid: int) -> float:
    """CPU time used so far by a process and its children (Linux /proc; NaN elsewhere).

    Start-up is mostly CPU-bound (imports, loading the model): on an idle
    machine the wall time is about this figure; the difference is time spent
    waiting for a core that other programs were using.
    """
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                total += cpu_seconds(int(child))
        return total
    except (OSError, ValueError, IndexError):
        return float("nan")


def wait_for_log_files(folder: Path, count: int, timeout: float = 60.0) -> None:
    """Each worker opens its own prediction log once its model is loaded: wait for all."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(list(folder.glob("*.jsonl"))) >= count:
            return
        time.sleep(0.05)
    raise TimeoutError(f"fewer than {count} workers opened a log in {folder}")


def count_lines(folder: Path | None) -> int:
    if folder is None:
        return 0
    total = 0
    for path in folder.glob("*.jsonl"):
        with path.open("rb") as file:
            total += sum(1 for _ in file)
    return total


@contextmanager
def scratch_folder(keep: bool) -> Iterator[Path]:
    SCRATCH.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=time.strftime("%Y%m%dT%H%M%S_"), dir=SCRATCH))
    try:
        yield folder
    finally:
        if keep:
            print(f"Scratch files kept in {folder}", file=sys.stderr)
        else:
            shutil.rmtree(folder, ignore_errors=True)


def define_targets(scratch: Path) -> list[Target]:
    """Every server of the report, not started yet."""

    def lesson(key: str, label: str, name: str, **kwargs: object) -> Target:
        log_dir = scratch / f"{key}-predictions"
        env = {"PREDICTION_LOG_DIR": str(log_dir)}
        server = LessonServer(name, env=env, log_path=scratch / f"{key}.server.log")
        has_batch = name != "fastapi_04_02_single_app"
        return Target(
            key,
            label,
            server,
            "/predict_single",
            "/predict_batch" if has_batch else None,
            metrics=name.startswith("prometheus_"),
            wrap=lesson_body,
            log_dir=log_dir if name.startswith(("prometheus_03", "prometheus_04")) else None,
            **kwargs,  # type: ignore[arg-type]
        )

    mlflow_port = free_port()
    mlflow = ServerProcess(
        [
            sys.executable,
            "-m",
            "mlflow",
            "models",
            "serve",
            "-m",
            str(MODEL_PATH),
            "--env-manager",
            "local",
            "-h",
            HOST,
            "-p",
            str(mlflow_port),
        ],
        f"http://{HOST}:{mlflow_port}",
        ready_path="/ping",
        env=QUIET_ENV,
        log_path=scratch / "mlflow.server.log",
    )
    only_8 = ("single8",)
    return [
        package("pkg", "titanic_api", scratch, scenarios=(*ALL_SCENARIOS, "b2b", "paired")),
        Target(
            "mlflow",
            "mlflow models serve",
            mlflow,
            "/invocations",
            "/invocations",
            False,
            mlflow_body,
            scenarios=(*ALL_SCENARIOS, "b2b"),
        ),
        lesson("04_02", "fastapi_04_02_single_app", "fastapi_04_02_single_app"),
        lesson("05", "fastapi_05_batch_test_app", "fastapi_05_batch_test_app"),
        lesson("p03", "prometheus_03_logging_app", "prometheus_03_logging_app"),
        lesson("final", "prometheus_04_multi_execute_app", "prometheus_04_multi_execute_app"),
        package(
            "pkg-50k",
            f"titanic_api, {PREFILL_LINES:,} lines logged first",
            scratch,
            scenarios=only_8,
        ),
        package(
            "pkg-2w",
            "titanic_api, gunicorn with 2 workers",
            scratch,
            scenarios=("single8", "metrics"),
            gunicorn=True,
        ),
    ]


def package(
    key: str,
    label: str,
    scratch: Path,
    *,
    scenarios: tuple[str, ...],
    gunicorn: bool = False,
) -> Target:
    """The package, as ``python -m titanic_api`` or under gunicorn (two workers)."""
    port = free_port()
    log_dir = scratch / f"{key}-predictions"
    env = {
        **QUIET_ENV,
        "PREDICTION_LOG_DIR": str(log_dir),
        "TITANIC_HOST": HOST,
        "TITANIC_PORT": str(port),
    }
    command = [sys.executable, "-m", "titanic_api"]
    if gunicorn:
        multiproc = scratch / f"{key}-multiproc"
        multiproc.mkdir()
        env |= {
            "PROMETHEUS_MULTIPROC_DIR": str(multiproc),
            "WEB_CONCURRENCY": "2",
            "TITANIC_BIND": f"{HOST}:{port}",
        }
        command = [sys.executable, "-m", "gunicorn", "-c", "titanic_api/gunicorn_conf.py"]
        command.append("titanic_api.main:app")
    server = ServerProcess(
        command,
        f"http://{HOST}:{port}",
        ready_path="/ready",
        env=env,
        log_path=scratch / f"{key}.server.log",
    )
    return Target(
        key,
        label,
        server,
        "/predict_single",
        "/predict_batch",
        metrics=True,
        wrap=lesson_body,
        log_dir=log_dir,
        scenarios=scenarios,
    )


def start(target: Target, passengers: list[dict[str, object]], settings: Settings) -> None:
    """Start the server, time its first prediction, and warm it up."""
    print(f"  starting {target.label} ...", file=sys.stderr, flush=True)
    target.server.start()
    target.start_to_first_prediction = first_prediction(target, target.body(passengers[:1]))
    target.start_cpu = cpu_seconds(target.server.pid)
    if target.key == "pkg-2w" and target.log_dir is not None:
        wait_for_log_files(target.log_dir, 2)
    singles = [target.body([p]) for p in passengers]
    drive(target.server.url, target.predict_path, singles, concurrency=1, duration=settings.warmup)
    if target.batch_path is not None and "batch" in target.scenarios:
        for size in BATCH_SIZES:
            body = target.body(passengers[:size])
            time_requests(target.server.url, target.batch_path, [body], repeat=3)
    if target.key == "pkg-50k":
        # 50 batches of 1,000: the running process logs 50,000 lines before it is measured.
        assert target.batch_path is not None
        body = target.body(passengers[:1_000])
        run = time_requests(
            target.server.url, target.batch_path, [body], repeat=PREFILL_LINES // 1_000
        )
        if run.errors:
            raise RuntimeError(f"{run.errors} pre-fill batches failed on {target.label}")
    target.log_lines_before = count_lines(target.log_dir)


def measure_round(
    targets: Sequence[Target],
    passengers: list[dict[str, object]],
    settings: Settings,
    model: InProcessModel,
    round_index: int,
) -> None:
    """Every scenario once for every server, in list order or its reverse in odd rounds.

    Servers compared with each other are neighbours in the list, so their
    measurements follow each other closely in time whichever way round.
    """
    order = list(targets) if round_index % 2 == 0 else list(reversed(targets))
    model.measure(settings)
    # Each server's load time is cut into slices that take turns with the other
    # servers' slices: a minute of heavy work elsewhere on the machine then
    # lands on every server, not on whichever happened to be measured.
    for concurrency in CONCURRENCY:
        scenario = f"single{concurrency}"
        loaded = [target for target in order if scenario in target.scenarios]
        slices: dict[str, list[Run]] = {target.key: [] for target in loaded}
        for _ in range(settings.slices):
            for target in loaded:
                singles = [target.body([p]) for p in passengers]
                run = drive(
                    target.server.url,
                    target.predict_path,
                    singles,
                    concurrency=concurrency,
                    duration=settings.slot / settings.slices,
                )
                slices[target.key].append(run)
        for target in loaded:
            target.record(scenario, Run.combine(slices[target.key]))
    # Batches alternate between the servers request by request, so that a burst
    # of other work on the machine slows every server alike.
    batchers = [t for t in order if t.batch_path is not None and "batch" in t.scenarios]
    for size in BATCH_SIZES:
        clients = [Client(target.server.url) for target in batchers]
        probes = {
            target.key: http_probe(
                client,
                target.batch_path or "",
                [
                    target.body(passengers[first : first + size])
                    for first in range(0, len(passengers), size)
                ],
            )
            for target, client in zip(batchers, clients, strict=True)
        }
        cpu_before = {target.key: cpu_seconds(target.server.pid) for target in batchers}
        runs = alternate(probes, settings.batch_repeat[size])
        # The CPU each server spent on these batches, including any work it does
        # after answering (the final lesson's background bookkeeping): let it finish.
        time.sleep(BOOKKEEPING_GRACE)
        for target in batchers:
            used = cpu_seconds(target.server.pid) - cpu_before[target.key]
            runs[target.key].server_cpu = used
            target.record(f"batch{size}", runs[target.key])
        for client in clients:
            client.close()
    for target in order:
        if target.metrics and "metrics" in target.scenarios:
            run = time_requests(
                target.server.url, "/metrics", [b""], repeat=settings.scrapes, method="GET"
            )
            target.record("metrics", run)
    # The package and MLflow: 1,000-passenger batches back to back from one client,
    # a few at a time, taking turns. Work a server does after answering (the
    # package's bookkeeping) delays its next answer here, and counts in its CPU.
    b2b = [target for target in order if "b2b" in target.scenarios]
    body = {target.key: target.body(passengers) for target in b2b}
    turns: dict[str, list[Run]] = {target.key: [] for target in b2b}
    for _ in range(settings.slices):
        for target in b2b:
            cpu_start = cpu_seconds(target.server.pid)
            run = time_requests(
                target.server.url,
                target.batch_path or "",
                [body[target.key]],
                repeat=settings.batch_repeat[1_000] // settings.slices + 1,
            )
            time.sleep(BOOKKEEPING_GRACE)
            run.server_cpu = cpu_seconds(target.server.pid) - cpu_start
            turns[target.key].append(run)
    for target in b2b:
        combined = Run.combine(turns[target.key])
        combined.server_cpu = sum(run.server_cpu for run in turns[target.key])
        target.record("b2b", combined)
    # The package's single-prediction latency, call by call alternating with the
    # model in this process: the two sides of the "within 1.3x" ratio.
    package = next(target for target in targets if "paired" in target.scenarios)
    client = Client(package.server.url)
    singles = [package.body([p]) for p in passengers]
    runs = alternate(
        {"pkg": http_probe(client, package.predict_path, singles), "model": model.predict_one},
        settings.paired,
    )
    client.close()
    package.record("paired", runs["pkg"])
    model.paired.append(runs["model"])


class InProcessModel:
    """The committed model loaded in this process: the limit no server can beat."""

    def __init__(self, passengers: list[dict[str, object]]) -> None:
        os.environ.update(QUIET_ENV)
        import mlflow.sklearn
        import pandas as pd

        self.model = mlflow.sklearn.load_model(str(MODEL_PATH))
        self.frames = {size: pd.DataFrame(passengers[:size]) for size in (1, 1_000)}
        self.medians: list[dict[int, float]] = []  # per round: rows -> median seconds
        self.paired: list[Run] = []  # per round: 1-row calls alternating with the server

    def predict_one(self) -> bool:
        self.model.predict_proba(self.frames[1])
        return True

    def measure(self, settings: Settings) -> None:
        """Median time of ``predict_proba`` on 1 and on 1,000 rows."""
        medians = {}
        for size, frame in self.frames.items():
            self.model.predict_proba(frame)
            durations = []
            for _ in range(settings.inprocess_repeat[size]):
                began = time.perf_counter()
                self.model.predict_proba(frame)
                durations.append(time.perf_counter() - began)
            medians[size] = statistics.median(durations)
        self.medians.append(medians)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Measure how fast the lessons serve, against `mlflow models serve` "
        "on the same model and the model's own in-process limit.",
    )
    parser.add_argument("--quick", action="store_true", help="one short round (about a minute)")
    parser.add_argument("--out", type=Path, help="also write the Markdown report to this file")
    parser.add_argument("--note", default="", help="a sentence to put under the report's title")
    parser.add_argument(
        "--keep-scratch", action="store_true", help="keep server logs and prediction logs"
    )
    args = parser.parse_args(argv)
    settings = QUICK if args.quick else FULL
    began = time.perf_counter()
    environment = Environment.collect(mode="quick" if args.quick else "full", note=args.note)
    passengers = make_passengers(1_000)
    print("Loading the model in process ...", file=sys.stderr, flush=True)
    model = InProcessModel(passengers)
    with scratch_folder(args.keep_scratch) as scratch, ExitStack() as running:
        targets = define_targets(scratch)
        print("Starting the servers one after the other:", file=sys.stderr)
        for target in targets:
            running.callback(target.server.stop)
            start(target, passengers, settings)
        for round_index in range(settings.rounds):
            print(f"Round {round_index + 1} of {settings.rounds} ...", file=sys.stderr, flush=True)
            measure_round(targets, passengers, settings, model, round_index)
        for target in targets:
            target.log_lines_after = count_lines(target.log_dir)
    environment.finish(time.perf_counter() - began)
    report = render(environment, targets, model, describe(settings))
    print(report)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(report)
        print(f"Written to {args.out}", file=sys.stderr)
    failed = sum(run.errors for t in targets for runs in t.runs.values() for run in runs)
    if failed:
        print(f"{failed} requests failed: see the server logs (--keep-scratch)", file=sys.stderr)
    return 1 if failed else 0


def describe(settings: Settings) -> str:
    batches = ", ".join(f"{n} × {size:,}" for size, n in settings.batch_repeat.items())
    return (
        f"{settings.rounds} round(s); per server and round: {settings.slot:g} s of single "
        f"predictions at each concurrency (in {settings.slices} turns taken with the other "
        f"servers), batches timed {batches} passengers (alternating between servers), "
        f"{settings.scrapes} /metrics scrapes; {settings.warmup:g} s warm-up per server"
    )

"""Starting the servers, checking their answers, and measuring them round by round.

Within a round every scenario runs once, and the servers compared with each
other take turns in it: single predictions in short slices, batches request by
request, batches back to back a few at a time (with the model in this process
taking its turn too). A burst of other work on the machine then lands on every
side of a comparison, not on whichever server happened to be measured.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.limit import ModelLimit
from benchmarks.load import Client, Run, alternate, drive, http_probe, time_requests
from benchmarks.targets import (
    BATCHES,
    FEATURES,
    PREFILL_LINES,
    SINGLES,
    Passengers,
    Scenario,
    Server,
    Target,
    count_lines,
    cpu_seconds,
)

BOOKKEEPING_GRACE = 0.3  # seconds for a server to finish what it does after answering


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
    back_to_back: int  # 1,000-passenger batches per server and turn (``slices`` turns a round)
    profile: float  # seconds of py-spy samples of the package, after the rounds


def first_prediction(target: Target, body: bytes, timeout: float = 60.0) -> float:
    """Seconds from process start until the first 200 from the prediction endpoint."""
    client = Client(target.server.url)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            status, _ = client.call("POST", target.api.predict_path, body)
            if status == 200:
                return time.perf_counter() - target.server.started_at
            time.sleep(0.02)
    finally:
        client.close()
    raise TimeoutError(f"{target.label} gave no successful prediction within {timeout}s")


def wait_for_log_files(folder: Path, count: int, timeout: float = 60.0) -> None:
    """Each worker opens its own prediction log once its model is loaded: wait for all."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(list(folder.glob("*.jsonl"))) >= count:
            return
        time.sleep(0.05)
    raise TimeoutError(f"fewer than {count} workers opened a log in {folder}")


def start(target: Target, passengers: Passengers, settings: Settings) -> None:
    """Start the server, time its first prediction, and warm it up."""
    print(f"  starting {target.label} ...", file=sys.stderr, flush=True)
    target.server.start()
    target.start_to_first_prediction = first_prediction(target, target.body(passengers[:1]))
    target.start_cpu = cpu_seconds(target.server.pid)
    if target.name is Server.PACKAGE_TWO_WORKERS and target.log_dir is not None:
        wait_for_log_files(target.log_dir, 2)
    singles = [target.body([p]) for p in passengers]
    drive(
        target.server.url, target.api.predict_path, singles, concurrency=1, duration=settings.warmup
    )
    if target.api.batch_path is not None and Scenario.BATCH_1000 in target.scenarios:
        for size in BATCHES:
            time_requests(
                target.server.url, target.api.batch_path, [target.body(passengers[:size])], repeat=3
            )
    if target.name is Server.PACKAGE_LONG_LOG:
        prefill(target, passengers)
    target.log_lines_before = count_lines(target.log_dir)


def prefill(target: Target, passengers: Passengers) -> None:
    """50 batches of 1,000: the running process logs 50,000 lines before it is measured."""
    assert target.api.batch_path is not None
    body = target.body(passengers[:1_000])
    run = time_requests(
        target.server.url, target.api.batch_path, [body], repeat=PREFILL_LINES // 1_000
    )
    if run.errors:
        raise RuntimeError(f"{run.errors} pre-fill batches failed on {target.label}")


def answered_probabilities(target: Target, passengers: Passengers, expected: np.ndarray) -> str:
    """Whether a server answers ``expected`` for ``passengers``, bit for bit, in one batch."""
    assert target.api.batch_path is not None and target.api.probabilities is not None
    client = Client(target.server.url)
    status, answer = client.call("POST", target.api.batch_path, target.body(passengers))
    client.close()
    if status != 200:
        return f"answered {status}"
    return compare(target.api.probabilities(json.loads(answer)), expected)


def compare(got: np.ndarray, expected: np.ndarray) -> str:
    if got.shape != expected.shape:
        return f"differ: shape {got.shape}, expected {expected.shape}"
    if np.array_equal(got, expected):
        return f"same, bit for bit, for {len(expected):,} passengers"
    return f"differ by up to {np.max(np.abs(got - expected)):.3g}"


def logged_probabilities(folder: Path, passengers: Passengers, expected: np.ndarray) -> str:
    """Whether every prediction a package logged holds ``expected``'s probabilities, bit for bit.

    The package answers the predicted class; the probabilities behind it are in
    its log lines. Every passenger it was sent is one of ``passengers``.
    """
    by_features = {
        tuple(passenger[name] for name in FEATURES): row
        for passenger, row in zip(passengers, expected.tolist(), strict=True)
    }
    checked = wrong = 0
    for path in folder.glob("*.jsonl"):
        for line in path.read_text().splitlines():
            logged = json.loads(line)
            row = by_features[tuple(logged[name] for name in FEATURES)]
            answer = logged["probability"]
            checked += 1
            wrong += [answer["Not Survived"], answer["Survived"]] != row
    if not checked:
        return "no prediction logged"
    if wrong:
        return f"differ in {wrong:,} of {checked:,} logged predictions"
    return f"same, bit for bit, in all {checked:,} logged predictions"


def measure_singles(
    order: Sequence[Target], passengers: Passengers, settings: Settings, concurrency: int
) -> None:
    """Single predictions: each server's slot cut into slices that take turns."""
    scenario = SINGLES[concurrency]
    loaded = [target for target in order if scenario in target.scenarios]
    slices: dict[Server, list[Run]] = {target.name: [] for target in loaded}
    for _ in range(settings.slices):
        for target in loaded:
            run = drive(
                target.server.url,
                target.api.predict_path,
                [target.body([p]) for p in passengers],
                concurrency=concurrency,
                duration=settings.slot / settings.slices,
            )
            slices[target.name].append(run)
    for target in loaded:
        target.record(scenario, Run.combine(slices[target.name]))


def measure_batches(
    order: Sequence[Target], passengers: Passengers, settings: Settings, size: int
) -> None:
    """Batches alternating between the servers request by request, with each one's CPU."""
    scenario = BATCHES[size]
    batchers = [target for target in order if scenario in target.scenarios]
    clients = {target.name: Client(target.server.url) for target in batchers}
    probes = {
        target.name.value: http_probe(
            clients[target.name],
            target.api.batch_path or "",
            [
                target.body(passengers[first : first + size])
                for first in range(0, len(passengers), size)
            ],
        )
        for target in batchers
    }
    cpu_before = {target.name: cpu_seconds(target.server.pid) for target in batchers}
    runs = alternate(probes, settings.batch_repeat[size])
    # Let any work a server does after answering (bookkeeping) finish: it counts.
    time.sleep(BOOKKEEPING_GRACE)
    for target in batchers:
        run = runs[target.name.value]
        run.server_cpu = cpu_seconds(target.server.pid) - cpu_before[target.name]
        target.record(scenario, run)
    for client in clients.values():
        client.close()


def measure_scrapes(order: Sequence[Target], settings: Settings) -> None:
    for target in order:
        if Scenario.METRICS in target.scenarios:
            run = time_requests(
                target.server.url, "/metrics", [b""], repeat=settings.scrapes, method="GET"
            )
            target.record(Scenario.METRICS, run)


def back_to_back(target: Target, body: bytes, repeat: int) -> Run:
    """``repeat`` batches from one client, each sent when the last answer arrived, and the CPU.

    Work a server does after answering delays its next answer here, and counts in its CPU.
    """
    cpu_start = cpu_seconds(target.server.pid)
    run = time_requests(target.server.url, target.api.batch_path or "", [body], repeat=repeat)
    time.sleep(BOOKKEEPING_GRACE)
    run.server_cpu = cpu_seconds(target.server.pid) - cpu_start
    return run


def measure_back_to_back(
    order: Sequence[Target], passengers: Passengers, settings: Settings, limit: ModelLimit
) -> None:
    """1,000-passenger batches back to back, a few at a time per server, taking turns.

    The model in this process takes its turn too (parse the body, ``predict_proba``):
    the limit is measured between the servers, under the same load from elsewhere.
    """
    scenario = Scenario.BACK_TO_BACK
    servers = [target for target in order if scenario in target.scenarios]
    bodies = {target.name: target.body(passengers[:1_000]) for target in servers}
    repeat = settings.back_to_back
    turns: dict[Server, list[Run]] = {target.name: [] for target in servers}
    limit_turns = []
    for _ in range(settings.slices):
        for target in servers:
            turns[target.name].append(back_to_back(target, bodies[target.name], repeat))
        limit_turns.append(limit.batches_back_to_back(repeat))
    for target in servers:
        target.record(scenario, combine_with_cpu(turns[target.name]))
    limit.batches.append(combine_with_cpu(limit_turns))


def combine_with_cpu(runs: Sequence[Run]) -> Run:
    combined = Run.combine(runs)
    combined.server_cpu = sum(run.server_cpu for run in runs)
    return combined


def measure_paired(
    targets: Sequence[Target], passengers: Passengers, settings: Settings, limit: ModelLimit
) -> None:
    """The package's single predictions, call by call alternating with the model in process."""
    package = next(target for target in targets if Scenario.PAIRED in target.scenarios)
    client = Client(package.server.url)
    singles = [package.body([p]) for p in passengers]
    runs = alternate(
        {
            "package": http_probe(client, package.api.predict_path, singles),
            "model": limit.predict_one,
        },
        settings.paired,
    )
    client.close()
    package.record(Scenario.PAIRED, runs["package"])
    limit.paired.append(runs["model"])


def measure_round(
    targets: Sequence[Target],
    passengers: Passengers,
    settings: Settings,
    limit: ModelLimit,
    round_index: int,
) -> None:
    """Every scenario once, the servers in list order, or its reverse in odd rounds."""
    order = list(targets) if round_index % 2 == 0 else list(reversed(targets))
    limit.measure(settings.inprocess_repeat)
    for concurrency in SINGLES:
        measure_singles(order, passengers, settings, concurrency)
    for size in BATCHES:
        measure_batches(order, passengers, settings, size)
    measure_scrapes(order, settings)
    measure_back_to_back(order, passengers, settings, limit)
    measure_paired(targets, passengers, settings, limit)

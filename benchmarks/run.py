"""``python -m benchmarks [--quick] [--out FILE] [--note TEXT]``: measure serving speed.

What it does, in order:

1. Loads the committed model in this process (the limit) and makes the
   peers' virtual environments if they are not there yet (``benchmarks.peers``).
2. Starts every server, one after the other, on 127.0.0.1 and a free port
   (``benchmarks.lineup``): the production package ``titanic_api`` (``python -m
   titanic_api``, one process); its peers on the same committed model, ``mlflow
   models serve --env-manager local``, MLServer and BentoML; four lessons under
   uvicorn for information; a second copy of the package that first predicts
   50,000 passengers (so its log already holds 50,000 lines in the running
   process); and the package under gunicorn with two workers in Prometheus'
   multiprocess mode. For each it times process start to the first successful
   prediction, and checks that the peers answer the probabilities of
   ``Pipeline.predict_proba`` for the same passengers, bit for bit.
3. Warms each server up, then measures in rounds (``benchmarks.measure``).
   Ratios are taken within a round and the median over rounds is reported.
4. Stops every server by its pid (also on Ctrl-C or an error), checks every
   probability the packages logged, and prints the Markdown report
   (``benchmarks.report``); ``--out`` also writes it to a file.

Exit status 1 if any request failed or a server answered other probabilities
(the figures would be meaningless), else 0; a goal not met is a finding, not a crash.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path

from benchmarks.figures import Environment, Results
from benchmarks.limit import ModelLimit
from benchmarks.lineup import define_targets
from benchmarks.measure import (
    Settings,
    answered_probabilities,
    logged_probabilities,
    measure_round,
    start,
)
from benchmarks.profile import profile
from benchmarks.report import render
from benchmarks.targets import Passengers, count_lines, make_passengers
from titanic_api.settings import COMMITTED_MODEL
from tools.servers import REPO_ROOT

SCRATCH = REPO_ROOT / "benchmarks" / ".scratch"
SAME = "same, bit for bit"

FULL = Settings(
    rounds=5,
    slot=4.0,
    slices=4,
    warmup=1.5,
    batch_repeat={100: 20, 1_000: 10},
    scrapes=30,
    inprocess_repeat={1: 200, 1_000: 30},
    paired=200,
    back_to_back=6,
    profile=20.0,
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
    back_to_back=3,
    profile=5.0,
)


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


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Measure how fast titanic_api serves, against its peers (mlflow models "
        "serve, MLServer, BentoML) on the same model and the model's own in-process limit.",
    )
    parser.add_argument("--quick", action="store_true", help="one short round")
    parser.add_argument("--out", type=Path, help="also write the Markdown report to this file")
    parser.add_argument("--note", default="", help="a sentence to put under the report's title")
    parser.add_argument(
        "--keep-scratch", action="store_true", help="keep server logs and prediction logs"
    )
    return parser.parse_args(argv)


def measure(results: Results, passengers: Passengers, settings: Settings, scratch: Path) -> None:
    """Start every server, check its answers, measure all rounds, stop them all."""
    expected = results.limit.probabilities(passengers)
    with ExitStack() as running:
        print("Starting the servers one after the other:", file=sys.stderr)
        for target in results.targets:
            running.callback(target.server.stop)
            start(target, passengers, settings)
            if target.api.probabilities is not None:
                answer = answered_probabilities(target, passengers, expected)
                results.agreement[target.name] = answer
        for round_index in range(settings.rounds):
            print(f"Round {round_index + 1} of {settings.rounds} ...", file=sys.stderr, flush=True)
            measure_round(results.targets, passengers, settings, results.limit, round_index)
        print("Profiling titanic_api with py-spy ...", file=sys.stderr, flush=True)
        body = results.package.body(passengers)
        try:
            results.profile = profile(
                results.package, body, settings.profile, scratch / "py-spy.txt"
            )
        except (OSError, subprocess.SubprocessError) as error:
            results.profile_error = str(error)
    for target in results.targets:
        target.log_lines_after = count_lines(target.log_dir)
        if target.log_dir is not None and target.name.value.startswith("titanic_api"):
            answer = logged_probabilities(target.log_dir, passengers, expected)
            results.agreement[target.name] = answer


def failures(results: Results) -> list[str]:
    """Why the figures would be meaningless: failed requests, other answers."""
    failed = sum(run.errors for t in results.targets for runs in t.runs.values() for run in runs)
    problems = [f"{failed} requests failed: see the server logs (--keep-scratch)"] * bool(failed)
    problems += [
        f"{name.value}'s probabilities {text}"
        for name, text in results.agreement.items()
        if not text.startswith(SAME)
    ]
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    settings = QUICK if args.quick else FULL
    began = time.perf_counter()
    environment = Environment.collect(mode="quick" if args.quick else "full", note=args.note)
    passengers = make_passengers(1_000)
    print("Loading the model in process ...", file=sys.stderr, flush=True)
    limit = ModelLimit(COMMITTED_MODEL, passengers)
    with scratch_folder(args.keep_scratch) as scratch:
        targets, missing = define_targets(COMMITTED_MODEL, scratch)
        results = Results(environment, targets, limit, describe(settings), missing)
        measure(results, passengers, settings, scratch)
    environment.finish(time.perf_counter() - began)
    report = render(results)
    print(report)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(report)
        print(f"Written to {args.out}", file=sys.stderr)
    for problem in failures(results):
        print(problem, file=sys.stderr)
    return 1 if failures(results) else 0


def describe(settings: Settings) -> str:
    batches = ", ".join(f"{n} × {size:,}" for size, n in settings.batch_repeat.items())
    return (
        f"{settings.rounds} round(s); per server and round: {settings.slot:g} s of single "
        f"predictions at each concurrency (in {settings.slices} turns taken with the other "
        f"servers), batches timed {batches} passengers (alternating between servers), "
        f"{settings.slices} × {settings.back_to_back} batches of 1,000 back to back (in turns), "
        f"{settings.scrapes} /metrics scrapes; {settings.warmup:g} s warm-up per server"
    )

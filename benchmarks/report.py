"""The Markdown report: one function per section, each from the run's ``Results``."""

from __future__ import annotations

import platform
import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass

from benchmarks.figures import (
    B2B,
    DASH,
    Results,
    cpu_per_request,
    median_ratio,
    ms,
    paired_rounds,
    rate,
    ratio,
    round_cpu,
    round_median,
    round_rate,
    runs,
    spread,
    started,
    throughput,
    typical,
)
from benchmarks.targets import Scenario, Server, Target

MAIN_ROWS = (
    Server.PACKAGE,
    Server.PACKAGE_QUALITY_OFF,
    Server.MLFLOW,
    Server.MLSERVER,
    Server.BENTOML,
    Server.LESSON_04_02,
    Server.LESSON_05,
    Server.LESSON_P03,
    Server.LESSON_FINAL,
)
LOG_ROWS = (Server.PACKAGE, Server.PACKAGE_LONG_LOG, Server.PACKAGE_TWO_WORKERS)
LIMIT_LABEL = "in process: parse the JSON body, `predict_proba`"


@dataclass(frozen=True)
class Goal:
    text: str
    value: float
    op: str  # "<=", ">=" or "<"
    needed: float

    @property
    def met(self) -> bool:
        if self.op == ">=":
            return self.value >= self.needed
        if self.op == "<=":
            return self.value <= self.needed
        return self.value < self.needed

    def row(self) -> str:
        result = "met" if self.met else "NOT met"
        return f"| {self.text} | {self.value:.2f} | {self.op} {self.needed:.2f} | {result} |"


def header(results: Results) -> list[str]:
    env = results.env
    lines = [f"# Serving benchmark, {env.started:%Y-%m-%d %H:%M} UTC, on {env.machine}", ""]
    if env.note:
        lines += [env.note, ""]
    lines += [
        f"- Command: `python -m benchmarks{' --quick' if env.mode == 'quick' else ''}` "
        f"({env.mode} mode, {env.duration:.0f} s); {results.settings_text}.",
        f"- Machine: {env.cores} cores ({env.usable_cores} usable), {platform.platform()}; "
        f"load average {env.load_before[0]:.2f} before, {env.load_after[0]:.2f} after.",
        "- Versions: " + ", ".join(f"{name} {ver}" for name, ver in env.versions.items()) + ".",
        *peer_lines(results),
        f"- Client: {client_note(results)}",
        "- Every server: one process (unless stated), 127.0.0.1, the same committed model; "
        "`titanic_api` is started with `python -m titanic_api`, the lessons with uvicorn; "
        "a single prediction is one passenger, a batch is one request.",
        "",
    ]
    return lines


def peer_lines(results: Results) -> list[str]:
    """The peers' versions, beside MLflow's, and the peers that could not be measured."""
    mlflow = results.env.versions.get("mlflow", "?")
    lines = [
        f"- Peers, each serving a copy of the committed model whose `python_function` flavour "
        f"calls `predict_proba`: `mlflow models serve` (MLflow {mlflow}, this environment)"
    ]
    for peer in results.peers:
        if peer.name is Server.MLFLOW:
            continue
        versions = ", ".join(f"{name} {ver}" for name, ver in peer.versions.items())
        lines[0] += f"; `{peer.label}` ({versions}, its own virtual environment)"
    lines[0] += "."
    for name, reason in results.missing.items():
        lines.append(f"- **`{name.value}` is not measured**: {reason}")
    return lines


def throughput_table(results: Results) -> list[str]:
    lines = [
        "## Throughput and latency",
        "",
        "| server | req/s, 1 client | p50 / p95 / p99 ms, 1 client | req/s, 8 clients "
        "| p50 / p95 / p99 ms, 8 clients | 100-passenger batch, ms "
        "| 1,000-passenger batch, ms | /metrics scrape, ms | start to first prediction, s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name in MAIN_ROWS:
        if target := results.by_name.get(name):
            lines.append(
                f"| `{target.label}` | {rate(target, Scenario.SINGLE_1)} "
                f"| {spread(target, Scenario.SINGLE_1)} | {rate(target, Scenario.SINGLE_8)} "
                f"| {spread(target, Scenario.SINGLE_8)} "
                f"| {ms(typical(runs(target, Scenario.BATCH_100)))} "
                f"| {ms(typical(runs(target, Scenario.BATCH_1000)))} "
                f"| {ms(typical(runs(target, Scenario.METRICS)))} | {started(target)} |"
            )
    return [*lines, ""]


def batch_table(results: Results) -> list[str]:
    lines = [
        "## A 1,000-passenger batch: the client's wait and the server's work",
        "",
        "Batches sent back to back by one client (a server's work after answering delays "
        "its next answer; the model in this process takes its turn between the servers), "
        "and alternating with the other servers request by request:",
        "",
        "| server | client's wait back to back, ms (median) | server CPU per batch, ms "
        "| client's wait alternating, ms (median) | server CPU per batch alternating, ms |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name in MAIN_ROWS:
        target = results.by_name.get(name)
        if target and runs(target, Scenario.BATCH_1000):
            batches = runs(target, Scenario.BATCH_1000)
            lines.append(
                f"| `{target.label}` | {ms(typical(runs(target, B2B)))} "
                f"| {ms(cpu_per_request(runs(target, B2B)))} "
                f"| {ms(typical(batches))} | {ms(cpu_per_request(batches))} |"
            )
    limit = results.limit.batches
    lines.append(
        f"| {LIMIT_LABEL} | {ms(typical(limit))} | {ms(cpu_per_request(limit))} | {DASH} | {DASH} |"
    )
    return [*lines, ""]


def limit_table(results: Results) -> list[str]:
    medians = results.limit.medians
    return [
        "## The model's own limit (in this process, no HTTP)",
        "",
        "| `predict_proba` on | median time, ms |",
        "| --- | ---: |",
        f"| 1 passenger | {ms(statistics.median(r[1] for r in medians))} |",
        f"| 1,000 passengers | {ms(statistics.median(r[1_000] for r in medians))} |",
        "",
    ]


def agreement_table(results: Results) -> list[str]:
    lines = [
        "## The same answers",
        "",
        "Probabilities for the run's passengers, against `Pipeline.predict_proba` in this "
        "process (the peers: one 1,000-passenger batch after start; the package: every "
        "prediction it logged during the run):",
        "",
        "| server | probabilities |",
        "| --- | --- |",
    ]
    lines += [f"| `{name.value}` | {text} |" for name, text in results.agreement.items()]
    return [*lines, ""]


def logging_table(results: Results) -> list[str]:
    lines = [
        "## Logging with a long log, and two workers",
        "",
        "| server | log lines before → after | req/s, 8 clients | p50 / p95 / p99 ms "
        "| /metrics scrape, ms | start to first prediction, s (CPU s) |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name in LOG_ROWS:
        target = results.by_name[name]
        lines.append(
            f"| `{target.label}` | {target.log_lines_before:,} → {target.log_lines_after:,} "
            f"| {rate(target, Scenario.SINGLE_8)} | {spread(target, Scenario.SINGLE_8)} "
            f"| {ms(typical(runs(target, Scenario.METRICS)))} | {started(target)} |"
        )
    return [*lines, ""]


def peer_ratio_table(results: Results) -> list[str]:
    """`titanic_api` against each peer: the three figures of the goals."""
    package = results.package
    lines = [
        "## `titanic_api` / each peer (ratios within each round; the median over rounds)",
        "",
        "| peer | server CPU per 1,000-passenger batch, back to back | client's wait, "
        "back to back | single predictions/s, 8 clients |",
        "| --- | ---: | ---: | ---: |",
    ]
    for peer in results.peers:
        lines.append(
            f"| `{peer.label}` | {ratio(package, peer, B2B, round_cpu):.2f} "
            f"| {ratio(package, peer, B2B, round_median):.2f} "
            f"| {ratio(package, peer, Scenario.SINGLE_8, round_rate):.2f} |"
        )
    return [*lines, ""]


def best(peers: list[Target], figure: Callable[[Target], float], lowest: bool) -> Target:
    return (min if lowest else max)(peers, key=figure)


def peer_goals(results: Results) -> list[Goal]:
    package, peers = results.package, results.peers
    cheapest = best(peers, lambda t: cpu_per_request(runs(t, B2B)), lowest=True)
    fastest = best(peers, lambda t: typical(runs(t, B2B)), lowest=True)
    busiest = best(peers, lambda t: throughput(t, Scenario.SINGLE_8), lowest=False)
    cpu = cpu_per_request(runs(package, B2B))
    wait = typical(runs(package, B2B))
    return [
        Goal(
            f"`titanic_api` / the cheapest peer, `{cheapest.label}`: server CPU per "
            f"1,000-passenger batch, back to back ({ms(cpu)} ms / "
            f"{ms(cpu_per_request(runs(cheapest, B2B)))} ms)",
            ratio(package, cheapest, B2B, round_cpu),
            "<=",
            0.8,
        ),
        Goal(
            f"`titanic_api` / the fastest peer, `{fastest.label}`: client's wait for "
            f"1,000-passenger batches back to back ({ms(wait)} ms / "
            f"{ms(typical(runs(fastest, B2B)))} ms)",
            ratio(package, fastest, B2B, round_median),
            "<=",
            0.8,
        ),
        Goal(
            f"`titanic_api` / the busiest peer, `{busiest.label}`: single predictions/s, "
            f"8 clients ({rate(package, Scenario.SINGLE_8)} / {rate(busiest, Scenario.SINGLE_8)})",
            ratio(package, busiest, Scenario.SINGLE_8, round_rate),
            ">=",
            1.5,
        ),
        Goal(
            "`titanic_api` / the model in process: CPU per 1,000-passenger batch (the server's, "
            f"back to back / parsing the body and `predict_proba`: {ms(cpu)} ms / "
            f"{ms(cpu_per_request(results.limit.batches))} ms)",
            median_ratio(paired_rounds(runs(package, B2B), results.limit.batches, round_cpu)),
            "<=",
            1.3,
        ),
    ]


def own_goals(results: Results) -> list[Goal]:
    package, long_log = results.package, results.by_name[Server.PACKAGE_LONG_LOG]
    paired, limit = runs(package, Scenario.PAIRED), results.limit.paired
    return [
        Goal(
            "`titanic_api` single-prediction latency, 1 client / in-process `predict_proba` "
            f"on 1 passenger (medians of alternating calls: {ms(typical(paired))} ms "
            f"/ {ms(typical(limit))} ms)",
            median_ratio(paired_rounds(paired, limit, round_median)),
            "<=",
            1.3,
        ),
        Goal(
            f"`titanic_api` with {long_log.log_lines_before:,} lines logged / with a new log: "
            "req/s, 8 clients",
            ratio(long_log, package, Scenario.SINGLE_8, round_rate),
            ">=",
            0.95,
        ),
        Goal(
            f"`titanic_api` start to first prediction ({package.start_to_first_prediction:.2f} "
            f"s, of which {package.start_cpu:.2f} s on a CPU) / 5 s",
            package.start_to_first_prediction / 5.0,
            "<",
            1.0,
        ),
    ]


def goals_table(results: Results) -> list[str]:
    lines = [
        "## Goals (ratios taken within each round; the median over rounds)",
        "",
        "| goal | ratio | needed | result |",
        "| --- | ---: | ---: | --- |",
    ]
    goals = (peer_goals(results) if results.peers else []) + own_goals(results)
    return [*lines, *(goal.row() for goal in goals), ""]


def information(results: Results) -> list[str]:
    by_name = results.by_name
    final, mlflow = by_name[Server.LESSON_FINAL], by_name[Server.MLFLOW]
    two, off = by_name[Server.PACKAGE_TWO_WORKERS], by_name.get(Server.PACKAGE_QUALITY_OFF)
    quality = (
        f"the model-quality features on / off, server CPU per 1,000-passenger batch back to "
        f"back: {ratio(results.package, off, B2B, round_cpu):.2f}× "
        f"({ms(cpu_per_request(runs(results.package, B2B)))} ms / "
        f"{ms(cpu_per_request(runs(off, B2B)))} ms); "
        if off
        else ""
    )
    return [
        f"For information: {quality}the final lesson / `mlflow models serve`, single "
        "predictions/s with "
        f"8 clients: {ratio(final, mlflow, Scenario.SINGLE_8, round_rate):.2f}×; "
        "gunicorn with two workers (multiprocess mode) / one process, single predictions/s "
        f"with 8 clients: {ratio(two, results.package, Scenario.SINGLE_8, round_rate):.2f}× "
        f"on {results.env.usable_cores} cores.",
        "",
    ]


def profile_table(results: Results) -> list[str]:
    """Where the package's CPU per batch goes, by py-spy's samples."""
    lines = ["## Where `titanic_api`'s CPU per 1,000-passenger batch goes (py-spy)", ""]
    parts, samples = results.profile
    if not samples:
        return [*lines, f"Not profiled: {results.profile_error or 'no samples'}.", ""]
    cpu = cpu_per_request(runs(results.package, B2B))
    lines += [
        f"{samples:,} samples of the server's busy thread at 250 per second, while one client "
        "sent batches back to back, after the rounds; each share applied to the CPU per batch "
        f"back to back ({ms(cpu)} ms):",
        "",
        "| part of the work | share of the samples | ms per batch |",
        "| --- | ---: | ---: |",
    ]
    lines += [
        f"| {name} | {share:.0%} | {ms(share * cpu)} |"
        for name, share in parts.items()
        if share >= 0.005  # a part of less than half a percent is left out
    ]
    return [*lines, ""]


SECTIONS = (
    header,
    throughput_table,
    batch_table,
    limit_table,
    agreement_table,
    logging_table,
    peer_ratio_table,
    profile_table,
    goals_table,
    information,
)


def render(results: Results) -> str:
    return "\n".join(line for section in SECTIONS for line in section(results))


def client_note(results: Results) -> str:
    """How much CPU the load generator itself used: it shares the machine with the server."""
    cpu = requests = 0.0
    busy = []
    for target in results.targets:
        for run in runs(target, Scenario.SINGLE_8):
            cpu += run.client_cpu
            requests += run.requests
            busy.append(run.client_cpu / run.elapsed if run.elapsed else 0.0)
    if not requests:
        return "no load was generated."
    return (
        f"{sys.implementation.name} threads with one keep-alive `http.client` connection each; "
        f"{cpu / requests * 1e6:.0f} µs of client CPU per request, "
        f"{statistics.median(busy) * 100:.0f}% of one core at 8 clients."
    )

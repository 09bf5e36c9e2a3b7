"""Turn the benchmark's runs into a Markdown report: tables, ratios and PASS/FAIL."""

from __future__ import annotations

import os
import platform
import statistics
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING

from benchmarks.load import Run, percentile

if TYPE_CHECKING:
    from benchmarks.run import InProcessModel, Target

PACKAGES = (
    "fastapi",
    "starlette",
    "uvicorn",
    "httptools",
    "uvloop",
    "pydantic",
    "pandas",
    "numpy",
    "scikit-learn",
    "mlflow",
    "prometheus-client",
)
DASH = "—"


@dataclass
class Environment:
    """Where and when the figures were taken."""

    mode: str
    note: str
    started: datetime
    machine: str
    cores: int
    usable_cores: int
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float] = (0.0, 0.0, 0.0)
    duration: float = 0.0
    versions: dict[str, str] = field(default_factory=dict)

    @classmethod
    def collect(cls, mode: str, note: str) -> Environment:
        versions = {"python": platform.python_version()}
        for name in PACKAGES:
            try:
                versions[name] = version(name)
            except PackageNotFoundError:
                versions[name] = "not installed"
        return cls(
            mode=mode,
            note=note,
            started=datetime.now(UTC),
            machine=platform.node() or "unknown",
            cores=os.cpu_count() or 0,
            usable_cores=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 0,
            load_before=os.getloadavg(),
            versions=versions,
        )

    def finish(self, duration: float) -> None:
        self.load_after = os.getloadavg()
        self.duration = duration


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}" if seconds == seconds else DASH


def median_ratio(values: Sequence[tuple[float, float]]) -> float:
    """The median over rounds of numerator / denominator, each pair from one round."""
    ratios = [a / b for a, b in values if b]
    return statistics.median(ratios) if ratios else float("nan")


def runs(target: Target, scenario: str) -> list[Run]:
    return target.runs.get(scenario, [])


def throughput(target: Target, scenario: str) -> float:
    """Median over rounds of successful requests per second."""
    values = [run.throughput for run in runs(target, scenario)]
    return statistics.median(values) if values else float("nan")


def latencies(target: Target, scenario: str) -> list[float]:
    return [value for run in runs(target, scenario) for value in run.latencies]


def typical(target: Target, scenario: str) -> float:
    """Median time of one request, all rounds together."""
    values = latencies(target, scenario)
    return statistics.median(values) if values else float("nan")


def server_cpu_per_request(target: Target, scenario: str) -> float:
    """The server's CPU seconds per request, all rounds together (its clock ticks are coarse)."""
    measured = [run for run in runs(target, scenario) if run.server_cpu == run.server_cpu]
    requests = sum(run.requests for run in measured)
    return sum(run.server_cpu for run in measured) / requests if requests else float("nan")


def spread(target: Target, scenario: str) -> str:
    values = latencies(target, scenario)
    if not values:
        return DASH
    return " / ".join(ms(percentile(values, q)) for q in (50, 95, 99))


def rate(target: Target, scenario: str) -> str:
    value = throughput(target, scenario)
    return f"{value:.0f}" if value == value else DASH


def per_round(
    first: Target, second: Target, scenario: str, measure: Callable[[Run], float]
) -> list[tuple[float, float]]:
    return [
        (measure(a), measure(b))
        for a, b in zip(runs(first, scenario), runs(second, scenario), strict=False)
    ]


def round_median(run: Run) -> float:
    return statistics.median(run.latencies) if run.latencies else float("nan")


def cpu_per_request(run: Run) -> float:
    return run.server_cpu / run.requests if run.requests else float("nan")


def render(
    env: Environment,
    targets: Sequence[Target],
    model: InProcessModel,
    settings_text: str,
) -> str:
    by_key = {target.key: target for target in targets}
    pkg, mlflow = by_key["pkg"], by_key["mlflow"]
    full_log, two = by_key["pkg-50k"], by_key["pkg-2w"]
    main_rows = [by_key[key] for key in ("pkg", "mlflow", "04_02", "05", "p03", "final")]
    inproc_1 = statistics.median(r[1] for r in model.medians)
    inproc_1000 = statistics.median(r[1_000] for r in model.medians)

    lines = [
        f"# Serving benchmark, {env.started:%Y-%m-%d %H:%M} UTC, on {env.machine}",
        "",
    ]
    if env.note:
        lines += [env.note, ""]
    lines += [
        f"- Command: `python -m benchmarks{' --quick' if env.mode == 'quick' else ''}` "
        f"({env.mode} mode, {env.duration:.0f} s); {settings_text}.",
        f"- Machine: {env.cores} cores ({env.usable_cores} usable), {platform.platform()}; "
        f"load average {env.load_before[0]:.2f} before, {env.load_after[0]:.2f} after.",
        "- Versions: " + ", ".join(f"{name} {ver}" for name, ver in env.versions.items()) + ".",
        f"- Client: {client_note(targets)}",
        "- Every server: one process (unless stated), 127.0.0.1, the same committed model; "
        "`titanic_api` is started with `python -m titanic_api`, the lessons with uvicorn; "
        "a single prediction is one passenger, a batch is one request.",
        "",
        "## Throughput and latency",
        "",
        "| server | req/s, 1 client | p50 / p95 / p99 ms, 1 client | req/s, 8 clients "
        "| p50 / p95 / p99 ms, 8 clients | 100-passenger batch, ms "
        "| 1,000-passenger batch, ms | /metrics scrape, ms | start to first prediction, s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for target in main_rows:
        lines.append(
            f"| `{target.label}` | {rate(target, 'single1')} | {spread(target, 'single1')} "
            f"| {rate(target, 'single8')} | {spread(target, 'single8')} "
            f"| {ms(typical(target, 'batch100'))} | {ms(typical(target, 'batch1000'))} "
            f"| {ms(typical(target, 'metrics'))} | {started(target)} |"
        )
    lines += [
        "",
        "## A 1,000-passenger batch: the client's wait and the server's work",
        "",
        "Batches sent back to back by one client (a server's work after answering delays "
        "its next answer), and alternating with the other servers request by request:",
        "",
        "| server | client's wait back to back, ms (median) | server CPU per batch, ms "
        "| client's wait alternating, ms (median) | server CPU per batch alternating, ms |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for target in main_rows:
        if runs(target, "batch1000"):
            lines.append(
                f"| `{target.label}` | {ms(typical(target, 'b2b'))} "
                f"| {ms(server_cpu_per_request(target, 'b2b'))} "
                f"| {ms(typical(target, 'batch1000'))} "
                f"| {ms(server_cpu_per_request(target, 'batch1000'))} |"
            )
    lines += [
        "",
        "## The model's own limit (in this process, no HTTP)",
        "",
        "| `predict_proba` on | median time, ms |",
        "| --- | ---: |",
        f"| 1 passenger | {ms(inproc_1)} |",
        f"| 1,000 passengers | {ms(inproc_1000)} |",
        "",
        "## Logging with a long log, and two workers",
        "",
        "| server | log lines before → after | req/s, 8 clients | p50 / p95 / p99 ms "
        "| /metrics scrape, ms | start to first prediction, s (CPU s) |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for target in (pkg, full_log, two):
        lines.append(
            f"| `{target.label}` | {target.log_lines_before:,} → {target.log_lines_after:,} "
            f"| {rate(target, 'single8')} | {spread(target, 'single8')} "
            f"| {ms(typical(target, 'metrics'))} | {started(target)} |"
        )

    def req_s(run: Run) -> float:
        return run.throughput

    checks = [
        (
            "`titanic_api` / `mlflow models serve`: server CPU per 1,000-passenger batch, "
            f"back to back ({ms(server_cpu_per_request(pkg, 'b2b'))} ms / "
            f"{ms(server_cpu_per_request(mlflow, 'b2b'))} ms)",
            median_ratio(per_round(pkg, mlflow, "b2b", cpu_per_request)),
            "<=",
            1.0,
        ),
        (
            "`titanic_api` / `mlflow models serve`: client's wait for 1,000-passenger batches "
            f"back to back ({ms(typical(pkg, 'b2b'))} ms / {ms(typical(mlflow, 'b2b'))} ms)",
            median_ratio(per_round(pkg, mlflow, "b2b", round_median)),
            "<=",
            0.8,
        ),
        (
            "`titanic_api` / `mlflow models serve`: single predictions/s, 8 clients",
            median_ratio(per_round(pkg, mlflow, "single8", req_s)),
            ">=",
            1.3,
        ),
        (
            "`titanic_api` single-prediction latency, 1 client / in-process `predict_proba` "
            f"on 1 passenger (medians of alternating calls: {ms(typical(pkg, 'paired'))} ms "
            f"/ {ms(statistics.median(v for run in model.paired for v in run.latencies))} ms)",
            median_ratio(
                [
                    (round_median(run), round_median(limit))
                    for run, limit in zip(runs(pkg, "paired"), model.paired, strict=False)
                ]
            ),
            "<=",
            1.3,
        ),
        (
            f"`titanic_api` with {full_log.log_lines_before:,} lines logged / with a new log: "
            "req/s, 8 clients",
            median_ratio(per_round(full_log, pkg, "single8", req_s)),
            ">=",
            0.95,
        ),
        (
            f"`titanic_api` start to first prediction ({pkg.start_to_first_prediction:.2f} s, "
            f"of which {pkg.start_cpu:.2f} s on a CPU) / 5 s",
            pkg.start_to_first_prediction / 5.0,
            "<",
            1.0,
        ),
    ]
    lines += [
        "",
        "## Targets (ratios taken within each round; the median over rounds)",
        "",
        "| target | ratio | needed | result |",
        "| --- | ---: | ---: | --- |",
    ]
    for text, ratio, op, needed in checks:
        passed = (
            ratio >= needed if op == ">=" else ratio <= needed if op == "<=" else ratio < needed
        )
        lines.append(
            f"| {text} | {ratio:.2f} | {op} {needed:.2f} | {'PASS' if passed else 'FAIL'} |"
        )
    final = by_key["final"]
    lines += [
        "",
        "For information: the final lesson / `mlflow models serve`, single predictions/s with "
        f"8 clients: {median_ratio(per_round(final, mlflow, 'single8', req_s)):.2f}×; "
        "gunicorn with two workers (multiprocess mode) / one process, single predictions/s "
        f"with 8 clients: {median_ratio(per_round(two, pkg, 'single8', req_s)):.2f}× "
        f"on {env.usable_cores} cores.",
        "",
    ]
    return "\n".join(lines)


def started(target: Target) -> str:
    """Wall time from process start to the first prediction, and the CPU time it took."""
    return f"{target.start_to_first_prediction:.2f} ({target.start_cpu:.2f})"


def client_note(targets: Sequence[Target]) -> str:
    """How much CPU the load generator itself used: it shares the machine with the server."""
    cpu = requests = 0.0
    busy = []
    for target in targets:
        for run in runs(target, "single8"):
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

"""The figures of one run: where it ran, what it measured, and the ratios taken from it."""

from __future__ import annotations

import os
import platform
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version

from benchmarks.limit import ModelLimit
from benchmarks.load import Run, percentile
from benchmarks.targets import PEERS, Scenario, Server, Target

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
B2B = Scenario.BACK_TO_BACK


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


@dataclass
class Results:
    """Everything one run measured, as the report needs it."""

    env: Environment
    targets: Sequence[Target]
    limit: ModelLimit
    settings_text: str
    missing: dict[Server, str] = field(default_factory=dict)  # peer -> why it is missing
    agreement: dict[Server, str] = field(default_factory=dict)  # server -> same answers?
    profile: tuple[dict[str, float], int] = ({}, 0)  # the package: part -> share, samples
    profile_error: str = ""

    def __post_init__(self) -> None:
        self.by_name = {target.name: target for target in self.targets}

    @property
    def package(self) -> Target:
        return self.by_name[Server.PACKAGE]

    @property
    def peers(self) -> list[Target]:
        return [self.by_name[name] for name in PEERS if name in self.by_name]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}" if seconds == seconds else DASH


def median_ratio(values: Sequence[tuple[float, float]]) -> float:
    """The median over rounds of numerator / denominator, each pair from one round."""
    ratios = [a / b for a, b in values if b]
    return statistics.median(ratios) if ratios else float("nan")


def runs(target: Target, scenario: Scenario) -> list[Run]:
    return target.runs.get(scenario, [])


def throughput(target: Target, scenario: Scenario) -> float:
    """Median over rounds of successful requests per second."""
    values = [run.throughput for run in runs(target, scenario)]
    return statistics.median(values) if values else float("nan")


def latencies(target_runs: Sequence[Run]) -> list[float]:
    return [value for run in target_runs for value in run.latencies]


def typical(target_runs: Sequence[Run]) -> float:
    """Median time of one request, all rounds together."""
    values = latencies(target_runs)
    return statistics.median(values) if values else float("nan")


def cpu_per_request(target_runs: Sequence[Run]) -> float:
    """CPU seconds per request, all rounds together (the clock ticks are coarse)."""
    measured = [run for run in target_runs if run.server_cpu == run.server_cpu]
    requests = sum(run.requests for run in measured)
    return sum(run.server_cpu for run in measured) / requests if requests else float("nan")


def spread(target: Target, scenario: Scenario) -> str:
    values = latencies(runs(target, scenario))
    if not values:
        return DASH
    return " / ".join(ms(percentile(values, q)) for q in (50, 95, 99))


def rate(target: Target, scenario: Scenario) -> str:
    value = throughput(target, scenario)
    return f"{value:.0f}" if value == value else DASH


def paired_rounds(
    first: Sequence[Run], second: Sequence[Run], measure: Callable[[Run], float]
) -> list[tuple[float, float]]:
    return [(measure(a), measure(b)) for a, b in zip(first, second, strict=False)]


def round_median(run: Run) -> float:
    return statistics.median(run.latencies) if run.latencies else float("nan")


def round_cpu(run: Run) -> float:
    return run.server_cpu / run.requests if run.requests else float("nan")


def round_rate(run: Run) -> float:
    return run.throughput


def ratio(
    first: Target, second: Target, scenario: Scenario, measure: Callable[[Run], float]
) -> float:
    return median_ratio(paired_rounds(runs(first, scenario), runs(second, scenario), measure))


def started(target: Target) -> str:
    """Wall time from process start to the first prediction, and the CPU time it took."""
    return f"{target.start_to_first_prediction:.2f} ({target.start_cpu:.2f})"

"""The report from made-up runs: the peers, the limit, the goals and what is missing.

Every figure here is invented, so the ratios are known exactly; no server runs.
"""

from __future__ import annotations

import ast
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.figures import Environment, Results
from benchmarks.load import Run
from benchmarks.report import render
from benchmarks.targets import LESSON_API, MLFLOW_API, V2_API, Scenario, Server, Target
from tools.servers import REPO_ROOT, ServerProcess


class FakeLimit:
    """What the report reads from ``ModelLimit``."""

    def __init__(self, cpu: float) -> None:
        self.medians = [{1: 0.004, 1_000: 0.008}]
        self.paired = [run(0.005)]
        self.batches = [run(0.010, cpu=cpu)]


def run(latency: float, *, cpu: float = float("nan"), rate: float = 100.0) -> Run:
    """Ten requests of ``latency`` s each, ``cpu`` s of server CPU each, at ``rate`` per s."""
    return Run(
        requests=10,
        elapsed=10 / rate,
        server_cpu=cpu * 10,
        latencies=[latency] * 10,
    )


def target(name: Server, *, b2b_cpu: float, b2b_wait: float, rate: float) -> Target:
    api = {Server.MLFLOW: MLFLOW_API, Server.MLSERVER: V2_API}.get(name, LESSON_API)
    made = Target(name, ServerProcess(["true"], "http://127.0.0.1:1"), api, ())
    made.start_to_first_prediction, made.start_cpu = 4.0, 3.0
    made.runs = {
        Scenario.SINGLE_1: [run(0.005, rate=rate / 2)],
        Scenario.SINGLE_8: [run(0.040, rate=rate)],
        Scenario.BATCH_100: [run(0.007, cpu=0.006)],
        Scenario.BATCH_1000: [run(0.015, cpu=0.014)],
        Scenario.BACK_TO_BACK: [run(b2b_wait, cpu=b2b_cpu)],
        Scenario.PAIRED: [run(0.006)],
        Scenario.METRICS: [run(0.002)],
    }
    return made


def results(*, package_cpu: float, missing: dict[Server, str]) -> Results:
    env = Environment(
        mode="quick",
        note="",
        started=datetime(2026, 12, 6, 5, 0, tzinfo=UTC),
        machine="vm",
        cores=2,
        usable_cores=2,
        load_before=(1.0, 1.0, 1.0),
        versions={"mlflow": "3.17.2"},
    )
    mlserver = target(Server.MLSERVER, b2b_cpu=0.020, b2b_wait=0.016, rate=150.0)
    mlserver.versions = {"mlserver": "1.7.1", "mlserver-mlflow": "1.7.1"}
    targets = [
        target(Server.PACKAGE, b2b_cpu=package_cpu, b2b_wait=0.010, rate=300.0),
        target(Server.PACKAGE_QUALITY_OFF, b2b_cpu=0.008, b2b_wait=0.009, rate=300.0),
        target(Server.MLFLOW, b2b_cpu=0.015, b2b_wait=0.020, rate=100.0),
        mlserver,
        *(
            target(name, b2b_cpu=0.02, b2b_wait=0.02, rate=100.0)
            for name in (Server.LESSON_FINAL, Server.PACKAGE_LONG_LOG, Server.PACKAGE_TWO_WORKERS)
        ),
    ]
    agreement = {Server.MLFLOW: "same, bit for bit, for 1,000 passengers"}
    return Results(env, targets, FakeLimit(cpu=0.008), "settings", missing, agreement)  # type: ignore[arg-type]


def goal_rows(report: str) -> list[str]:
    section = report[report.index("## Goals") :]
    return [row for row in section.splitlines() if row.startswith("| `titanic_api`")]


def test_the_goals_compare_the_package_with_the_best_peer_for_each_figure() -> None:
    report = render(results(package_cpu=0.010, missing={}))
    rows = goal_rows(report)
    assert rows[0] == (
        "| `titanic_api` / the cheapest peer, `mlflow models serve`: server CPU per "
        "1,000-passenger batch, back to back (10.0 ms / 15.0 ms) | 0.67 | <= 0.80 | met |"
    )
    assert rows[1] == (
        "| `titanic_api` / the fastest peer, `MLServer (mlserver-mlflow)`: client's wait for "
        "1,000-passenger batches back to back (10.0 ms / 16.0 ms) | 0.62 | <= 0.80 | met |"
    )
    assert rows[2] == (
        "| `titanic_api` / the busiest peer, `MLServer (mlserver-mlflow)`: single "
        "predictions/s, 8 clients (300 / 150) | 2.00 | >= 1.50 | met |"
    )
    assert rows[3] == (
        "| `titanic_api` / the model in process: CPU per 1,000-passenger batch (the server's, "
        "back to back / parsing the body and `predict_proba`: 10.0 ms / 8.0 ms) "
        "| 1.25 | <= 1.30 | met |"
    )


def test_a_goal_missed_says_not_met() -> None:
    rows = goal_rows(render(results(package_cpu=0.013, missing={})))
    assert rows[0].endswith("| 0.87 | <= 0.80 | NOT met |")
    assert rows[3].endswith("| 1.62 | <= 1.30 | NOT met |")


def test_the_report_gives_each_peers_versions_the_limit_and_a_missing_peers_error() -> None:
    error = "ERROR: No matching distribution found for bentoml==1.4.40"
    report = render(results(package_cpu=0.010, missing={Server.BENTOML: error}))
    assert (
        "`mlflow models serve` (MLflow 3.17.2, this environment); `MLServer (mlserver-mlflow)` "
        "(mlserver 1.7.1, mlserver-mlflow 1.7.1, its own virtual environment)."
    ) in report
    assert f"- **`BentoML (bentoml.mlflow)` is not measured**: {error}" in report.splitlines()
    assert "| in process: parse the JSON body, `predict_proba` | 10.0 | 8.0 | — | — |" in report
    assert "| `mlflow models serve` | same, bit for bit, for 1,000 passengers |" in report
    assert "| `MLServer (mlserver-mlflow)` | 0.50 | 0.62 | 2.00 |" in report
    assert (
        "For information: the model-quality features on / off, server CPU per "
        "1,000-passenger batch back to back: 1.25× (10.0 ms / 8.0 ms); the final lesson"
    ) in report


BENCHMARKS = REPO_ROOT / "benchmarks"


def long_units(source: str, function_lines: int = 60, module_lines: int = 400) -> list[str]:
    """Functions over ``function_lines`` lines, and the module if over ``module_lines``."""
    tree = ast.parse(source)
    found = [
        f"{node.name}: {node.end_lineno - node.lineno + 1} lines"  # type: ignore[operator]
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno - node.lineno + 1 > function_lines  # type: ignore[operator]
    ]
    lines = len(source.splitlines())
    return found + ([f"module: {lines} lines"] if lines > module_lines else [])


def test_the_benchmark_is_in_short_units() -> None:
    assert {
        path.name: long_units(path.read_text())
        for path in BENCHMARKS.glob("*.py")
        if long_units(path.read_text())
    } == {}


def test_the_length_check_finds_a_long_function() -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(60))
    assert long_units(f"def f():\n{body}\n") == ["f: 61 lines"]
    assert long_units("x = 1\n" * 401) == ["module: 401 lines"]


def imports(path: Path) -> set[str]:
    """The modules of ``benchmarks`` that a module imports."""
    tree = ast.parse(path.read_text())
    modules = (node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom))
    return {module for module in modules if module and module.startswith("benchmarks")}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every import path that comes back to where it started."""
    found = []

    def follow(path: list[str]) -> None:
        for name in sorted(graph.get(path[-1], ())):
            if name == path[0]:
                found.append([*path, name])
            elif name not in path:
                follow([*path, name])

    for start in graph:
        follow([start])
    return found


def test_no_module_of_the_benchmark_imports_itself_back() -> None:
    graph = {f"benchmarks.{path.stem}": imports(path) for path in BENCHMARKS.glob("*.py")}
    assert graph["benchmarks.run"] >= {"benchmarks.report", "benchmarks.measure"}
    assert cycles(graph) == []
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}})[0] == ["a", "b", "c", "a"]

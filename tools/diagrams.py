"""The two diagrams, drawn with matplotlib: the golden signals, and how the pieces fit together.

``python -m tools.make_images --only diagrams`` draws them into images/; the suite draws them
again into a temporary folder (tests/site/test_images.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no window

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

DIAGRAMS = ("golden_signals.png", "architecture.png")
COLORS = {
    "traffic": "#4C72B0",
    "latency": "#DD8452",
    "errors": "#C44E52",
    "saturation": "#55A868",
    "box": "#F2F2F2",
    "edge": "#555555",
}
# (signal, the question it answers, this project's metric, a PromQL query, colour)
SIGNALS = [
    (
        "Traffic",
        "How much is asked of the service?",
        "http_requests_total\n(Counter, by method, endpoint, status_code)",
        "sum by (endpoint) (rate(http_requests_total[5m]))",
        COLORS["traffic"],
    ),
    (
        "Latency",
        "How long do answers take?",
        "http_request_duration_seconds\n(Histogram, by endpoint)",
        "histogram_quantile(0.95, sum by (le)\n (rate(http_request_duration_seconds_bucket[5m])))",
        COLORS["latency"],
    ),
    (
        "Errors",
        "How many requests fail?",
        "http_errors_total\n(Counter of 5xx answers, by method, endpoint)",
        "sum(rate(http_errors_total[5m]))\n / sum(rate(http_requests_total[5m]))",
        COLORS["errors"],
    ),
    (
        "Saturation",
        "How full is the service?",
        "http_requests_in_progress (Gauge)\n"
        "process_cpu_seconds_total\nprocess_resident_memory_bytes",
        "http_requests_in_progress\nrate(process_cpu_seconds_total[5m])",
        COLORS["saturation"],
    ),
]
# The architecture's boxes: (x, y, width, height, text, colour), in axes fractions.
BOXES = [
    (
        0.02,
        0.6,
        0.16,
        0.2,
        "client\nrequests, curl,\nSwagger UI (/docs),\ntools.traffic",
        "#E8EEF7",
    ),
    (0.02, 0.14, 0.16, 0.2, "MLflow model\nmlruns/\n(scikit-learn pipeline)", "#EFE6F5"),
    (
        0.3,
        0.3,
        0.19,
        0.44,
        "FastAPI lesson\nunder uvicorn\n\nPOST /predict_single\nPOST /predict_batch\n"
        "POST /simulate_predictions\nGET /health",
        "#FFF4E0",
    ),
    (0.6, 0.6, 0.14, 0.16, "GET /metrics\n(Prometheus\ntext format)", COLORS["box"]),
    (0.6, 0.12, 0.14, 0.22, "logs/\npredictions_*.jsonl\none JSON line\nper passenger", "#E7F4EA"),
    (0.83, 0.6, 0.15, 0.16, "Prometheus :9090\nscrapes, stores,\nPromQL, alerts", "#FBE5E5"),
    (0.83, 0.86, 0.15, 0.09, "Grafana :3000\ndashboard JSON", "#E3F1F8"),
    (0.83, 0.12, 0.15, 0.22, "pandas\n(the notebook)\naudit, drift,\nretraining data", "#F5F5DC"),
]
# Its arrows: (start, end, label, label offset).
ARROWS = [
    ((0.19, 0.7), (0.29, 0.62), "JSON requests", (0.0, 0.05)),
    ((0.19, 0.24), (0.29, 0.4), "loaded once\n(lifespan)", (0.0, -0.07)),
    ((0.5, 0.64), (0.59, 0.68), "counters,\nhistograms", (0.0, 0.07)),
    ((0.5, 0.38), (0.59, 0.26), "append", (0.0, -0.05)),
    ((0.82, 0.68), (0.75, 0.68), "scrapes\nevery 15 s", (0.0, 0.08)),
    ((0.905, 0.77), (0.905, 0.85), "PromQL", (-0.05, 0.0)),
    ((0.75, 0.23), (0.82, 0.23), "read_json", (0.0, 0.05)),
]


def _canvas(title: str, size: tuple[float, float]) -> tuple[Any, Any]:
    """A figure with one empty axes spanning [0, 1] x [0, 1], titled."""
    fig, ax = plt.subplots(figsize=size, dpi=110)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.axis("off")
    ax.set_title(title, fontsize=14, fontweight="bold")
    return fig, ax


def _box(ax: Any, x: float, y: float, w: float, h: float, text: str, color: str) -> None:
    style = "round,pad=0.008,rounding_size=0.02"
    ax.add_patch(
        FancyBboxPatch(
            (x, y), w, h, boxstyle=style, facecolor=color, edgecolor=COLORS["edge"], linewidth=1.2
        )
    )
    ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=10)


def _arrow(
    ax: Any,
    start: tuple[float, float],
    end: tuple[float, float],
    label: str,
    offset: tuple[float, float],
) -> None:
    ax.add_patch(
        FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=16, color=COLORS["edge"])
    )
    mid = ((start[0] + end[0]) / 2 + offset[0], (start[1] + end[1]) / 2 + offset[1])
    white = {"facecolor": "white", "edgecolor": "none", "pad": 1.5}
    ax.text(*mid, label, ha="center", va="center", fontsize=8.5, style="italic", bbox=white)


def _signal_card(ax: Any, signal: tuple[str, str, str, str, str], x: float, y: float) -> None:
    """One signal's card: its name, question, metric and a PromQL query."""
    name, question, metric, promql, color = signal
    ax.add_patch(
        FancyBboxPatch(
            (x, y),
            0.47,
            0.4,
            boxstyle="round,pad=0.005,rounding_size=0.02",
            facecolor=color + "22",
            edgecolor=color,
            linewidth=2,
        )
    )
    ax.text(x + 0.02, y + 0.35, name, fontsize=15, fontweight="bold", color=color, va="center")
    ax.text(x + 0.02, y + 0.285, question, fontsize=11, style="italic", va="center")
    ax.text(x + 0.02, y + 0.2, metric, fontsize=9.5, family="monospace", va="center")
    ax.text(
        x + 0.02,
        y + 0.075,
        "PromQL: " + promql,
        fontsize=8.5,
        family="monospace",
        va="center",
        color="#333333",
    )


def draw_golden_signals(path: Path) -> None:
    """The four golden signals, the question each answers and this project's metric for it."""
    fig, ax = _canvas(
        "The four golden signals, as prometheus_01 and later lessons measure them", (12, 7.2)
    )
    positions = [(0.02, 0.5), (0.51, 0.5), (0.02, 0.04), (0.51, 0.04)]
    for signal, (x, y) in zip(SIGNALS, positions, strict=True):
        _signal_card(ax, signal, x, y)
    ax.text(
        0.5,
        0.465,
        "measured for every request by one HTTP middleware in the lesson,"
        " never for /metrics itself",
        ha="center",
        va="center",
        fontsize=9.5,
        color="#444444",
    )
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)


def draw_architecture(path: Path) -> None:
    """How the pieces connect: lesson -> /metrics -> Prometheus -> Grafana, and the log."""
    fig, ax = _canvas(
        "How the tutorial fits together (final lesson: prometheus_04_multi_execute_app)", (13, 6)
    )
    for box in BOXES:
        _box(ax, *box)
    for arrow in ARROWS:
        _arrow(ax, *arrow)
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)


def make_diagrams(out: Path) -> list[Path]:
    signals, architecture = (out / name for name in DIAGRAMS)
    draw_golden_signals(signals)
    draw_architecture(architecture)
    return [signals, architecture]

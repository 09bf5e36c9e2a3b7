"""A preview of the Grafana dashboard: every panel's query run against Prometheus, drawn.

Grafana itself cannot run where the pictures are made, so ``draw_grafana_preview`` lays out
grafana_dashboard/titanic_api_simple_app_monitoring.json as Grafana would (its ``gridPos``),
runs each panel's PromQL through Prometheus' HTTP API (Grafana's variables replaced by
tools.grafana_dashboard's rule) and draws the answers with matplotlib the way Grafana draws
the panel's type. The picture says, in its title, that it is a preview.
"""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no window

import matplotlib.pyplot as plt  # noqa: E402

from tools import grafana_dashboard  # noqa: E402

# How a panel's unit is shown: (scale, suffix).
UNITS = {
    "s": (1000.0, " ms"),
    "bytes": (1 / 2**20, " MiB"),
    "percentunit": (100.0, " %"),
    "reqps": (1.0, " req/s"),
}
GRID_ROW_INCHES = 0.3
TITLE_INCHES = 1.2
PANEL_COLOR = "#181b1f"


@dataclass
class Series:
    """One series a panel draws: its legend, seconds since the start, values in the unit."""

    name: str
    times: list[float]
    values: list[float]
    format: str


def prom_query_range(prometheus: str, expr: str, start: float, end: float) -> list[dict[str, Any]]:
    """Run a PromQL range query through Prometheus' HTTP API; the result's series."""
    query = urllib.parse.urlencode({"query": expr, "start": start, "end": end, "step": "2s"})
    with urllib.request.urlopen(f"{prometheus}/api/v1/query_range?{query}", timeout=30) as reply:
        answer = json.load(reply)
    if answer.get("status") != "success":
        raise RuntimeError(f"Prometheus refused {expr!r}: {answer}")
    series: list[dict[str, Any]] = answer["data"]["result"]
    return series


def legend(template: str, labels: dict[str, str]) -> str:
    """Grafana's ``legendFormat``: ``{{label}}`` replaced by the series' label values."""
    if not template or template == "__auto":
        return ", ".join(f"{k}={v}" for k, v in labels.items() if k != "__name__")
    for key, value in labels.items():
        template = template.replace("{{" + key + "}}", value).replace("{{ " + key + " }}", value)
    return template


def bucket_bars(series: list[tuple[str, float]]) -> tuple[list[str], list[float]]:
    """Cumulative ``le`` buckets as per-bucket counts, labelled by their range (format heatmap)."""
    ordered = sorted(series, key=lambda item: float(item[0]))
    names, counts, below, lower = [], [], 0.0, "0"
    for le, cumulative in ordered:
        upper = "inf" if le == "+Inf" else f"{float(le):g}"
        names.append(f"{lower}–{upper}" if upper != "inf" else f"> {lower}")
        counts.append(max(cumulative - below, 0.0))
        below, lower = cumulative, upper
    return names, counts


def unit(panel: dict[str, Any]) -> tuple[float, str]:
    return UNITS.get(panel.get("fieldConfig", {}).get("defaults", {}).get("unit"), (1.0, ""))


def query_panel(panel: dict[str, Any], prometheus: str, start: float, end: float) -> list[Series]:
    """Every series of every query of the panel, over [start, end]."""
    scale, _ = unit(panel)
    values = {
        **grafana_dashboard.FOR_PROMETHEUS,
        "__rate_interval": "15s",
        "__range": f"{max(int(end - start), 10)}s",
    }
    found = []
    for target in panel.get("targets", []):
        if not target.get("expr"):
            continue
        expr = grafana_dashboard.for_prometheus(target["expr"], values)
        for series in prom_query_range(prometheus, expr, start, end):
            found.append(
                Series(
                    legend(target.get("legendFormat", ""), series["metric"]),
                    [float(t) - start for t, _ in series["values"]],
                    [float(v) * scale for _, v in series["values"]],
                    target.get("format", ""),
                )
            )
    return found


def draw_stat(ax: Any, results: list[Series], suffix: str) -> None:
    """Big last values side by side (e.g. Replicas up: up, scraped), as Grafana lays them out."""
    ax.axis("off")
    for i, series in enumerate(results):
        x, y = (i + 0.5) / len(results), 0.55
        text = f"{series.values[-1]:,.4g}{suffix}"
        ax.text(
            x,
            y,
            text,
            ha="center",
            va="center",
            fontsize=26,
            color="#73bf69",
            fontweight="bold",
            transform=ax.transAxes,
        )
        ax.text(
            x, y - 0.22, series.name, ha="center", va="center", fontsize=8, transform=ax.transAxes
        )


def draw_pie(ax: Any, results: list[Series]) -> None:
    last = [(s.name, s.values[-1]) for s in results if s.values and s.values[-1] > 0]
    ax.pie(
        [v for _, v in last],
        labels=[f"{n}\n{v:,.0f}" for n, v in last],
        textprops={"fontsize": 8, "color": "#d8d9da"},
        startangle=90,
        wedgeprops={"width": 0.45},
    )


def draw_bars(ax: Any, results: list[Series]) -> None:
    if all(s.format == "heatmap" for s in results):
        names, counts = bucket_bars([(s.name, s.values[-1]) for s in results])
    else:
        names, counts = [s.name for s in results], [s.values[-1] for s in results]
    ax.barh(names, counts, color="#5794f2")
    ax.invert_yaxis()
    ax.tick_params(labelsize=7)
    for name, count in zip(names, counts, strict=True):
        ax.text(count, name, f" {count:,.0f}", va="center", fontsize=7)


def draw_lines(ax: Any, results: list[Series], suffix: str) -> None:
    for series in results:
        ax.plot(series.times, series.values, label=series.name, linewidth=1.4)
    ax.tick_params(labelsize=7)
    ax.set_xlabel("seconds of traffic", fontsize=7)
    if suffix:
        ax.set_ylabel(suffix.strip(), fontsize=7)
    ax.legend(fontsize=6.5, loc="upper left", framealpha=0.4)
    ax.grid(alpha=0.2)


def draw_panel(ax: Any, panel: dict[str, Any], prometheus: str, start: float, end: float) -> None:
    """One panel, drawn the way Grafana draws its type, from live query results."""
    results = query_panel(panel, prometheus, start, end)
    _, suffix = unit(panel)
    ax.set_title(panel.get("title", ""), fontsize=10, loc="left", color="#d8d9da")
    kind = panel.get("type", "timeseries")
    if not results:
        ax.text(0.5, 0.5, "No data", ha="center", va="center", transform=ax.transAxes)
        ax.axis("off")
    elif kind == "stat":
        draw_stat(ax, results, suffix)
    elif kind == "piechart":
        draw_pie(ax, results)
    elif kind == "bargauge":
        draw_bars(ax, results)
    else:
        draw_lines(ax, results, suffix)


def draw_titles(fig: Any, dashboard: dict[str, Any], lesson: str, fig_h: float) -> None:
    """The picture's title (saying it is a preview) and the dashboard's row titles."""
    title = f"PREVIEW of the Grafana dashboard \u201c{dashboard.get('title', '')}\u201d"
    fig.text(0.5, 1 - 0.35 / fig_h, title, ha="center", va="center", fontsize=15, fontweight="bold")
    fig.text(
        0.5,
        1 - 0.75 / fig_h,
        "not a Grafana screenshot: each panel's PromQL was run against a live Prometheus "
        f"scraping {lesson} and drawn with matplotlib",
        ha="center",
        va="center",
        fontsize=10,
        color="#aaaaaa",
    )
    for row in (p for p in dashboard.get("panels", []) if p.get("type") == "row"):
        y = 1 - (TITLE_INCHES + (row["gridPos"]["y"] + 0.5) * GRID_ROW_INCHES) / fig_h
        fig.text(0.01, y, row.get("title", ""), fontsize=11, fontweight="bold", va="center")


def panel_box(grid: dict[str, int], fig_h: float) -> tuple[float, float, float, float]:
    """Where a panel's ``gridPos`` (24 columns, rows of GRID_ROW_INCHES) lands in the figure."""
    bottom = 1 - (TITLE_INCHES + (grid["y"] + grid["h"]) * GRID_ROW_INCHES) / fig_h
    return (
        grid["x"] / 24 + 0.03 * grid["w"] / 24 + 0.012,
        bottom + 0.45 / fig_h,
        grid["w"] / 24 * 0.94 - 0.018,
        (grid["h"] * GRID_ROW_INCHES - 0.85) / fig_h,
    )


def draw_grafana_preview(
    prometheus: str, start: float, end: float, path: Path, lesson: str
) -> None:
    """The dashboard laid out as in Grafana (its gridPos), every query run against Prometheus."""
    dashboard = grafana_dashboard.load()
    panels = grafana_dashboard.panels(dashboard)
    height = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in panels)
    fig_h = height * GRID_ROW_INCHES + TITLE_INCHES
    with plt.style.context("dark_background"):
        fig = plt.figure(figsize=(16, fig_h), dpi=90, facecolor="#111217")
        draw_titles(fig, dashboard, lesson, fig_h)
        for panel in panels:
            ax = fig.add_axes(panel_box(panel["gridPos"], fig_h), facecolor=PANEL_COLOR)
            draw_panel(ax, panel, prometheus, start, end)
        fig.savefig(path, facecolor=fig.get_facecolor())
        plt.close(fig)

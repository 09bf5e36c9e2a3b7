"""Plain helpers shared by the test modules (fixtures live in conftest.py)."""

from __future__ import annotations

import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

from lessons import LESSONS as ALL_LESSONS

# The example passengers live in tools/examples.py, shared with the notebook.
from tools.examples import CHILD as CHILD
from tools.examples import PASSENGER as PASSENGER
from tools.examples import SURVIVOR as SURVIVOR
from tools.servers import REPO_ROOT

# The teaching order lives in lessons/__init__.py, the one place it is written.
LESSONS = list(ALL_LESSONS)
MODEL_LESSONS = LESSONS[3:]
VALIDATED_LESSONS = LESSONS[4:]
BATCH_LESSONS = LESSONS[5:]
METRICS_LESSONS = LESSONS[6:]
LOGGING_LESSONS = LESSONS[9:]
FINAL_LESSON = LESSONS[-1]


@dataclass(frozen=True)
class Metrics:
    """One scrape of /metrics, parsed with prometheus_client's own parser."""

    samples: dict[tuple[str, frozenset[tuple[str, str]]], float]
    types: dict[str, str]

    @classmethod
    def parse(cls, text: str) -> Metrics:
        samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
        types: dict[str, str] = {}
        for family in text_string_to_metric_families(text):
            types[family.name] = family.type
            for sample in family.samples:
                samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
        return cls(samples, types)

    def value(self, name: str, **labels: str) -> float:
        """The sample's value; 0.0 if the series does not exist (yet)."""
        return self.samples.get((name, frozenset(labels.items())), 0.0)

    def names(self) -> set[str]:
        """Every sample name exposed (with _total, _bucket, ... suffixes)."""
        return {name for name, _ in self.samples}

    def label_values(self, name: str, label: str) -> set[str]:
        return {
            dict(labels)[label] for n, labels in self.samples if n == name and label in dict(labels)
        }

    def delta(self, before: Metrics, names: Iterable[tuple[str, dict[str, str]]]) -> list[float]:
        return [self.value(n, **lab) - before.value(n, **lab) for n, lab in names]


def scrape(base_url: str) -> Metrics:
    """GET ``base_url``/metrics from a live server and parse it."""
    with urllib.request.urlopen(base_url + "/metrics", timeout=10) as response:
        return Metrics.parse(response.read().decode())


def scrape_until(
    base_url: str, settled: Callable[[Metrics], bool], timeout: float = 10.0
) -> Metrics:
    """Scrape until ``settled(scrape)`` holds or ``timeout`` seconds pass; the last scrape.

    The final lesson updates its model metrics in a background task after each
    answer has gone out, so a scrape sent right after the last answer can come
    a moment too early. The caller still asserts on the scrape it gets: a count
    that never settles on the expected value fails there, with the values.
    """
    deadline = time.monotonic() + timeout
    metrics = scrape(base_url)
    while not settled(metrics) and time.monotonic() < deadline:
        time.sleep(0.05)
        metrics = scrape(base_url)
    return metrics


def git_status() -> set[str] | None:
    """The lines of ``git status --porcelain`` (None outside a git checkout)."""
    try:
        result = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=all"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return set(result.stdout.splitlines())

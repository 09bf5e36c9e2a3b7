"""One scrape of /metrics, parsed with prometheus_client's own parser."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import httpx2
from prometheus_client.parser import text_string_to_metric_families


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


def scrape(server: httpx2.Client | str) -> Metrics:
    """GET /metrics, check the 200 and parse it.

    ``server`` is a client (FastAPI's ``TestClient`` is one) or a live server's base URL.
    """
    if isinstance(server, str):
        response = httpx2.get(server + "/metrics", timeout=10)
    else:
        response = server.get("/metrics")
    assert response.status_code == 200, response.text
    return Metrics.parse(response.text)


def scrape_until(
    server: httpx2.Client | str, settled: Callable[[Metrics], bool], timeout: float = 10.0
) -> Metrics:
    """Scrape until ``settled(scrape)`` holds or ``timeout`` seconds pass; the last scrape.

    The final lesson updates its model metrics in a background task after each
    answer has gone out, so a scrape sent right after the last answer can come
    a moment too early. The caller still asserts on the scrape it gets: a count
    that never settles on the expected value fails there, with the values.
    """
    deadline = time.monotonic() + timeout
    metrics = scrape(server)
    while not settled(metrics) and time.monotonic() < deadline:
        time.sleep(0.05)
        metrics = scrape(server)
    return metrics

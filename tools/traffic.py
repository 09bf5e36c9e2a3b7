"""Send a realistic mix of traffic to a running lesson, so its dashboard has something to show.

From the repository root, with the final lesson running on port 8000::

    python -m tools.traffic --url http://127.0.0.1:8000 --duration 60 --rate 5

For ``--duration`` seconds it sends about ``--rate`` requests a second, one at a
time, drawn from a fixed mix: single predictions, batches of 2 to 20 passengers,
simulations (``POST /simulate_predictions``), health checks, the odd invalid
passenger (422) and the odd unknown path (404). It prints what it sent and the
status codes it got. ``--seed`` makes the run repeatable.

Passengers are real ones: rows of ``data/titanic.csv`` drawn at random (a missing age
filled with the age of another passenger of the same class and sex, a missing port
with ``S``), so that ``--profile normal`` traffic looks like the data the model learned
from. Uniformly random passengers would not: their fares alone (5 to 300, where three
passengers in four paid under 32) are a drift. Two more profiles make the model
monitoring's drill (docs/model_monitoring.md) with the production package::

    python -m tools.traffic --profile drifted      # older, richer, first-class passengers
    python -m tools.traffic --profile mislabelled  # labels that say each prediction was wrong
    python -m tools.traffic --labels               # normal traffic, and its true labels

``drifted`` shifts the features in ``DRIFTED_FEATURES`` only (Age + 30 years, Fare
times 5, Pclass 1); ``--labels`` sends each answered passenger's true label to
``POST /feedback`` with the ``prediction_id`` the API gave it; ``mislabelled`` sends the
opposite label instead. The final lesson has no ``POST /feedback``: use ``--labels``
and ``mislabelled`` against ``titanic_api`` only.

It is bounded on purpose: at most ``MAX_DURATION`` seconds and ``MAX_RATE``
requests a second, and only to a loopback address unless ``--allow-remote`` is
given, so it cannot be pointed at somebody else's server by accident.
"""

from __future__ import annotations

import argparse
import csv
import functools
import ipaddress
import json
import random
import socket
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from titanic_api.simulation import random_passenger

DATA = Path(__file__).resolve().parents[1] / "data" / "titanic.csv"
FEATURES = ("Pclass", "Sex", "Age", "SibSp", "Parch", "Fare", "Embarked")
PROFILES = ("normal", "drifted", "mislabelled")
# What --profile drifted changes, each inside what the API accepts (Age < 100, Fare <= 1000).
DRIFTS: dict[str, Callable[[Any], Any]] = {
    "Age": lambda age: min(99.0, round(age + 30, 1)),  # older
    "Fare": lambda fare: min(1000.0, round(fare * 5, 2)),  # richer
    "Pclass": lambda pclass: 1,  # first class
}
DRIFTED_FEATURES = tuple(DRIFTS)
FEEDBACK_RESULTS = ("accepted", "unknown", "already_labelled")
MAX_DURATION = 3600.0
MAX_RATE = 50.0
TIMEOUT = 10.0

# (kind, weight): how often each kind of request is sent.
MIX: tuple[tuple[str, int], ...] = (
    ("single", 50),
    ("batch", 15),
    ("simulation", 10),
    ("health", 10),
    ("invalid", 8),
    ("unknown_path", 7),
)
# The status code each kind must get from the final lesson when its model is loaded.
EXPECTED_STATUS = {
    "single": 200,
    "batch": 200,
    "simulation": 200,
    "health": 200,
    "invalid": 422,
    "unknown_path": 404,
}


@dataclass(frozen=True)
class Request:
    """One HTTP request to send: method, path (with query) and JSON body."""

    kind: str
    method: str
    path: str
    body: object = None
    passengers: int = 0  # how many passengers the model predicts if it succeeds
    labels: tuple[int, ...] = ()  # what really happened to each of them (Survived)


@dataclass
class Report:
    """What a run sent and got back."""

    sent: Counter[tuple[str, int]] = field(default_factory=Counter)  # (kind, status) -> count
    passengers: int = 0  # passengers predicted (requests answered 200 only)
    seconds: float = 0.0
    labels: Counter[str] = field(default_factory=Counter)  # POST /feedback's answers, added

    @property
    def total(self) -> int:
        return sum(self.sent.values())

    def count(self, kind: str, status: int | None = None) -> int:
        return sum(n for (k, s), n in self.sent.items() if k == kind and status in (None, s))

    def summary(self) -> str:
        lines = [f"{self.total} requests in {self.seconds:.1f} s, {self.passengers} passengers"]
        lines += [f"  {kind:<13} {status}  {n}" for (kind, status), n in sorted(self.sent.items())]
        if self.labels:
            lines.append("  labels: " + ", ".join(f"{n} {r}" for r, n in self.labels.items()))
        return "\n".join(lines)


@functools.cache
def real_passengers() -> tuple[tuple[dict[str, object], int], ...]:
    """Every passenger of ``data/titanic.csv`` as the API takes it, with what happened to them.

    A missing age becomes the age of another passenger of the same class and sex (drawn
    with a fixed seed), a missing port ``S``, the most frequent one: the API refuses
    passengers without them, and dropping those rows would change the class mix.
    """
    with DATA.open(encoding="utf-8", newline="") as file:
        rows = list(csv.DictReader(file))
    ages: dict[tuple[str, str], list[float]] = {}
    for row in rows:
        if row["Age"]:
            ages.setdefault((row["Pclass"], row["Sex"]), []).append(float(row["Age"]))
    fill = random.Random(0)
    passengers = []
    for row in rows:
        age = float(row["Age"]) if row["Age"] else fill.choice(ages[(row["Pclass"], row["Sex"])])
        passenger = {
            "Pclass": int(row["Pclass"]),
            "Sex": row["Sex"],
            "Age": age,
            "SibSp": int(row["SibSp"]),
            "Parch": int(row["Parch"]),
            "Fare": float(row["Fare"]),
            "Embarked": row["Embarked"] or "S",
        }
        passengers.append((passenger, int(row["Survived"])))
    return tuple(passengers)


def passenger(rng: random.Random, profile: str = "normal") -> tuple[dict[str, object], int]:
    """A real passenger and their fate; ``drifted`` shifts the ``DRIFTED_FEATURES``."""
    features, survived = rng.choice(real_passengers())
    if profile == "drifted":
        features = features | {name: DRIFTS[name](features[name]) for name in DRIFTS}
    return dict(features), survived


def next_request(rng: random.Random, profile: str = "normal", simulation: bool = True) -> Request:
    """Draw the next request from ``MIX``, its passengers from ``profile``.

    ``simulation=False`` leaves simulations out of the mix, for a service that does not
    serve them (titanic_api's default: ``TITANIC_ENABLE_SIMULATION``).
    """
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    mix = MIX if simulation else tuple((kind, w) for kind, w in MIX if kind != "simulation")
    kinds, weights = zip(*mix, strict=True)
    kind = rng.choices(kinds, weights)[0]
    if kind in ("single", "batch"):
        size = 1 if kind == "single" else rng.randint(2, 20)
        drawn = [passenger(rng, profile) for _ in range(size)]
        body = drawn[0][0] if kind == "single" else [features for features, _ in drawn]
        path = "/predict_single" if kind == "single" else "/predict_batch"
        labels = tuple(survived for _, survived in drawn)
        return Request(kind, "POST", path, body, passengers=size, labels=labels)
    if kind == "simulation":
        n = rng.randint(5, 25)
        return Request(kind, "POST", f"/simulate_predictions?num_executions={n}", passengers=n)
    if kind == "health":
        return Request(kind, "GET", "/health")
    if kind == "invalid":
        bad = {**random_passenger(rng), "Age": -1}  # Age must be above 0: 422
        return Request(kind, "POST", "/predict_single", bad)
    return Request(kind, "GET", f"/no-such-page-{rng.randint(1, 3)}")


def feedback(request: Request, answer: Any, wrong: bool = False) -> Request | None:
    """``POST /feedback`` with the true labels of an answered prediction request (or not them).

    ``answer``: the API's JSON answer, whose items carry a ``prediction_id`` each.
    ``wrong``: send the opposite of each true label (the ``mislabelled`` profile).
    """
    items = answer.get("batch_predictions", [answer]) if isinstance(answer, dict) else []
    ids = [item.get("prediction_id") for item in items if isinstance(item, dict)]
    if not request.labels or len(ids) != len(request.labels) or None in ids:
        return None
    body = [
        {"prediction_id": pid, "survived": 1 - label if wrong else label}
        for pid, label in zip(ids, request.labels, strict=True)
    ]
    return Request("feedback", "POST", "/feedback", body)


def call(base_url: str, request: Request) -> tuple[int, Any]:
    """Send one request; its status code and JSON answer (None if not JSON).

    Raises ``OSError`` (``urllib.error.URLError``) when nothing answers.
    """
    data = None if request.body is None else json.dumps(request.body).encode()
    http_request = urllib.request.Request(
        base_url + request.path,
        data=data,
        method=request.method,
        headers={"Content-Type": "application/json"} if data is not None else {},
    )
    try:
        with urllib.request.urlopen(http_request, timeout=TIMEOUT) as response:
            status, text = int(response.status), response.read()
    except urllib.error.HTTPError as error:
        status, text = int(error.code), error.read()
    try:
        return status, json.loads(text)
    except ValueError:
        return status, None


def send(base_url: str, request: Request) -> int:
    """Send one request; return its status code (0 if there was no answer)."""
    try:
        return call(base_url, request)[0]
    except OSError:
        return 0


def is_loopback(url: str) -> bool:
    """True if every address the URL's host resolves to is a loopback address."""
    host = urllib.parse.urlsplit(url).hostname
    if not host:
        return False
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return all(ipaddress.ip_address(info[4][0]).is_loopback for info in infos)


def check_target(url: str, allow_remote: bool = False) -> str:
    """The URL without a trailing slash; refuses non-HTTP and (by default) non-loopback URLs."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url!r}")
    if not allow_remote and not is_loopback(url):
        raise ValueError(
            f"{parts.hostname} is not a loopback address; pass --allow-remote to send traffic"
            " to a server that is not on this machine"
        )
    return url.rstrip("/")


def check_bounds(duration: float, rate: float) -> None:
    """Refuse runs that are not bounded in time and rate."""
    if not 0 < duration <= MAX_DURATION:
        raise ValueError(f"duration must be above 0 and at most {MAX_DURATION:.0f} s")
    if not 0 < rate <= MAX_RATE:
        raise ValueError(f"rate must be above 0 and at most {MAX_RATE:.0f} requests/s")


def run(
    url: str,
    duration: float,
    rate: float,
    *,
    seed: int | None = None,
    allow_remote: bool = False,
    on_response: Callable[[Request, int], None] | None = None,
    profile: str = "normal",
    labels: bool = False,
) -> Report:
    """Send requests to ``url`` for ``duration`` seconds at about ``rate`` a second.

    Requests are paced on a fixed schedule (request i at start + i / rate); a
    slow answer delays the next one rather than causing a burst to catch up.
    With ``labels`` (always for ``mislabelled``), each answered prediction request is
    followed by its labels on ``POST /feedback``.
    """
    check_bounds(duration, rate)
    base_url = check_target(url, allow_remote)
    rng = random.Random(seed)
    report = Report()
    start = time.monotonic()
    deadline = start + duration
    i = 0
    while True:
        due = max(start + i / rate, time.monotonic())
        if due >= deadline:
            break
        time.sleep(max(0.0, due - time.monotonic()))
        request = next_request(rng, profile)
        status = exchange(base_url, request, report, labels=labels_of(profile, labels))
        if on_response is not None:
            on_response(request, status)
        i += 1
    report.seconds = time.monotonic() - start
    return report


def labels_of(profile: str, labels: bool) -> str | None:
    """Which labels a run sends: ``"wrong"`` ones (mislabelled), ``"true"`` ones, or none."""
    return "wrong" if profile == "mislabelled" else "true" if labels else None


def exchange(base_url: str, request: Request, report: Report, labels: str | None) -> int:
    """Send ``request`` (then its ``labels``, if any and answered); count both in ``report``."""
    try:
        status, answer = call(base_url, request)
    except OSError:
        status, answer = 0, None
    report.sent[(request.kind, status)] += 1
    if status != 200:
        return status
    report.passengers += request.passengers
    label_request = feedback(request, answer, labels == "wrong") if labels else None
    if label_request is not None:
        try:
            label_status, counts = call(base_url, label_request)
        except OSError:
            label_status, counts = 0, None
        report.sent[("feedback", label_status)] += 1
        if label_status == 200 and isinstance(counts, dict):
            report.labels.update({r: int(counts.get(r, 0)) for r in FEEDBACK_RESULTS})
    return status


def parser() -> argparse.ArgumentParser:
    """The command line: ``python -m tools.traffic --help``."""
    parser = argparse.ArgumentParser(
        prog="python -m tools.traffic",
        description="Send a realistic mix of requests to a running lesson for a while.",
    )
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="the lesson's base URL")
    parser.add_argument(
        "--duration", type=float, default=60.0, help=f"seconds to run (max {MAX_DURATION:.0f})"
    )
    parser.add_argument(
        "--rate", type=float, default=5.0, help=f"requests per second (max {MAX_RATE:.0f})"
    )
    parser.add_argument("--seed", type=int, default=None, help="repeat a run exactly")
    parser.add_argument(
        "--profile",
        choices=PROFILES,
        default="normal",
        help="passengers like the training data (normal), older, richer and first class"
        " (drifted), or normal ones followed by wrong labels (mislabelled)",
    )
    parser.add_argument(
        "--labels",
        action="store_true",
        help="send each answered passenger's true label to POST /feedback (titanic_api only)",
    )
    parser.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow a URL that is not on this machine (loopback only by default)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    command = parser()
    args = command.parse_args(argv)
    try:
        check_bounds(args.duration, args.rate)
        base_url = check_target(args.url, args.allow_remote)
    except ValueError as error:
        command.error(str(error))
    print(f"Sending about {args.rate:g} requests/s to {base_url} for {args.duration:g} s ...")
    report = run(
        base_url,
        args.duration,
        args.rate,
        seed=args.seed,
        allow_remote=True,
        profile=args.profile,
        labels=args.labels,
    )
    print(report.summary())
    unanswered = sum(n for (_, status), n in report.sent.items() if status == 0)
    if unanswered:
        print(f"{unanswered} requests got no answer from {base_url}: is the lesson running?")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

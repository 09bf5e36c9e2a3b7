"""Send a realistic mix of traffic to a running lesson, so its dashboard has something to show.

From the repository root, with the final lesson running on port 8000::

    python -m tools.traffic --url http://127.0.0.1:8000 --duration 60 --rate 5

For ``--duration`` seconds it sends about ``--rate`` requests a second, one at a
time, drawn from a fixed mix: single predictions, batches of 2 to 20 passengers,
simulations (``POST /simulate_predictions``), health checks, the odd invalid
passenger (422) and the odd unknown path (404). It prints what it sent and the
status codes it got. ``--seed`` makes the run repeatable.

It is bounded on purpose: at most ``MAX_DURATION`` seconds and ``MAX_RATE``
requests a second, and only to a loopback address unless ``--allow-remote`` is
given, so it cannot be pointed at somebody else's server by accident.
"""

from __future__ import annotations

import argparse
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

from titanic_api.simulation import random_passenger

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


@dataclass
class Report:
    """What a run sent and got back."""

    sent: Counter[tuple[str, int]] = field(default_factory=Counter)  # (kind, status) -> count
    passengers: int = 0  # passengers predicted (requests answered 200 only)
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.sent.values())

    def count(self, kind: str, status: int | None = None) -> int:
        return sum(n for (k, s), n in self.sent.items() if k == kind and status in (None, s))

    def summary(self) -> str:
        lines = [f"{self.total} requests in {self.seconds:.1f} s, {self.passengers} passengers"]
        lines += [f"  {kind:<13} {status}  {n}" for (kind, status), n in sorted(self.sent.items())]
        return "\n".join(lines)


def next_request(rng: random.Random) -> Request:
    """Draw the next request from ``MIX``."""
    kinds, weights = zip(*MIX, strict=True)
    kind = rng.choices(kinds, weights)[0]
    if kind == "single":
        return Request(kind, "POST", "/predict_single", random_passenger(rng), passengers=1)
    if kind == "batch":
        size = rng.randint(2, 20)
        body = [random_passenger(rng) for _ in range(size)]
        return Request(kind, "POST", "/predict_batch", body, passengers=size)
    if kind == "simulation":
        n = rng.randint(5, 25)
        return Request(kind, "POST", f"/simulate_predictions?num_executions={n}", passengers=n)
    if kind == "health":
        return Request(kind, "GET", "/health")
    if kind == "invalid":
        bad = {**random_passenger(rng), "Age": -1}  # Age must be above 0: 422
        return Request(kind, "POST", "/predict_single", bad)
    return Request(kind, "GET", f"/no-such-page-{rng.randint(1, 3)}")


def send(base_url: str, request: Request) -> int:
    """Send one request; return its status code (0 if there was no answer)."""
    data = None if request.body is None else json.dumps(request.body).encode()
    http_request = urllib.request.Request(
        base_url + request.path,
        data=data,
        method=request.method,
        headers={"Content-Type": "application/json"} if data is not None else {},
    )
    try:
        with urllib.request.urlopen(http_request, timeout=TIMEOUT) as response:
            response.read()
            return int(response.status)
    except urllib.error.HTTPError as error:
        error.read()
        return int(error.code)
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
) -> Report:
    """Send requests to ``url`` for ``duration`` seconds at about ``rate`` a second.

    Requests are paced on a fixed schedule (request i at start + i / rate); a
    slow answer delays the next one rather than causing a burst to catch up.
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
        request = next_request(rng)
        status = send(base_url, request)
        report.sent[(request.kind, status)] += 1
        if status == 200:
            report.passengers += request.passengers
        if on_response is not None:
            on_response(request, status)
        i += 1
    report.seconds = time.monotonic() - start
    return report


def main(argv: Sequence[str] | None = None) -> int:
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
        "--allow-remote",
        action="store_true",
        help="allow a URL that is not on this machine (loopback only by default)",
    )
    args = parser.parse_args(argv)
    try:
        check_bounds(args.duration, args.rate)
        base_url = check_target(args.url, args.allow_remote)
    except ValueError as error:
        parser.error(str(error))
    print(f"Sending about {args.rate:g} requests/s to {base_url} for {args.duration:g} s ...")
    report = run(base_url, args.duration, args.rate, seed=args.seed, allow_remote=True)
    print(report.summary())
    unanswered = sum(n for (_, status), n in report.sent.items() if status == 0)
    if unanswered:
        print(f"{unanswered} requests got no answer from {base_url}: is the lesson running?")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

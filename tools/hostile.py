"""Measure titanic_api as one hostile client on one laptop would (issue 20's targets).

    python -m tools.hostile [--limit 200]

Starts ``python -m titanic_api`` (the package's own server and limits) on
127.0.0.1 and a free port, stops it by its pid, and measures:

- /health's slowest answer during 200 one-byte connections, during body drips
  (one byte a second) and during a burst of 400 predictions at once (at least
  2 x the concurrency limit; 2 x uvicorn's default limit of 200) (target: 200
  within 1 s);
- the share of that burst answered 200 within 5 s (target: at least 90%);
- that every 503 a client got is in /metrics: the burst above gets none, so a
  second server with a queue of only ``--overflow-queue`` requests (default 20)
  takes the same burst, and refuses most of it;
- a 1 MiB body of unknown keys: the server's CPU time for it (target: under
  0.5 s), its answer's size (at most 64 KB) and /health meanwhile (within 1 s).

These are figures, not tests: run it on a quiet or a busy machine (the issue's
figures come with a CPU-bound process beside it) and read them. The tests check
the behaviour (tests/titanic_api/test_hostile_*.py), never the speed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from prometheus_client.parser import text_string_to_metric_families

from titanic_api.settings import ServerSettings
from tools.examples import PASSENGER
from tools.servers import HOST, ServerProcess, free_port

ONE_MIB = 1_048_576
T = TypeVar("T")


def cpu_seconds(pid: int) -> float:
    """The process' user + system CPU time (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def request(port: int, raw: bytes) -> tuple[int, int]:
    """Send one raw HTTP/1.1 request (``Connection: close``): (status, bytes of the answer).

    Raw sockets, not an HTTP client library: the measuring process must cost far
    less than the server it measures, or it measures itself.
    """
    try:
        reader, writer = await asyncio.open_connection(HOST, port)
        writer.write(raw)
        answer = await reader.read()
        writer.close()
        return int(answer.split(b" ", 2)[1]), len(answer)
    except (OSError, IndexError, ValueError):
        return 0, 0


def raw_request(method: str, path: str, body: bytes = b"") -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n"
    if body:
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + body


HEALTH = raw_request("GET", "/health")


async def probe_health(port: int, stop: asyncio.Event) -> list[tuple[int, float]]:
    """GET /health on a new connection every 0.2 s until ``stop``: (status, seconds)."""
    results = []
    while not stop.is_set():
        started = time.perf_counter()
        try:
            status, _ = await asyncio.wait_for(request(port, HEALTH), 30)
        except TimeoutError:
            status = 0  # no answer within 30 s
        results.append((status, time.perf_counter() - started))
        await asyncio.sleep(0.2)
    return results


async def during(port: int, attack: Callable[[], Awaitable[T]]) -> tuple[T, str]:
    """Run ``attack`` while probing /health; the attack's result and the probes' summary."""
    stop = asyncio.Event()
    probes = asyncio.create_task(probe_health(port, stop))
    await asyncio.sleep(0.1)
    try:
        result = await attack()
    finally:
        stop.set()
    health = await probes
    worst = max(seconds for _, seconds in health)
    statuses = sorted({status for status, _ in health})
    ok = all(status == 200 and seconds < 1.0 for status, seconds in health)
    summary = f"/health x{len(health)}: statuses {statuses}, slowest {worst:.3f} s"
    return result, f"{summary} -> {'OK' if ok else 'MISSED'} (target 200 within 1 s)"


async def one_byte_connections(port: int, count: int, hold: float) -> str:
    writers = []
    for _ in range(count):
        _, writer = await asyncio.open_connection(HOST, port)
        writer.write(b"G")
        writers.append(writer)
    await asyncio.sleep(hold)
    for writer in writers:
        writer.close()
    return f"{count} connections of one byte, held {hold:g} s"


async def drips(port: int, count: int, seconds: int) -> str:
    async def drip() -> None:
        _, writer = await asyncio.open_connection(HOST, port)
        writer.write(
            b"POST /predict_single HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100000\r\n\r\n{"
        )
        try:
            for _ in range(seconds):
                await asyncio.sleep(1)
                writer.write(b" ")
                await writer.drain()
        except OSError:
            pass  # closed by the server
        writer.close()

    await asyncio.gather(*(drip() for _ in range(count)))
    return f"{count} body drips of one byte a second for up to {seconds} s"


async def burst(port: int, count: int) -> tuple[int, int, int]:
    """``count`` predictions at once, each on its own connection: (200s, 503s, within 5 s)."""
    raw = raw_request("POST", "/predict_single", json.dumps(PASSENGER).encode())
    started = time.perf_counter()

    async def one() -> tuple[int, float]:
        status, _ = await request(port, raw)
        return status, time.perf_counter() - started

    results = await asyncio.gather(*(one() for _ in range(count)))
    ok = sum(1 for status, _ in results if status == 200)
    refused = sum(1 for status, _ in results if status == 503)
    in_time = sum(1 for status, seconds in results if status == 200 and seconds <= 5)
    return ok, refused, in_time


async def unknown_keys(port: int, pid: int) -> tuple[float, int, int]:
    body = json.dumps({f"k{i}": i for i in range(62_000)}).encode()
    assert len(body) <= ONE_MIB
    before = cpu_seconds(pid)
    status, size = await request(port, raw_request("POST", "/predict_single", body))
    return cpu_seconds(pid) - before, size, status


async def measure(server: ServerProcess, port: int, limit: int, burst_size: int) -> list[str]:
    url = server.url
    lines = []
    result, health = await during(port, lambda: one_byte_connections(port, 200, 3.0))
    lines += [f"{result}: {health}"]
    result, health = await during(port, lambda: drips(port, 20, 8))
    lines += [f"{result}: {health}"]
    burst_size = max(burst_size, 2 * limit)
    cpu_before, started = cpu_seconds(server.pid), time.perf_counter()
    counts, health = await during(port, lambda: burst(port, burst_size))
    burst_cpu, burst_wall = cpu_seconds(server.pid) - cpu_before, time.perf_counter() - started
    ok, refused, in_time = counts
    share = in_time / burst_size
    verdict = "OK" if share >= 0.9 else "MISSED"
    lines += [
        f"burst of {burst_size} predictions (limit {limit}): {ok} x 200, {refused} x 503,"
        f" {share:.0%} answered 200 within 5 s -> {verdict} (target 90%)",
        f"  the server's CPU for it: {burst_cpu:.2f} s in {burst_wall:.2f} s of wall time"
        f" (load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)",
        f"  during the burst: {health}",
    ]
    figures, health = await during(port, lambda: unknown_keys(port, server.pid))
    cpu, size, status = figures
    verdict = "OK" if cpu < 0.5 and size <= 64 * 1024 else "MISSED"
    lines += [
        f"1 MiB body of 62,000 unknown keys: {status}, {size:,} bytes, {cpu:.2f} s of server CPU"
        f" -> {verdict} (targets: under 0.5 s, at most 64 KB)",
        f"  meanwhile: {health}",
    ]
    counted, reasons = refusals_in_metrics(url)
    lines += [
        f"503s in /metrics: {counted} (clients got {refused} in the burst)"
        f" -> {'OK' if counted == refused else 'MISSED'}",
        f"http_refusals_total by reason: {reasons}",
    ]
    return lines


def refusals_in_metrics(url: str) -> tuple[int, dict[str, int]]:
    """One scrape: the 503s in /metrics (every endpoint), and ``http_refusals_total`` by reason."""
    with urllib.request.urlopen(url + "/metrics", timeout=10) as response:
        text = response.read().decode("utf-8")
    samples = [s for family in text_string_to_metric_families(text) for s in family.samples]
    counted = sum(
        s.value
        for s in samples
        if s.name == "http_requests_total" and s.labels.get("status_code") == "503"
    )
    reasons = {s.labels["reason"]: int(s.value) for s in samples if s.name == "http_refusals_total"}
    return int(counted), reasons


async def overflow(url: str, port: int, burst_size: int) -> tuple[int, int, int, dict[str, int]]:
    """A burst against a short queue: 200s, the clients' 503s, /metrics' 503s and reasons."""
    ok, refused, _ = await burst(port, burst_size)
    return ok, refused, *refusals_in_metrics(url)


@contextmanager
def serve(settings: dict[str, str]) -> Iterator[tuple[ServerProcess, int]]:
    """``python -m titanic_api`` on 127.0.0.1, a free port and these settings; stopped by pid."""
    port = free_port()
    with tempfile.TemporaryDirectory() as logs:
        env = {"TITANIC_HOST": HOST, "TITANIC_PORT": str(port), "PREDICTION_LOG_DIR": logs}
        command = [sys.executable, "-m", "titanic_api"]
        url = f"http://{HOST}:{port}"
        with ServerProcess(
            command, url, ready_path="/ready", env={**env, **settings}, start_timeout=300
        ) as server:
            yield server, port


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--limit",
        type=int,
        default=ServerSettings().limit_concurrency,
        help="TITANIC_LIMIT_CONCURRENCY (default: the package's)",
    )
    parser.add_argument(
        "--burst", type=int, default=400, help="requests at once (default: 2 x uvicorn's 200)"
    )
    parser.add_argument(
        "--overflow-queue",
        type=int,
        default=20,
        help="TITANIC_QUEUE_LIMIT of the second server, which must refuse (default: 20)",
    )
    args = parser.parse_args(argv)
    burst_size = max(args.burst, 2 * args.limit)
    with serve({"TITANIC_LIMIT_CONCURRENCY": str(args.limit)}) as (server, port):
        lines = asyncio.run(measure(server, port, args.limit, burst_size))
    print("\n".join(lines), flush=True)
    queue = {
        "TITANIC_LIMIT_CONCURRENCY": str(args.limit),
        "TITANIC_QUEUE_LIMIT": str(args.overflow_queue),
    }
    with serve(queue) as (server, port):
        ok, refused, counted, reasons = asyncio.run(overflow(server.url, port, burst_size))
    print(
        f"burst of {burst_size} predictions against a queue of {args.overflow_queue}:"
        f" {ok} x 200, {refused} x 503; 503s in /metrics: {counted}"
        f" -> {'OK' if counted == refused else 'MISSED'} (target: all of them)",
        f"  http_refusals_total by reason: {reasons}",
        sep="\n",
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

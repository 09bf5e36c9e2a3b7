"""titanic_api's server against slow and malformed connections (issue 20, findings 1 and 11).

A real ``python -m titanic_api`` on 127.0.0.1 and a free port, stopped by its
pid. Each test failed on the code before the fix; none times anything: every
wait is bounded only so that a failure cannot hang the suite.
"""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from tests.support.metrics import scrape, scrape_until
from tests.support.package import PackageServer
from tools.examples import PASSENGER
from tools.servers import HOST

pytestmark = [pytest.mark.live, pytest.mark.slow]
LIMIT = 20
CLIENTS = 2 * LIMIT


def serve(log_dir: Path, **limits: str) -> Iterator[PackageServer]:
    """``python -m titanic_api`` with these limits, its log in the test's folder."""
    with PackageServer("module", env={**limits, "PREDICTION_LOG_DIR": str(log_dir)}) as package:
        yield package


@pytest.fixture
def server(log_dir: Path) -> Iterator[PackageServer]:
    yield from serve(
        log_dir,
        TITANIC_LIMIT_CONCURRENCY=str(LIMIT),
        TITANIC_HEADER_TIMEOUT="2",
        TITANIC_BODY_TIMEOUT="2",
        TITANIC_IDLE_TIMEOUT="30",  # longer than the test: only the limits above close
    )


def connect(server: PackageServer) -> socket.socket:
    return socket.create_connection((HOST, server.port), timeout=30)


def read_to_close(connection: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    chunks = []
    while chunk := connection.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def test_one_byte_connections_never_refuse_a_request(server: PackageServer) -> None:
    """Twice the limit of connections that sent one byte: requests are served, then 408s."""
    started = [connect(server) for _ in range(CLIENTS)]
    try:
        for connection in started:
            connection.sendall(b"G")
        assert httpx2.get(server.url + "/health", timeout=30).status_code == 200
        prediction = httpx2.post(server.url + "/predict_single", json=PASSENGER, timeout=30)
        assert prediction.status_code == 200
        for connection in started:
            answer = read_to_close(connection)
            assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), answer
    finally:
        for connection in started:
            connection.close()
    scraped = scrape(server.url)
    assert scraped.value("http_refusals_total", reason="header_timeout") == CLIENTS
    assert scraped.value("http_refusals_total", reason="overload") == 0


def test_a_dripping_body_gets_408_and_the_connection_is_closed(server: PackageServer) -> None:
    connection = connect(server)
    try:
        connection.sendall(
            b"POST /predict_single HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"
        )
        for _ in range(200):  # one byte every 0.1 s, far longer than the 2 s allowed
            try:
                connection.sendall(b" ")
            except OSError:  # closed by the server
                break
            time.sleep(0.1)
        answer = read_to_close(connection)
    finally:
        connection.close()
    assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), answer
    assert answer.endswith(b'{"detail":"The request body did not arrive within 2 s."}')
    labels = {"method": "POST", "endpoint": "/predict_single", "status_code": "408"}
    scraped = scrape_until(server.url, lambda m: m.value("http_requests_total", **labels) == 1)
    assert scraped.value("http_requests_total", **labels) == 1
    assert scraped.value("http_refusals_total", reason="body_timeout") == 1


def test_content_length_with_transfer_encoding_is_refused_and_closed(
    server: PackageServer,
) -> None:
    """RFC 9112, 6.3: a request that frames its body two ways gets 400, and no keep-alive."""
    connection = connect(server)
    try:
        connection.sendall(
            b"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
        )
        answer = read_to_close(connection)
    finally:
        connection.close()
    assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n"), answer
    assert scrape(server.url).value("http_refusals_total", reason="invalid_http") == 1


# ------------------------------------------------------------------ clients that read nothing

SLOW_READERS = 2  # as many as the turns: before the fix, they held every turn for good
# Batch requests each slow reader sends at once. Each answer is about 120 kB, and the kernel
# holds up to 4 MiB of answers unread (tcp_wmem): 60 answers are more than it holds.
PIPELINED = 60
BATCH = json.dumps([PASSENGER] * 1000).encode()


@pytest.fixture
def two_turns(log_dir: Path) -> Iterator[PackageServer]:
    yield from serve(
        log_dir,
        TITANIC_LIMIT_CONCURRENCY=str(SLOW_READERS),
        TITANIC_QUEUE_TIMEOUT="2",
        TITANIC_SEND_TIMEOUT="3",
        TITANIC_IDLE_TIMEOUT="60",  # longer than the test: only the send timeout closes
    )


def slow_reader(server: PackageServer) -> socket.socket:
    """A connection that asks for large answers and reads none of them."""
    connection = socket.socket()
    connection.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
    connection.settimeout(10)
    connection.connect((HOST, server.port))
    head = (
        "POST /predict_batch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(BATCH)}\r\n\r\n"
    ).encode()
    with contextlib.suppress(TimeoutError):  # the server stopped reading: its buffers are full
        connection.sendall((head + BATCH) * PIPELINED)
    connection.settimeout(60)
    return connection


def read_until_dropped(connection: socket.socket) -> bytes:
    """What the client can still read before the end of a connection the server dropped."""
    chunks = []
    try:
        while chunk := connection.recv(65536):
            chunks.append(chunk)
    except ConnectionResetError:
        pass
    return b"".join(chunks)


def wait_until_stuck(server: PackageServer, requests: int) -> None:
    """Until ``requests`` are in progress and no batch has been answered for half a second.

    Then the server's buffers are full (the kernel holds some 30 answers, a few MB), and
    each reader has a request whose answer cannot be written. Bounded at 60 s.
    """
    answered = {"method": "POST", "endpoint": "/predict_batch", "status_code": "200"}
    deadline = time.monotonic() + 60
    before = scrape(server.url)
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = scrape(server.url)
        in_progress = now.value("http_requests_in_progress")
        if in_progress >= requests and now.value("http_requests_total", **answered) == before.value(
            "http_requests_total", **answered
        ):
            return
        before = now


def test_clients_that_read_nothing_hold_no_turn_and_are_dropped(two_turns: PackageServer) -> None:
    """A turn covers working out the answer, not waiting for the client to take it.

    Before the fix these two connections held both turns for as long as they stayed
    open (the server waited to write, without a time limit), and every prediction got 503.
    """
    readers = [slow_reader(two_turns) for _ in range(SLOW_READERS)]
    try:
        wait_until_stuck(two_turns, SLOW_READERS)
        for _ in range(3):
            prediction = httpx2.post(two_turns.url + "/predict_single", json=PASSENGER, timeout=30)
            assert prediction.status_code == 200, prediction.text
        scraped = scrape_until(
            two_turns.url,
            lambda m: m.value("http_refusals_total", reason="send_timeout") >= SLOW_READERS,
            timeout=60,
        )
        for connection in readers:  # dropped: what is left to read ends early, or in a reset
            assert len(read_until_dropped(connection)) < PIPELINED * 100_000
    finally:
        for connection in readers:
            connection.close()
    assert scraped.value("http_refusals_total", reason="send_timeout") == SLOW_READERS
    assert scraped.value("http_refusals_total", reason="overload") == 0

"""The HTTP server around the app: uvicorn with limits, alone or as gunicorn's worker.

- ``HardenedH11Protocol``: uvicorn's HTTP/1.1 protocol with a time limit on
  every phase of a connection. uvicorn on its own times only the wait between
  two requests (keep-alive): a connection that never sends a request, or sends
  one a byte at a time, would stay open for good. Here
  - a new connection must start a request within ``idle_timeout``;
  - a started request must finish its head within ``header_timeout``
    (else 408, and the connection is closed);
  - its body must finish within ``body_timeout`` of the head: the app answers
    408 itself (``titanic_api.limits``); this protocol closes the connection
    shortly after, if the app did not (say the body goes on after an answer);
  - once the server's buffers are full (the kernel's, then asyncio's 64 kB),
    the client must read 48 kB of its answer within ``send_timeout``, else the
    connection is dropped: a client that asks for large answers and reads
    none would hold them, and its connection, for good;
  - a request with both ``Content-Length`` and ``Transfer-Encoding`` gets 400
    and the connection is closed (RFC 9112, section 6.3: a proxy in front
    could read its body's end elsewhere, the start of request smuggling).
  Each refusal is counted in the app's ``http_refusals_total`` (the app hands
  its counter to the server in its lifespan state).
- uvicorn's own ``limit_concurrency`` is off: it counts connections, so idle
  and slow ones refuse real requests, with 503s the app never sees. The app
  limits the requests it works on instead (``titanic_api.limits``).
- ``run()``: ``python -m titanic_api``, one process with those limits.
- ``Worker``: the same settings for gunicorn (``titanic_api/gunicorn_conf.py``).

What a proxy in front still does better: TLS, and per-client rate and
connection limits (this process sees connections, not who opens them):
``deploy/edge/haproxy.cfg``.
"""

import asyncio
from collections.abc import Callable
from typing import Any

import h11
import uvicorn
from h11._connection import DEFAULT_MAX_INCOMPLETE_EVENT_SIZE
from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState
from uvicorn_worker import UvicornWorker

from titanic_api.limits import REFUSALS_STATE
from titanic_api.settings import ServerSettings

# The app answers a slow body with its own 408 first; the protocol closes the rest.
BODY_GRACE = 1.0
TIMEOUT_ANSWER = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"content-length: 15\r\nconnection: close\r\n\r\nRequest Timeout"
)


class StrictH11Connection(h11.Connection):
    """h11, refusing a request that frames its body two ways (RFC 9112, 6.3)."""

    def next_event(self) -> Any:
        event = super().next_event()
        if isinstance(event, h11.Request):
            names = {name for name, _ in event.headers}
            if b"content-length" in names and b"transfer-encoding" in names:
                raise h11.RemoteProtocolError("Content-Length with Transfer-Encoding")
        return event


class HardenedH11Protocol(H11Protocol):
    """Time limits on a connection's every phase; see the module's documentation."""

    header_timeout = 5.0
    body_timeout = 15.0
    send_timeout = 15.0

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        size = config.h11_max_incomplete_event_size or DEFAULT_MAX_INCOMPLETE_EVENT_SIZE
        self.conn = StrictH11Connection(h11.SERVER, size)
        self.phase: str | None = None  # "header" or "body" while a request arrives
        self.phase_timer: asyncio.TimerHandle | None = None
        self.send_timer: asyncio.TimerHandle | None = None  # while the buffers stay full

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[arg-type]
        self.timeout_keep_alive_task = self.loop.call_later(
            self.timeout_keep_alive, self.timeout_keep_alive_handler
        )

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self.watch_request()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self.watch_request()  # a pipelined request may have started

    def connection_lost(self, exc: Exception | None) -> None:
        self.set_phase(None)
        self.stop_send_timer()
        super().connection_lost(exc)

    def pause_writing(self) -> None:
        """The buffers are full: the client must drain them to low water within ``send_timeout``."""
        super().pause_writing()
        if self.send_timer is None:
            self.send_timer = self.loop.call_later(self.send_timeout, self.send_timed_out)

    def resume_writing(self) -> None:
        super().resume_writing()
        self.stop_send_timer()

    def stop_send_timer(self) -> None:
        if self.send_timer is not None:
            self.send_timer.cancel()
            self.send_timer = None

    def send_timed_out(self) -> None:
        """Drop the connection: its unread answer too (``close()`` would wait to send it)."""
        self.send_timer = None
        self.refused("send_timeout")
        self.transport.abort()

    def send_400_response(self, msg: str) -> None:
        self.refused("invalid_http")
        super().send_400_response(msg)

    def watch_request(self) -> None:
        """Time the head or the body of the request now arriving, if any."""
        state = self.conn.their_state
        if state is h11.IDLE and self.conn.trailing_data[0]:
            self.set_phase("header")
        elif state is h11.SEND_BODY:
            self.set_phase("body")
        else:
            self.set_phase(None)

    def set_phase(self, phase: str | None) -> None:
        if phase == self.phase:
            return
        if self.phase_timer is not None:
            self.phase_timer.cancel()
            self.phase_timer = None
        self.phase = phase
        if phase is not None and not self.transport.is_closing():
            timeout = self.header_timeout if phase == "header" else self.body_timeout + BODY_GRACE
            self.phase_timer = self.loop.call_later(timeout, self.phase_timed_out)

    def phase_timed_out(self) -> None:
        """408 if nothing was answered to this request yet; close the connection either way."""
        self.phase_timer = None
        if self.transport.is_closing():
            return
        self.refused(f"{self.phase}_timeout")
        answered = self.phase == "body" and self.cycle is not None and self.cycle.response_started
        if not answered:
            self.transport.write(TIMEOUT_ANSWER)
        self.transport.close()

    def refused(self, reason: str) -> None:
        count: Callable[[str], None] | None = self.app_state.get(REFUSALS_STATE)
        if count is not None:
            count(reason)


def protocol(settings: ServerSettings) -> type[HardenedH11Protocol]:
    """``HardenedH11Protocol`` with these settings' timeouts."""
    timeouts = {
        "header_timeout": settings.header_timeout,
        "body_timeout": settings.body_timeout,
        "send_timeout": settings.send_timeout,
    }
    return type("HardenedH11Protocol", (HardenedH11Protocol,), timeouts)


def uvicorn_options(settings: ServerSettings) -> dict[str, Any]:
    """The uvicorn settings both ways of starting share."""
    return {
        "http": protocol(settings),
        "timeout_keep_alive": settings.idle_timeout,
        "backlog": settings.backlog,
        "timeout_graceful_shutdown": settings.graceful_timeout,
    }


def run() -> None:
    """One process: ``python -m titanic_api`` (``TITANIC_HOST``, ``TITANIC_PORT``, ...)."""
    settings = ServerSettings()
    uvicorn.run(
        "titanic_api.main:app",
        host=settings.host,
        port=settings.port,
        **uvicorn_options(settings),
    )


class Worker(UvicornWorker):
    """gunicorn's uvicorn worker with this package's protocol and limits."""

    CONFIG_KWARGS = {"loop": "auto", **uvicorn_options(ServerSettings())}

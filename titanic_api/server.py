"""The HTTP server around the app: uvicorn with limits, alone or as gunicorn's worker.

- ``IdleTimeoutH11Protocol``: uvicorn's HTTP/1.1 protocol, which starts its
  keep-alive timer only after an answer. A connection that never sends a
  request would stay open for good, and a few hundred of them exhaust the
  process' file descriptors. This protocol starts the same timer as soon as
  the connection is made; any byte of a request stops it, as after an answer.
- ``run()``: ``python -m titanic_api``, one process with those limits.
- ``Worker``: the same settings for gunicorn (``titanic_api/gunicorn_conf.py``).

A reverse proxy in front (nginx, an ingress, a cloud load balancer) adds what
a Python server should not do itself: timeouts for clients that send a request
slowly, byte by byte (``client_header_timeout``/``client_body_timeout``), TLS,
per-client rate limits, and buffering of slow readers.
"""

import asyncio
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn_worker import UvicornWorker

from titanic_api.settings import ServerSettings

PROTOCOL = "titanic_api.server:IdleTimeoutH11Protocol"


class IdleTimeoutH11Protocol(H11Protocol):
    """Close a new connection that sends nothing within the keep-alive timeout."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[arg-type]
        self.timeout_keep_alive_task = self.loop.call_later(
            self.timeout_keep_alive, self.timeout_keep_alive_handler
        )


def uvicorn_options(settings: ServerSettings) -> dict[str, Any]:
    """The uvicorn settings both ways of starting share."""
    return {
        "http": PROTOCOL,
        "timeout_keep_alive": settings.idle_timeout,
        "limit_concurrency": settings.limit_concurrency,
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

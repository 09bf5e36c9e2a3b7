"""Limits on what one request may cost, enforced inside the app, so that ``/metrics`` sees them.

``RequestLimits`` sits just inside the golden-signals middleware: every answer it
gives is counted in ``http_requests_total`` with the status the client received,
and in ``http_refusals_total`` by reason.

- **An announced body over the limit** (``Content-Length``) gets 413 before any
  endpoint runs, and the connection is closed rather than the body read.
- **Concurrency counts requests being worked on**, not connections and not
  requests whose body is still arriving: idle or slow clients never make a real
  request fail. Past ``max_requests`` a request gets 503 with ``Retry-After``.
  Liveness probes (``/health``) and scrapes (``/metrics``) are never refused:
  a refused probe gets a busy pod restarted, which makes an overload worse.
- **A body must arrive within ``body_timeout``** of the request's head, else 408
  and the connection is closed. (The head itself is timed by the server's
  protocol, ``titanic_api.server``: no endpoint exists before it is complete.)

``LiteralPaths`` matches paths as the client spelled them: none of this
service's paths needs a percent escape, so ``/%6detrics`` is not ``/metrics``
(a proxy that guards ``/metrics`` by its spelling cannot be walked around).
"""

import asyncio

from fastapi import HTTPException, status
from starlette.datastructures import Headers
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from titanic_api.metrics import Metrics

# The lifespan state key under which the app hands the server its refusal counter.
REFUSALS_STATE = "titanic_api.refused"
NEVER_REFUSED = frozenset({"/health", "/metrics"})
CLOSE = {"Connection": "close"}
BUSY = "The server is busy: retry in a second."


def announced_length(scope: Scope) -> int | None:
    """The request's ``Content-Length``, if it has a valid one."""
    value = Headers(scope=scope).get("content-length")
    return int(value) if value is not None and value.isdigit() else None


class RequestLimits:
    """413 for an announced oversize body, 503 past the concurrency limit, 408 for a slow body."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: Metrics,
        max_requests: int,
        body_timeout: float,
        max_body_bytes: int,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.max_requests = max_requests
        self.body_timeout = body_timeout
        self.max_body_bytes = max_body_bytes
        self.in_progress = 0  # requests in the app...
        self.receiving = 0  # ...of which waiting for their body's next bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = announced_length(scope)
        if length is not None and length > self.max_body_bytes:
            self.metrics.refused("too_large")
            response = PlainTextResponse("Content Too Large", 413, headers=CLOSE)
            await response(scope, receive, send)
            return
        working = self.in_progress - self.receiving
        if working >= self.max_requests and scope["path"] not in NEVER_REFUSED:
            self.metrics.refused("overload")
            busy = JSONResponse({"detail": BUSY}, 503, headers={"Retry-After": "1"})
            await busy(scope, receive, send)
            return
        self.in_progress += 1
        try:
            await self.app(scope, self.timed_receive(receive), send)
        finally:
            self.in_progress -= 1

    def timed_receive(self, receive: Receive) -> Receive:
        """``receive``, with a deadline on the body; not counted as work while it waits."""
        deadline = asyncio.get_running_loop().time() + self.body_timeout
        body_complete = False

        async def receive_in_time() -> Message:
            nonlocal body_complete
            if body_complete:
                return await receive()
            self.receiving += 1
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                self.metrics.refused("body_timeout")
                raise HTTPException(
                    status.HTTP_408_REQUEST_TIMEOUT,
                    f"The request body did not arrive within {self.body_timeout:g} s.",
                    headers=CLOSE,
                ) from None
            finally:
                self.receiving -= 1
            body_complete = message["type"] != "http.request" or not message.get("more_body")
            return message

        return receive_in_time


class LiteralPaths:
    """Match routes against the path as sent: a percent escape never names a route here."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw_path = scope.get("raw_path")
        if scope["type"] == "http" and raw_path and b"%" in raw_path:
            scope = {**scope, "path": raw_path.decode("latin-1")}
        await self.app(scope, receive, send)

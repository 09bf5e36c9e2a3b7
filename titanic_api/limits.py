"""Limits on what one request may cost, enforced inside the app, so that ``/metrics`` sees them.

``RequestLimits`` sits just inside the golden-signals middleware: every answer it
gives is counted in ``http_requests_total`` with the status the client received,
and in ``http_refusals_total`` by reason.

- **An announced body over the limit** (``Content-Length``) gets 413 before any
  endpoint runs, and the connection is closed rather than the body read.
- **A body must arrive within ``body_timeout``** of the request's head, else 408
  and the connection is closed. The body is read whole *before* the request
  takes its turn: a slow sender holds no turn and delays nobody. (The head is
  timed by the server's protocol, ``titanic_api.server``.)
- **Turns, not connections.** At most ``turns`` requests are worked on at once;
  the others wait for their turn in arrival order. A request that cannot start
  within ``queue_timeout``, or finds ``queue_limit`` requests already waiting,
  gets 503 with ``Retry-After``. A turn ends when the answer starts: a client
  slow to read its answer holds no turn (the server drops it after
  ``send_timeout``, ``titanic_api.server``). The endpoints predict on the event loop, so a
  few turns keep the loop answering between predictions: a probe that arrives
  during a burst waits for a few predictions, not for the whole burst.
- Liveness probes (``/health``) and scrapes (``/metrics``) take no turn and are
  never refused: a refused probe gets a busy pod restarted, which makes an
  overload worse, and a refused scrape hides it.

``LiteralPaths`` matches paths as the client spelled them: none of this
service's paths needs a percent escape, so ``/%6detrics`` is not ``/metrics``
(a proxy that guards ``/metrics`` by its spelling cannot be walked around).
"""

import asyncio

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from titanic_api.metrics import Metrics

# The lifespan state key under which the app hands the server its refusal counter.
REFUSALS_STATE = "titanic_api.refused"
NEVER_QUEUED = frozenset({"/health", "/metrics"})
CLOSE = {"Connection": "close"}
BUSY = "The server is busy: retry in a second."
GONE = "The client disconnected before the end of its body."


def announced_length(scope: Scope) -> int | None:
    """The request's ``Content-Length``, if it has a valid one."""
    value = Headers(scope=scope).get("content-length")
    return int(value) if value is not None and value.isdigit() else None


class RequestLimits:
    """413 for a body over the limit, 408 for a slow body, turns and 503 past the queue."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: Metrics,
        turns: int,
        queue_limit: int,
        queue_timeout: float,
        body_timeout: float,
        max_body_bytes: int,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.turns = asyncio.Semaphore(turns)
        self.queue_limit = queue_limit
        self.queue_timeout = queue_timeout
        self.body_timeout = body_timeout
        self.max_body_bytes = max_body_bytes
        self.waiting = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = announced_length(scope)
        if length is not None and length > self.max_body_bytes:
            await self.refuse("too_large", self.too_large(), scope, receive, send)
            return
        if scope["path"] in NEVER_QUEUED:
            await self.app(scope, receive, send)
            return
        body = await self.read_body(scope, receive, send)
        if body is None:
            return  # answered already
        if self.waiting >= self.queue_limit or not await self.take_turn():
            busy = JSONResponse({"detail": BUSY}, 503, headers={"Retry-After": "1"})
            await self.refuse("overload", busy, scope, receive, send)
            return
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self.turns.release()

        async def send_after_turn(message: Message) -> None:
            if message["type"] == "http.response.start":
                release()  # the answer is worked out: the client's reading it holds no turn
            await send(message)

        try:
            await self.app(scope, replay(body, receive), send_after_turn)
        finally:
            release()

    async def take_turn(self) -> bool:
        """Wait for a turn, in arrival order, at most ``queue_timeout`` seconds."""
        self.waiting += 1
        try:
            async with asyncio.timeout(self.queue_timeout):
                await self.turns.acquire()
            return True
        except TimeoutError:
            return False
        finally:
            self.waiting -= 1

    async def read_body(self, scope: Scope, receive: Receive, send: Send) -> bytes | None:
        """The whole body, or None once a 408, 413 or 400 has been answered."""
        chunks: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(self.body_timeout):
                while True:
                    message = await receive()
                    if message["type"] != "http.request":  # the client went away
                        await JSONResponse({"detail": GONE}, 400)(scope, receive, send)
                        return None
                    chunks.append(message.get("body", b""))
                    size += len(chunks[-1])
                    if size > self.max_body_bytes:
                        break
                    if not message.get("more_body", False):
                        return b"".join(chunks)
        except TimeoutError:
            detail = f"The request body did not arrive within {self.body_timeout:g} s."
            late = JSONResponse({"detail": detail}, 408, headers=CLOSE)
            await self.refuse("body_timeout", late, scope, receive, send)
            return None
        except HTTPException as error:  # the app's own body limit, counting as it reads
            if error.status_code != 413:
                raise
        await self.refuse("too_large", self.too_large(), scope, receive, send)
        return None

    async def refuse(
        self, reason: str, response: Response, scope: Scope, receive: Receive, send: Send
    ) -> None:
        self.metrics.refused(reason)
        await response(scope, receive, send)

    @staticmethod
    def too_large() -> Response:
        return PlainTextResponse("Content Too Large", 413, headers=CLOSE)


def replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives the body already read, then waits as the server's does."""
    given = False

    async def receive_again() -> Message:
        nonlocal given
        if given:
            return await receive()
        given = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive_again


class LiteralPaths:
    """Match routes against the path as sent: a percent escape never names a route here."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw_path = scope.get("raw_path")
        if scope["type"] == "http" and raw_path and b"%" in raw_path:
            scope = {**scope, "path": raw_path.decode("latin-1")}
        await self.app(scope, receive, send)

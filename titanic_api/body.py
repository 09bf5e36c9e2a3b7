"""Request bodies validated straight from their JSON bytes.

FastAPI validates a body in two steps: ``json.loads`` builds Python objects,
then pydantic validates those. pydantic's ``model_validate_json`` does both in
one pass of compiled code, in less time (docs/performance.md has the figures).
``ValidatedJSONRoute`` is the route class FastAPI's documentation shows for a
custom ``Request`` ("Custom Request and APIRoute class"): its request's
``json()`` hands FastAPI the already validated model, which FastAPI then
accepts as it is (no second validation).

Whenever the fast path does not give a valid body (not JSON, a wrong field, an
empty body), ``json()`` falls back to exactly what Starlette does, so FastAPI
produces its own 400 or 422 answer, word for word the same as without this class.
"""

import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError


class ValidatedJSONRequest(Request):
    """A request whose ``json()`` is the body validated as ``model``, if it is valid."""

    model: type[BaseModel]

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = await self.body()
            try:
                self._json = self.model.model_validate_json(body)
            except ValidationError:
                self._json = json.loads(body)  # Starlette's own parse: FastAPI's own errors
        return self._json


class ValidatedJSONRoute(APIRoute):
    """Routes whose body is one pydantic model get a ``ValidatedJSONRequest``."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        annotation = self.body_field.field_info.annotation if self.body_field else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return handler
        request_class = type("Request", (ValidatedJSONRequest,), {"model": annotation})

        async def validated_handler(request: Request) -> Response:
            return await handler(request_class(request.scope, request.receive))

        return validated_handler

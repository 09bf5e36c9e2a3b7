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

**Bounded errors.** With ``extra="forbid"`` every unknown key is one error: a
1 MiB object of 80,000 unknown keys would cost seconds of validation on the
event loop and a 16 MB answer. So the body's keys that no model field has are
checked only up to ``MAX_ERRORS``; the others are dropped before validation and
counted (``request.state.unchecked_errors``). A body with more colons than a
valid one can have skips the fast path too (its validation is the cost). The
422 handler (``titanic_api.app``) shows at most ``MAX_ERRORS`` errors and says
how many there were.
"""

import json
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError

MAX_ERRORS = 100
# A valid batch has 7,000 keys (1,000 passengers of 7 fields), so at most 7,000 colons.
MAX_COLONS = 8_000


class ValidatedJSONRequest(Request):
    """A request whose ``json()`` is the body validated as ``model``, if it is valid."""

    model: type[BaseModel]
    known_keys: frozenset[str]  # every property name in the model's JSON schema

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = await self.body()
            if body.count(b":") > MAX_COLONS:  # too many keys to be valid: not worth validating
                self._json = self.bounded(json.loads(body))
                return self._json
            try:
                self._json = self.model.model_validate_json(body)
            except ValidationError as error:
                self._json = json.loads(body)  # Starlette's own parse: FastAPI's own errors
                if error.error_count() > MAX_ERRORS:
                    self._json = self.bounded(self._json)
        return self._json

    def bounded(self, body: Any) -> Any:
        """The body with unknown keys past the first ``MAX_ERRORS`` dropped (and counted)."""
        budget = MAX_ERRORS
        dropped = 0
        for item in objects(body):
            for key in [key for key in item if key not in self.known_keys]:
                if budget > 0:
                    budget -= 1
                else:
                    del item[key]
                    dropped += 1
        self.state.unchecked_errors = dropped
        return body


def objects(body: Any) -> Iterator[dict[str, Any]]:
    """The JSON objects a body model reads: the body itself, or the items of a list."""
    for item in body if isinstance(body, list) else [body]:
        if isinstance(item, dict):
            yield item


def property_names(schema: Any) -> Iterator[str]:
    """Every property name anywhere in a JSON schema."""
    if isinstance(schema, dict):
        properties = schema.get("properties")
        yield from properties if isinstance(properties, dict) else ()
        for value in schema.values():
            yield from property_names(value)
    elif isinstance(schema, list):
        for value in schema:
            yield from property_names(value)


class ValidatedJSONRoute(APIRoute):
    """Routes whose body is one pydantic model get a ``ValidatedJSONRequest``."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        annotation = self.body_field.field_info.annotation if self.body_field else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return handler
        known = frozenset(property_names(annotation.model_json_schema()))
        request_class = type(
            "Request", (ValidatedJSONRequest,), {"model": annotation, "known_keys": known}
        )

        async def validated_handler(request: Request) -> Response:
            return await handler(request_class(request.scope, request.receive))

        return validated_handler

"""Hostile input, bounded work, load and faults, for every lesson that validates its input.

The promise (README, "What could go wrong"): whatever a client sends, a lesson
from ``fastapi_04_02_single_app`` on answers with a 2xx for a valid request or
a 4xx whose JSON body names the problem, never a 5xx, and keeps serving.
``fastapi_04_single_app`` is the deliberate "before validation" stage and is
exempt (tests/lessons/test_fastapi_04_single_app.py shows what it lets through).

The fuzzing is property-based: schemathesis generates requests from each app's
own OpenAPI schema, and hypothesis strategies below add what a schema cannot
describe (NaN and Infinity literals, bytes that are not UTF-8, deep nesting,
wrong content types). Every run tries the same examples (``derandomize=True``)
and stores nothing on disk (``database=None``), so a failure reproduces
exactly and the repository stays clean. The fuzzing and the hostile bodies also
run against the package, ``titanic_api``, which keeps the final lesson's promise.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import sys
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest
import schemathesis
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.testclient import TestClient
from hypothesis import example, given
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
)

from tests.lessons.robustness import (
    FIELDS,
    FUZZ,
    FUZZ_MORE,
    JSON,
    and_the_package,
    by_lesson,
    check_answer,
    counting_errors,
    json_body_paths,
    nested,
    parsed_as_json,
    still_serving,
    strict_json,
    valid_body,
    valid_passenger,
)
from tests.support.lessons import (
    FINAL_LESSON,
)
from tests.support.subject import Subject, lesson_subject
from tools.examples import PASSENGER

# ---------------------------------------------------------------- schema-driven fuzzing


def send_case(client: TestClient, case: schemathesis.Case) -> httpx2.Response:
    """Send a schemathesis case through the test client (so the lifespan has run)."""
    kwargs = case.as_transport_kwargs(base_url="http://testserver")
    content = json.dumps(kwargs["json"]) if "json" in kwargs else kwargs.get("data")
    assert content is None or isinstance(content, str | bytes), kwargs
    return client.request(
        kwargs["method"],
        kwargs["url"],
        params=kwargs.get("params"),
        headers=kwargs.get("headers"),
        content=content,
    )


@and_the_package
def test_schema_fuzzing_gets_no_5xx(subject: Subject, client: TestClient) -> None:
    """Valid and invalid requests from the app's own OpenAPI schema, every operation.

    Besides "never a 5xx", schemathesis checks that successful answers match the
    documented response schema and that no schema-invalid request succeeds.
    (It does not check the reverse: the lessons are stricter than JSON Schema
    can say, refusing 6.0 where a whole number is due.)
    """
    errors_before = counting_errors(subject, client)
    before = errors_before()
    schema = schemathesis.openapi.from_dict(client.get("/openapi.json").json())
    checks = [
        not_a_server_error,
        response_schema_conformance,
        content_type_conformance,
        negative_data_rejection,
    ]
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result  # the app's own schema is valid OpenAPI
        operations.append(result.ok())
    assert {op.path for op in operations} >= {"/", "/health", "/predict_single"}
    for operation in operations:
        modes = [GenerationMode.POSITIVE]
        if len(operation.body) or len(operation.query):
            modes.append(GenerationMode.NEGATIVE)
        for mode in modes:

            @FUZZ
            @given(case=operation.as_strategy(generation_mode=mode))
            def send(case: schemathesis.Case) -> None:
                response = send_case(client, case)
                check_answer(response)
                case.validate_response(response, checks=checks)

            send()
    still_serving(client, subject)
    assert errors_before() == before


# ---------------------------------------------------------------- raw, hostile bodies

# Values written into the JSON text as they are: some are not JSON at all.
ODD_VALUES = [
    "NaN",
    "Infinity",
    "-Infinity",
    "1e999",
    "-1e999",
    "1e-999",
    "-0.0",
    "4.9e-324",
    "1" + "0" * 400,
    "9" * 5000,  # more digits than Python converts to int by default
    "1.0",
    "3.0",
    "2e0",
    "99.99999999999999",
    "1000.0000000000001",
    "18446744073709551616",
    "true",
    "false",
    "null",
    '""',
    '"3"',
    '"NaN"',
    '"Infinity"',
    '"MALE"',
    '" S"',
    '"\\uff13"',  # a full-width digit three
    '"\\ud800"',  # a lone surrogate: legal JSON, not UTF-8
    '"male\\u0000"',
    json.dumps("x" * 5000),
    "[]",
    "{}",
    "[3]",
    '{"$gt": 0}',
    "0x10",
    "01",
    "1_0",
    ".5",
    "+1",
    "nan",
    "None",
    "'S'",
    "",
]
ODD_KEYS = ["age", "Age ", "", "__proto__", "\\ud800", "Pclass\\u0000", "Survived", "x" * 300]
CONTENT_TYPES = [
    "application/json",
    "application/json; charset=utf-8",
    "application/json; charset=latin-1",
    "application/vnd.api+json",
    "APPLICATION/JSON",
    "text/plain",
    "text/json",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "application/xml",
    "",
    None,
]


@st.composite
def hostile_passenger(draw: st.DrawFn) -> str:
    """A passenger as JSON text, with fields dropped, doubled, changed or added."""
    members = [(json.dumps(name), json.dumps(value)) for name, value in PASSENGER.items()]
    dropped = draw(st.sets(st.sampled_from(FIELDS), max_size=2))
    members = [(key, value) for key, value in members if json.loads(key) not in dropped]
    values = st.one_of(
        st.sampled_from(ODD_VALUES),
        st.floats(allow_nan=False).map(json.dumps),
        st.integers(-(2**70), 2**70).map(str),
        st.text(max_size=8).map(json.dumps),
    )
    keys = st.one_of(
        st.sampled_from(FIELDS).map(json.dumps), st.sampled_from(ODD_KEYS).map(repr_key)
    )
    changes = draw(st.lists(st.tuples(keys, values), max_size=3))
    members += changes  # a key given twice: the last one counts, as in Python's json
    if draw(st.booleans()):
        members = draw(st.permutations(members))
    return "{" + ", ".join(f"{key}: {value}" for key, value in members) + "}"


def repr_key(key: str) -> str:
    """An odd key as JSON text (its escapes kept as written)."""
    return '"' + key + '"'


@st.composite
def hostile_body(draw: st.DrawFn, path: str) -> bytes:
    """A request body of any kind, most of them wrong."""
    text = draw(
        st.one_of(
            hostile_passenger(),
            st.lists(hostile_passenger(), max_size=4).map(lambda xs: "[" + ", ".join(xs) + "]"),
            st.builds(nested, st.integers(1, 2_000), hostile_passenger()),
            st.recursive(
                st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=10),
                lambda inner: (
                    st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=5), inner, max_size=3)
                ),
                max_leaves=10,
            ).map(json.dumps),
            st.sampled_from(["", " ", "{", "[", '{"Pclass": 3', "null", "[]", "{}"]),
            st.just(json.dumps([PASSENGER] * 3 if path == "/predict_batch" else PASSENGER)),
        )
    )
    encoding = draw(st.sampled_from(["utf-8", "utf-8", "utf-16", "not utf-8", "raw bytes"]))
    if encoding == "raw bytes":
        return draw(st.binary(max_size=64))
    data = text.encode("utf-8" if encoding == "not utf-8" else encoding, "surrogatepass")
    if encoding == "not utf-8":  # one byte no UTF-8 text can contain, somewhere
        cut = draw(st.integers(0, len(data)))
        data = data[:cut] + b"\xff" + data[cut:]
    return data


def post_hostile_bodies(client: TestClient, path: str) -> None:
    """Fuzz one endpoint that takes a JSON body."""

    # Bodies that once made a lesson answer 500, tried on every run.
    @example(body=b"\xff\xfe", content_type="text/plain")
    @example(body=b'{"Sex": "\\ud800"}', content_type="application/json")
    @example(body=nested(990).encode(), content_type="application/json")
    @FUZZ_MORE
    @given(body=hostile_body(path), content_type=st.sampled_from(CONTENT_TYPES))
    def post(body: bytes, content_type: str | None) -> None:
        headers = {} if content_type is None else {"content-type": content_type}
        response = client.post(path, content=body, headers=headers)
        check_answer(response)
        try:
            value = json.loads(body)  # exactly how Starlette reads a JSON body
        except (ValueError, RecursionError):
            value = None
        should_succeed = parsed_as_json(content_type) and valid_body(path, value)
        assert (response.status_code == 200) == should_succeed, response.text[:300]

    post()


@and_the_package
def test_hostile_bodies_get_a_named_4xx(subject: Subject, client: TestClient) -> None:
    """Any bytes, any content type: 200 exactly when the body is valid JSON of valid passengers."""
    errors_before = counting_errors(subject, client)
    before = errors_before()
    # The endpoints that take passengers: the lesson's, and those of them the package keeps
    # (what it adds, such as its feedback, takes other bodies and is fuzzed by its schema).
    kept = json_body_paths(TestClient(lesson_subject(subject.keeps).app))
    for path in [path for path in json_body_paths(client) if path in kept]:
        post_hostile_bodies(client, path)
        for method in ("GET", "PUT", "DELETE"):
            wrong_method = client.request(method, path)
            check_answer(wrong_method)
            assert wrong_method.status_code == 405
    still_serving(client, subject)
    assert errors_before() == before


@and_the_package
def test_each_field_accepts_exactly_its_valid_values(client: TestClient) -> None:
    """One field of a good passenger replaced by any JSON value: 200 or a 422 naming that field."""
    values = st.one_of(
        st.sampled_from([True, False, None, 0, 1, 2, 3, 4, 1.0, 3.0, -1, 10, 11, 0.0, 100, 1000]),
        st.sampled_from(["male", "female", "C", "Q", "S", "1", "", "Male"]),
        st.floats(),
        st.integers(-(10**30), 10**30),
        st.lists(st.integers(), max_size=2),
    )

    @FUZZ
    @given(field=st.sampled_from(FIELDS), value=values)
    def post(field: str, value: object) -> None:
        passenger = {**PASSENGER, field: value}
        response = client.post("/predict_single", content=json.dumps(passenger), headers=JSON)
        check_answer(response)
        if valid_passenger(passenger):
            assert response.status_code == 200, response.text
        else:
            assert response.status_code == 422
            assert [error["loc"] for error in response.json()["detail"]] == [["body", field]]

    post()


@by_lesson
def test_input_too_deep_to_echo_still_gets_a_422(subject: Subject) -> None:
    lesson = importlib.import_module(f"lessons.{subject.name}")
    """The 422 handler, given an input nested past the recursion limit, leaves the input out."""
    too_deep: object = 1
    for _ in range(sys.getrecursionlimit() + 10):
        too_deep = [too_deep]
    error = {
        "type": "model_attributes_type",
        "loc": ("body",),
        "msg": "Not an object",
        "input": too_deep,
    }
    scope = {"type": "http", "method": "POST", "path": "/predict_single", "headers": []}
    handler = lesson.validation_error_handler(Request(scope), RequestValidationError([error]))
    response = asyncio.run(handler)
    assert response.status_code == 422
    assert json.loads(response.body) == {
        "detail": [{"type": "model_attributes_type", "loc": ["body"], "msg": "Not an object"}]
    }


def read_deep_json(response: httpx2.Response) -> Any:
    """Parse an answer that echoes a deeply nested input: with room on this thread's stack.

    Safe here because the test client is synchronous: no app code runs meanwhile.
    """
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(limit + 2_000)
    try:
        return strict_json(response)
    finally:
        sys.setrecursionlimit(limit)


def test_every_nesting_depth_up_to_the_recursion_limit_gets_a_4xx(
    client_of_final: TestClient,
) -> None:
    """Depth by depth around Python's recursion limit: 422 while it parses, 400 beyond.

    Near the limit a body still parses but echoing it back overflowed the stack
    (a 500), in a window a few levels wide whose place depends on the app's
    middleware; so every depth is tried, on the lesson with the most middleware.
    Python 3.11's parser stops at the recursion limit; 3.12 and later parse far
    deeper, so one depth well beyond any parser's reach is tried too (a 400 there).
    """
    limit = sys.getrecursionlimit()
    statuses: Counter[int] = Counter()
    for depth in [*range(limit - 60, limit + 5), 100_000]:
        response = client_of_final.post("/predict_single", content=nested(depth), headers=JSON)
        assert response.status_code in (400, 422), response.text[:300]
        assert read_deep_json(response)["detail"]
        statuses[response.status_code] += 1
    assert set(statuses) == {400, 422}
    still_serving(client_of_final)


@pytest.fixture
def client_of_final() -> Iterator[TestClient]:
    lesson = importlib.import_module(f"lessons.{FINAL_LESSON}")
    with TestClient(lesson.app) as client:
        yield client

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
import math
import shutil
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx2
import pytest
import schemathesis
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
)

from tests.support.contracts import lesson_fields
from tests.support.lessons import (
    BATCH_LESSONS,
    FINAL_LESSON,
    GOLDEN_SIGNALS_LESSONS,
    LOGGING_LESSONS,
    SIMULATION_LESSONS,
    VALIDATED_LESSONS,
)
from tests.support.metrics import Metrics, scrape
from tests.support.monitoring import read_log, total
from tests.support.subject import Subject, lesson_subject
from tools.examples import CHILD, PASSENGER, SURVIVOR
from tools.servers import LessonServer


def lessons(names: list[str]) -> pytest.MarkDecorator:
    """Run the test once per app named: each becomes conftest's ``subject`` (``titanic_api``
    is the package), and the ``client`` fixture runs its app (lifespan included)."""
    return pytest.mark.parametrize("subject", names, indirect=True)


by_lesson = lessons(VALIDATED_LESSONS)
# The fuzzing and the hostile bodies also run against the package that ships.
and_the_package = lessons([*VALIDATED_LESSONS, "titanic_api"])

FUZZ = settings(
    max_examples=25,
    derandomize=True,  # the same examples on every run, on every machine
    database=None,  # no .hypothesis/ folder in the repository
    deadline=None,  # the first prediction of a run is slower; timing is not the point
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# Cheap examples (no model call for most of them): try more.
FUZZ_MORE = settings(FUZZ, max_examples=40)

FIELDS = ["Pclass", "Sex", "Age", "SibSp", "Parch", "Fare", "Embarked"]
JSON = {"content-type": "application/json"}
MAX_BATCH = 1_000
MAX_SIMULATIONS = 100


# ---------------------------------------------------------------- what a good answer is


def strict_json(response: httpx2.Response) -> Any:
    """The body as JSON, refusing NaN and Infinity (which JSON does not have)."""

    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} is not JSON")

    assert response.headers["content-type"] == "application/json", response.text[:300]
    return json.loads(response.content.decode("utf-8"), parse_constant=refuse)


def check_answer(response: httpx2.Response) -> None:
    """Never a 5xx; a 4xx is JSON whose ``detail`` names the problem."""
    status = response.status_code
    assert status < 500, f"{status}: {response.text[:500]}"
    body = strict_json(response)
    if status >= 400:
        detail = body["detail"]
        if status == 422:
            assert detail, body
            for error in detail:
                assert error["loc"][0] in ("body", "query"), error
                assert error["type"] and error["msg"], error
        else:
            assert isinstance(detail, str) and detail, body


def still_serving(client: TestClient, subject: Subject | None = None) -> None:
    """A valid prediction right after the abuse (the final lesson's fields of it, for an
    app that adds some: the package's prediction id)."""
    response = client.post("/predict_single", json=SURVIVOR)
    assert response.status_code == 200
    answer = lesson_fields(subject, response.json()) if subject else response.json()
    assert answer == {"prediction": 1, "survival_status": "Survived"}


def server_errors(client: TestClient) -> float:
    """All of ``http_errors_total`` (responses >= 500), for lessons that count them."""
    return total(Metrics.parse(client.get("/metrics").text), "http_errors_total")


def counting_errors(subject: Subject, client: TestClient) -> Callable[[], float]:
    """A function reading the app's 5xx count (always 0 before P01 had the counter)."""
    counted = subject.keeps in GOLDEN_SIGNALS_LESSONS
    return (lambda: server_errors(client)) if counted else (lambda: 0.0)


# ---------------------------------------------------------------- what a valid request is
# An independent statement of the rules, written from the README, not from the code.


def _number(value: object) -> bool:
    return type(value) is int or (type(value) is float and math.isfinite(value))


def valid_passenger(value: object) -> bool:
    if not isinstance(value, dict) or set(value) != set(FIELDS):
        return False
    whole = {name: type(value[name]) is int for name in ("Pclass", "SibSp", "Parch")}
    return (
        all(whole.values())
        and value["Pclass"] in (1, 2, 3)
        and value["Sex"] in ("male", "female")
        and _number(value["Age"])
        and 0 < value["Age"] < 100
        and 0 <= value["SibSp"] <= 10
        and 0 <= value["Parch"] <= 10
        and _number(value["Fare"])
        and 0 <= value["Fare"] <= 1000
        and value["Embarked"] in ("C", "Q", "S")
    )


def valid_body(path: str, value: object) -> bool:
    if path == "/predict_single":
        return valid_passenger(value)
    return (
        isinstance(value, list)
        and 1 <= len(value) <= MAX_BATCH
        and all(valid_passenger(item) for item in value)
    )


def parsed_as_json(content_type: str | None) -> bool:
    """FastAPI reads the body as JSON only for application/json and application/*+json."""
    if content_type is None:
        return False
    kind = content_type.split(";")[0].strip().lower()
    return kind == "application/json" or (
        kind.startswith("application/") and kind.endswith("+json")
    )


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


def nested(depth: int, inner: str = "1") -> str:
    return "[" * depth + inner + "]" * depth


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


def json_body_paths(client: TestClient) -> list[str]:
    schema = client.get("/openapi.json").json()
    return [
        path
        for path, operations in schema["paths"].items()
        if "requestBody" in operations.get("post", {})
    ]


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


# ---------------------------------------------------------------- bounded work


@by_lesson
def test_bodies_over_one_mebibyte_get_413(client: TestClient) -> None:
    """Announced or streamed, a 4 MiB body is refused, and the server carries on."""
    four_mib = b" " * (4 * 1024 * 1024)

    def stream() -> Iterator[bytes]:
        for _ in range(64):  # 64 KiB chunks, no Content-Length: refused as it arrives
            yield four_mib[: 64 * 1024]

    for path in json_body_paths(client):
        announced = client.post(path, content=four_mib, headers=JSON)
        assert announced.status_code == 413
        assert announced.text == "Content Too Large"  # refused before reading: plain text
        streamed = client.post(path, content=stream(), headers=JSON)
        assert streamed.status_code == 413
        assert streamed.json() == {"detail": "Content Too Large"}
    still_serving(client)


@lessons(BATCH_LESSONS)
def test_batch_over_the_limit_gets_422(client: TestClient) -> None:
    fits = client.post("/predict_batch", json=[PASSENGER] * MAX_BATCH)
    assert fits.status_code == 200
    assert len(fits.json()["batch_predictions"]) == MAX_BATCH
    response = client.post("/predict_batch", json=[PASSENGER] * (MAX_BATCH + 1))
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert (error["type"], error["loc"]) == ("too_long", ["body"])


@lessons(BATCH_LESSONS)
def test_error_answers_grow_at_most_eightfold(client: TestClient) -> None:
    """The 422 echoes the input once per error, and a passenger missing all seven fields
    has eight errors: an answer is at most about 8 times the 1 MiB a body may have.
    Bounded, because the body is; worth knowing before raising the limit."""
    one_blob = json.dumps({"x": "a" * 1_000_000})
    many_blobs = json.dumps([{"x": "a" * 950}] * MAX_BATCH)
    for path, body in (("/predict_single", one_blob), ("/predict_batch", many_blobs)):
        response = client.post(path, content=body, headers=JSON)
        assert response.status_code == 422
        assert len(response.content) < 9 * len(body)


ODD_COUNTS = [
    "",
    "abc",
    "0",
    "-1",
    "100",
    "101",
    "1e2",
    "1.0",
    "10.5",
    "0x10",
    "\uff11\uff10",
    "+5",
    " 5",
    "5 ",
    "1_0",
    "NaN",
    "inf",
    "9" * 5000,
    "\x00",
    "\ud800",
]


@lessons(SIMULATION_LESSONS)
def test_simulation_count_is_bounded_whatever_the_query(client: TestClient) -> None:
    """Odd query strings for num_executions and seed: at most 100 passengers, or a 422."""
    texts = st.one_of(
        st.sampled_from(ODD_COUNTS), st.integers(-(10**20), 10**20).map(str), st.text(max_size=6)
    )
    names = st.sampled_from(["num_executions", "seed", "NUM_EXECUTIONS", "num_executions[]"])

    @FUZZ
    @given(query=st.lists(st.tuples(names, texts), max_size=3))
    def post(query: list[tuple[str, str]]) -> None:
        encoded = "&".join(
            f"{quote(name)}={quote(value, errors='surrogatepass')}" for name, value in query
        )
        response = client.post(f"/simulate_predictions?{encoded}")
        check_answer(response)
        if response.status_code == 200:
            body = response.json()
            assert 1 <= body["num_executions"] == len(body["predictions"]) <= MAX_SIMULATIONS
        else:
            assert response.status_code == 422
            assert {error["loc"][1] for error in response.json()["detail"]} <= {
                "num_executions",
                "seed",
            }

    post()
    assert client.post("/simulate_predictions?num_executions=101").status_code == 422
    assert len(client.post("/simulate_predictions?num_executions=100").json()["predictions"]) == 100
    still_serving(client)


# ---------------------------------------------------------------- faults


def corrupt_model_file(folder: Path) -> None:
    (folder / "model.skops").write_bytes(b"not a model \x00\xff" * 10)


def corrupt_mlmodel(folder: Path) -> None:
    (folder / "MLmodel").write_text("flavors: [this is not\n  valid: yaml\n")


@pytest.fixture(params=[corrupt_model_file, corrupt_mlmodel], ids=["model-file", "MLmodel"])
def corrupt_model(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """A copy of the committed model folder with one file replaced by garbage."""
    folder = tmp_path / "corrupt-model"
    shutil.copytree(importlib.import_module(f"lessons.{FINAL_LESSON}").COMMITTED_MODEL, folder)
    request.param(folder)
    monkeypatch.setenv("TITANIC_MODEL_URI", str(folder))
    return folder


def prediction_requests(client: TestClient) -> list[httpx2.Response]:
    """One request to each prediction endpoint the lesson has."""
    paths = client.get("/openapi.json").json()["paths"]
    answers = [client.post("/predict_single", json=PASSENGER)]
    if "/predict_batch" in paths:
        answers.append(client.post("/predict_batch", json=[PASSENGER, SURVIVOR]))
    if "/simulate_predictions" in paths:
        answers.append(client.post("/simulate_predictions?num_executions=3"))
    return answers


@by_lesson
def test_unreadable_model_starts_degraded_and_answers_503(
    subject: Subject, corrupt_model: Path, server_log: pytest.LogCaptureFixture
) -> None:
    """A model folder that exists but cannot be loaded: up, degraded, 503, and the log says why."""
    with TestClient(subject.app) as client:
        health = client.get("/health")
        answers = prediction_requests(client)
    assert health.status_code == 200
    assert health.json()["status"] == "degraded"
    assert health.json()["dependencies"]["model"] == "not loaded"
    for answer in answers:
        assert answer.status_code == 503
        assert answer.json() == {"detail": "The model is not loaded: see the server log for why."}
    assert f"Could not load the model from {corrupt_model}" in server_log.text


def under_a_file(tmp_path: Path) -> dict[str, str]:
    """A log folder that cannot exist: its parent is a regular file (works as root too)."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder\n")
    return {"PREDICTION_LOG_DIR": str(blocker / "logs")}


LOG_FAULTS: dict[str, Callable[[Path], dict[str, str]]] = {
    "folder-under-a-file": under_a_file,
    "disk-full": lambda _: {"PREDICTION_LOG_PATH": "/dev/full"},  # every write: ENOSPC
}


@lessons(LOGGING_LESSONS)
@pytest.mark.parametrize("fault", list(LOG_FAULTS))
def test_log_failure_still_predicts_and_is_counted(
    subject: Subject,
    fault: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    server_log: pytest.LogCaptureFixture,
) -> None:
    if fault == "disk-full" and not Path("/dev/full").exists():
        pytest.skip("no /dev/full on this system")
    for name, value in LOG_FAULTS[fault](tmp_path).items():
        monkeypatch.setenv(name, value)
    with TestClient(subject.app) as client:
        before = Metrics.parse(client.get("/metrics").text)
        answers = prediction_requests(client)
        after = Metrics.parse(client.get("/metrics").text)
    assert [answer.status_code for answer in answers] == [200] * len(answers)
    passengers = after.value("titanic_predictions_total") - before.value(
        "titanic_predictions_total"
    )
    assert passengers == 1 + 2 + (3 if len(answers) == 3 else 0)
    errors = after.value("prediction_log_errors_total") - before.value(
        "prediction_log_errors_total"
    )
    assert errors == passengers
    assert "Could not write 1 predictions to the log" in server_log.text
    assert "Could not write 2 predictions to the log" in server_log.text
    if fault == "folder-under-a-file":
        assert "Cannot open the prediction log" in server_log.text


# ---------------------------------------------------------------- load, on a real server

LOAD_CLIENTS = 16
REQUESTS_PER_CLIENT = 12  # a fixed amount of work, however fast or busy the machine
PATHS = {
    "single": "/predict_single",
    "batch": "/predict_batch",
    "simulation": "/simulate_predictions",
}


def passenger_key(kind: str, passenger: dict[str, Any], prediction: int) -> str:
    """What identifies one logged prediction: its kind, its input and its answer."""
    return json.dumps(
        [kind, {name: passenger[name] for name in FIELDS}, prediction], sort_keys=True
    )


def one_request(session: httpx2.Client, url: str, kind: str, tag: float) -> list[str]:
    """Send one request of this kind; the keys of the predictions it answered."""
    if kind == "simulation":
        response = session.post(f"{url}/simulate_predictions?num_executions=4", timeout=30)
        assert response.status_code == 200, response.text
        return [
            passenger_key(kind, item["passenger"], item["prediction"])
            for item in response.json()["predictions"]
        ]
    # The age tags the request, so its log lines can be told apart from all others.
    passengers = [{**passenger, "Age": tag} for passenger in (PASSENGER, SURVIVOR, CHILD)]
    if kind == "single":
        passengers = passengers[(int(tag * 1000)) % 3 :][:1]
        response = session.post(
            url + "/predict_single", content=json.dumps(passengers[0]), headers=JSON, timeout=30
        )
        assert response.status_code == 200, response.text
        predictions = [response.json()["prediction"]]
    else:
        response = session.post(
            url + "/predict_batch", content=json.dumps(passengers), headers=JSON, timeout=30
        )
        assert response.status_code == 200, response.text
        predictions = [item["prediction"] for item in response.json()["batch_predictions"]]
    return [passenger_key(kind, p, y) for p, y in zip(passengers, predictions, strict=True)]


@pytest.mark.live
@pytest.mark.parametrize("lesson_name", LOGGING_LESSONS)
def test_sixteen_clients_are_all_served_logged_once_and_counted(
    lesson_name: str, log_dir: Path
) -> None:
    """16 clients at once, 12 requests each: every one served, logged once and counted."""
    kinds = [kind for kind in PATHS if kind != "simulation" or lesson_name == FINAL_LESSON]
    with LessonServer(lesson_name, env={"PREDICTION_LOG_DIR": str(log_dir)}) as server:

        def client(number: int) -> list[tuple[str, list[str]]]:
            done = []
            with httpx2.Client() as session:
                for i in range(REQUESTS_PER_CLIENT):
                    kind = kinds[(number + i) % len(kinds)]
                    tag = 1 + number * 5 + i / 1000  # unique per request, and a valid age
                    done.append((kind, one_request(session, server.url, kind, tag)))
            return done

        with ThreadPoolExecutor(LOAD_CLIENTS) as pool:
            served = [request for done in pool.map(client, range(LOAD_CLIENTS)) for request in done]
        answered = Counter(key for _, keys in served for key in keys)
        metrics = scrape(server.url)
        after_abuse = abuse_and_check_still_serving(server.url)
    requests_of = Counter(kind for kind, _ in served)
    assert len(served) == LOAD_CLIENTS * REQUESTS_PER_CLIENT

    # Logged exactly once: one whole line per prediction answered, numbered 1, 2, 3 ...
    [log] = log_dir.glob("predictions_*.jsonl")
    lines = read_log(log)
    logged = Counter(
        passenger_key(line["prediction_type"], line, line["prediction"]) for line in lines
    )
    assert logged == answered + Counter(after_abuse)
    assert [line["execute"] for line in lines] == list(range(1, logged.total() + 1))

    # Counted exactly: the metrics (read before the abuse) equal what the clients were served.
    survivors = sum(json.loads(key)[2] for key in answered.elements())
    assert metrics.value("titanic_predictions_total") == answered.total()
    assert (
        metrics.value("titanic_predictions_output_total", predicted_class="Survived") == survivors
    )
    assert (
        sum(
            metrics.value("passenger_age_distribution_count", kind=source)
            for source in ("user", "simulation")
        )
        == answered.total()
    )
    for kind in kinds:
        assert metrics.value("prediction_type_total", type=kind) == requests_of[kind]
        served_200 = {"method": "POST", "endpoint": PATHS[kind], "status_code": "200"}
        assert metrics.value("http_requests_total", **served_200) == requests_of[kind]
    assert metrics.value("http_requests_in_progress") == 0
    assert metrics.value("prediction_log_errors_total") == 0
    assert total(metrics, "http_errors_total") == 0


def abuse_and_check_still_serving(url: str) -> list[str]:
    """Oversized and too deeply nested bodies against the real server: all refused, no 5xx,
    memory flat, and a valid request served afterwards (its key returned)."""

    def stream() -> Iterator[bytes]:
        for _ in range(128):  # 8 MiB in 64 KiB chunks, without a Content-Length
            yield b" " * (64 * 1024)

    before = scrape(url)
    for _ in range(3):
        announced = httpx2.post(
            url + "/predict_batch", content=b" " * (8 << 20), headers=JSON, timeout=30
        )
        assert (announced.status_code, announced.text) == (413, "Content Too Large")
        streamed = httpx2.post(url + "/predict_batch", content=stream(), headers=JSON, timeout=30)
        assert streamed.status_code == 413
        assert streamed.json() == {"detail": "Content Too Large"}
    limit = sys.getrecursionlimit()  # the server's Python has the same default
    for depth in range(limit - 60, limit + 5):
        response = httpx2.post(
            url + "/predict_single", content=nested(depth), headers=JSON, timeout=30
        )
        assert response.status_code in (400, 422), response.text[:300]
    response = httpx2.post(
        url + "/predict_single", content=json.dumps(SURVIVOR), headers=JSON, timeout=10
    )
    assert response.json() == {"prediction": 1, "survival_status": "Survived"}
    after = scrape(url)
    grown = after.value("process_resident_memory_bytes") - before.value(
        "process_resident_memory_bytes"
    )
    assert grown < 64 * 2**20, f"memory grew by {grown / 2**20:.0f} MiB"
    assert total(after, "http_errors_total") == 0
    return [passenger_key("single", SURVIVOR, 1)]


@pytest.mark.live
def test_real_server_starts_with_a_corrupt_model_and_no_log_folder(tmp_path: Path) -> None:
    """uvicorn itself: the app starts anyway, says why in its log, and answers 503."""
    model = tmp_path / "corrupt-model"
    shutil.copytree(importlib.import_module(f"lessons.{FINAL_LESSON}").COMMITTED_MODEL, model)
    corrupt_model_file(model)
    output = tmp_path / "uvicorn.log"
    env = {"TITANIC_MODEL_URI": str(model), **under_a_file(tmp_path)}
    with LessonServer(FINAL_LESSON, env=env, log_path=output) as server:
        health = httpx2.get(server.url + "/health", timeout=10)
        answer = httpx2.post(
            server.url + "/predict_single", content=json.dumps(PASSENGER), headers=JSON, timeout=10
        )
    assert health.json()["status"] == "degraded"
    assert health.json()["dependencies"]["model"] == "not loaded"
    assert answer.status_code == 503
    log = output.read_text()
    assert f"Could not load the model from {model}" in log
    assert "Cannot open the prediction log" in log

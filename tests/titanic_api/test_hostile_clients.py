"""titanic_api against a hostile client, in process: what one request may cost.

Issue 20's findings 2, 3, 6, 7 and three of 11. Each test failed on the code
before the fix; none depends on speed (the figures come from ``python -m
tools.hostile``). The slow connections themselves (findings 1 and 11's framing)
need a real server: tests/titanic_api/test_hostile_connections.py.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.support.metrics import Metrics, scrape
from titanic_api import model as model_module
from titanic_api.app import create_app
from titanic_api.body import MAX_ERRORS
from titanic_api.settings import REPO_ROOT, ServerSettings
from tools.examples import PASSENGER

BIG = 2 * 1_048_576  # over the 1 MiB body limit
TOO_LARGE = "Content Too Large"
BUSY = {"detail": "The server is busy: retry in a second."}


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(create_app()) as test_client:
        yield test_client


def unknown_keys(count: int) -> dict[str, int]:
    return {f"k{i}": i for i in range(count)}


def cut_note(total: int) -> dict[str, Any]:
    return {
        "type": "too_many_errors",
        "loc": ["body"],
        "msg": f"Only the first {MAX_ERRORS} of {total} errors are shown.",
        "input": None,
    }


# ---------------------------------------------------------------- 2: bounded error lists


def test_a_megabyte_of_unknown_keys_gets_a_short_answer(client: TestClient) -> None:
    """62,000 unknown keys (1 MB): 100 errors and a note, not 62,007."""
    body = json.dumps(unknown_keys(62_000))
    response = client.post(
        "/predict_single", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert len(detail) == MAX_ERRORS + 1
    assert detail[-1] == cut_note(62_000 + 7)  # every unknown key, and the 7 missing fields
    assert {error["type"] for error in detail[:-1]} <= {"extra_forbidden", "missing"}
    assert len(response.content) < 64 * 1024


def test_a_batch_of_bad_passengers_gets_a_short_answer(client: TestClient) -> None:
    """1,000 passengers with 7 unknown keys each and no field: 14,000 errors, 100 shown."""
    batch = [unknown_keys(7) for _ in range(1_000)]
    response = client.post("/predict_batch", json=batch)
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert (len(detail), detail[-1]) == (MAX_ERRORS + 1, cut_note(14_000))


def test_a_few_errors_are_all_shown_word_for_word(client: TestClient) -> None:
    """Up to MAX_ERRORS errors, the answer is FastAPI's own, with no note."""
    response = client.post("/predict_single", json={**PASSENGER, **unknown_keys(MAX_ERRORS)})
    detail = response.json()["detail"]
    assert len(detail) == MAX_ERRORS
    assert detail[0] == {
        "type": "extra_forbidden",
        "loc": ["body", "k0"],
        "msg": "Extra inputs are not permitted",
        "input": 0,
    }


# ---------------------------------------------------------------- 6: odd Accept headers


@pytest.mark.parametrize(
    "accept",
    [
        "application/openmetrics-text; version=abc",
        "application/openmetrics-text; version=1.x.0",
        "text/plain; version=abc",
    ],
)
def test_a_version_that_does_not_parse_gets_the_text_format(accept: str) -> None:
    with TestClient(create_app(), raise_server_exceptions=False) as client:
        response = client.get("/metrics", headers={"Accept": accept})
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert Metrics.parse(response.text).value("http_refusals_total", reason="overload") == 0


# ---------------------------------------------------------------- 7: announced oversize bodies


@pytest.mark.parametrize("method, path", [("GET", "/health"), ("POST", "/predict_single")])
def test_an_announced_oversize_body_is_counted_as_the_413_it_got(
    client: TestClient, method: str, path: str
) -> None:
    response = client.request(method, path, headers={"content-length": str(BIG)})
    assert (response.status_code, response.text) == (413, TOO_LARGE)
    scraped = scrape(client)
    assert (
        scraped.value("http_requests_total", method=method, endpoint=path, status_code="413") == 1
    )
    assert scraped.label_values("http_requests_total", "status_code") == {"413"}
    assert scraped.value("http_refusals_total", reason="too_large") == 1


def test_an_oversize_simulation_never_runs_the_model(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    real = model_module.predict_proba

    def counting(model: Any, passengers: list[dict[str, object]]) -> Any:
        calls.append(len(passengers))
        return real(model, passengers)

    monkeypatch.setattr(model_module, "predict_proba", counting)
    response = client.post("/simulate_predictions", headers={"content-length": str(BIG)})
    assert (response.status_code, calls) == (413, [])
    assert client.post("/simulate_predictions?num_executions=3").status_code == 200
    assert calls == [3]  # the counting wrapper does see a real simulation


# ---------------------------------------------------------------- 3: requests, not connections


def limited_app(**limits: Any) -> tuple[FastAPI, asyncio.Event]:
    """The service with ``limits``, and a /slow route that waits for an event."""
    app = create_app(server=ServerSettings(**limits))
    release = asyncio.Event()

    async def slow() -> dict[str, str]:
        await release.wait()
        return {"slow": "done"}

    app.add_api_route("/slow", slow, methods=["GET", "POST"])
    return app, release


async def read_metrics(http: httpx.AsyncClient) -> Metrics:
    response = await http.get("/metrics")
    assert response.status_code == 200
    return Metrics.parse(response.text)


async def settle() -> None:
    """Let the requests already started reach their endpoint (bounded)."""
    for _ in range(20):
        await asyncio.sleep(0)


def test_a_request_past_the_limit_waits_for_its_turn_and_is_served() -> None:
    async def scenario() -> None:
        app, release = limited_app(limit_concurrency=1, queue_timeout=60)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            first = asyncio.create_task(http.get("/slow"))
            await settle()
            second = asyncio.create_task(http.get("/"))
            await settle()
            assert not second.done()  # waiting for its turn, not refused
            release.set()
            assert [(await task).status_code for task in (first, second)] == [200, 200]

    asyncio.run(scenario())


def test_a_request_that_cannot_start_in_time_gets_503_and_it_is_counted() -> None:
    """Past ``queue_timeout`` waiting for a turn: 503; a liveness probe never waits."""

    async def scenario() -> None:
        app, release = limited_app(limit_concurrency=1, queue_timeout=0.05)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            first = asyncio.create_task(http.get("/slow"))
            await settle()
            refused = await http.get("/slow")
            health = await http.get("/health")  # a liveness probe is never refused
            release.set()
            assert (await first).status_code == 200
            assert (refused.status_code, refused.json()) == (503, BUSY)
            assert refused.headers["retry-after"] == "1"
            assert health.status_code == 200
            scraped = await read_metrics(http)
        labels = {"method": "GET", "endpoint": "/slow"}
        assert scraped.value("http_requests_total", status_code="503", **labels) == 1
        assert scraped.value("http_requests_total", status_code="200", **labels) == 1
        assert scraped.value("http_errors_total", **labels) == 1
        assert scraped.value("http_refusals_total", reason="overload") == 1

    asyncio.run(scenario())


def test_a_request_still_sending_its_body_is_not_counted_against_the_limit() -> None:
    """A client that sends its body slowly holds no slot: the next request is served."""

    async def scenario() -> None:
        app, release = limited_app(limit_concurrency=1, body_timeout=60)
        more = asyncio.Event()

        async def stalled_body() -> AsyncIterator[bytes]:
            yield b"{"
            await more.wait()
            yield b"}"

        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            slow_sender = asyncio.create_task(http.post("/predict_single", content=stalled_body()))
            await settle()
            served = await http.get("/")
            more.set()
            release.set()
            await slow_sender
        assert served.status_code == 200

    asyncio.run(scenario())


def test_a_body_that_stops_arriving_gets_408_and_is_counted() -> None:
    async def scenario() -> None:
        app, _ = limited_app(body_timeout=0.05)
        never = asyncio.Event()

        async def stalled_body() -> AsyncIterator[bytes]:
            yield b'{"Pclass": '
            await never.wait()
            yield b"1}"  # pragma: no cover

        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            response = await http.post("/predict_single", content=stalled_body())
            scraped = await read_metrics(http)
        assert (response.status_code, response.json()) == (
            408,
            {"detail": "The request body did not arrive within 0.05 s."},
        )
        labels = {"method": "POST", "endpoint": "/predict_single", "status_code": "408"}
        assert scraped.value("http_requests_total", **labels) == 1
        assert scraped.value("http_refusals_total", reason="body_timeout") == 1

    asyncio.run(scenario())


# ---------------------------------------------------------------- 11: paths, hosts, docs


def test_a_percent_escaped_path_is_not_the_metrics_path(client: TestClient) -> None:
    response = client.get("/%6detrics")
    assert (response.status_code, response.json()) == (404, {"detail": "Not Found"})
    assert "http_requests_total" not in response.text


def test_a_trailing_slash_never_redirects_to_the_host_the_client_named(
    client: TestClient,
) -> None:
    response = client.get("/health/", headers={"host": "attacker.example"}, follow_redirects=False)
    assert (response.status_code, response.json()) == (404, {"detail": "Not Found"})
    assert "location" not in response.headers


def test_the_docs_pages_load_nothing_from_another_site(client: TestClient) -> None:
    for page in ("/docs", "/redoc"):
        html = client.get(page).text
        assert "//" not in html.replace("http://www.w3.org", ""), page  # no absolute URL
        assets = [part.split('"')[0] for part in html.split('="/static-offline-docs/')[1:]]
        assert assets, page
        for asset in assets:
            assert client.get(f"/static-offline-docs/{asset}").status_code == 200, asset


# ---------------------------------------------------------------- the pages say the real limits


def test_the_production_page_states_the_limits_the_settings_have() -> None:
    """Each limit docs/production.md names is ServerSettings' default, with its variable."""
    page = (REPO_ROOT / "docs" / "production.md").read_text()
    server = ServerSettings()
    stated = [
        f"`TITANIC_IDLE_TIMEOUT` {server.idle_timeout:g} s",
        f"`TITANIC_HEADER_TIMEOUT` ({server.header_timeout:g} s)",
        f"`TITANIC_BODY_TIMEOUT` ({server.body_timeout:g} s)",
        f"`TITANIC_SEND_TIMEOUT` ({server.send_timeout:g} s)",
        f"`TITANIC_LIMIT_CONCURRENCY` ({server.limit_concurrency})",
        f"`TITANIC_QUEUE_TIMEOUT` ({server.queue_timeout:g} s)",
        f"`TITANIC_QUEUE_LIMIT` ({server.queue_limit:,})",
        f"at most {MAX_ERRORS} errors",
    ]
    assert [text for text in stated if text not in page] == []

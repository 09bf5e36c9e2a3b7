"""The final lesson's share of issue 20: a bounded error list (finding 2) and an
announced oversize body refused before any endpoint runs, counted as the 413 the
client got (finding 7). Both failed on the lesson before the fix."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from tests.support.metrics import scrape

LESSON = "prometheus_04_multi_execute_app"
BIG = str(2 * 1_048_576)


def test_a_megabyte_of_unknown_keys_gets_a_short_answer(client: TestClient) -> None:
    body = json.dumps({f"k{i}": i for i in range(62_000)})  # 1 MB
    response = client.post(
        "/predict_single", content=body, headers={"content-type": "application/json"}
    )
    detail = response.json()["detail"]
    assert (response.status_code, len(detail)) == (422, 101)
    assert detail[-1] == {
        "type": "too_many_errors",
        "loc": ["body"],
        "msg": "Only the first 100 of 62007 errors are shown.",
    }
    assert detail[0] == {"type": "missing", "loc": ["body", "Pclass"], "msg": "Field required"}
    assert len(response.content) < 64 * 1024


@pytest.mark.parametrize("method, path", [("GET", "/health"), ("POST", "/simulate_predictions")])
def test_an_announced_oversize_body_runs_nothing_and_counts_its_413(
    client: TestClient, method: str, path: str
) -> None:
    before = scrape(client)
    response = client.request(method, path, headers={"content-length": BIG})
    assert (response.status_code, response.text) == (413, "Content Too Large")
    after = scrape(client)
    counted = [("http_requests_total", {"method": method, "endpoint": path, "status_code": "413"})]
    assert after.delta(before, [*counted, ("titanic_predictions_total", {})]) == [1, 0]
    ok = [("http_requests_total", {"method": method, "endpoint": path, "status_code": "200"})]
    assert after.delta(before, ok) == [0]

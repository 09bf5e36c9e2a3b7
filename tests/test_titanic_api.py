"""titanic_api keeps the final lesson's contract: the lessons' own test classes, run on it.

The ``lesson`` fixture is overridden with ``PackageUnderTest`` (a fresh app per
test); every inherited test then runs against the package unchanged. Only the
tests that name lessons themselves are replaced, with the package's equivalent.
"""

from __future__ import annotations

from pathlib import Path

import httpx2
import prometheus_client
import pytest
from fastapi.testclient import TestClient

from tests.helpers import FINAL_LESSON, PASSENGER, Metrics
from tests.monitoring_contracts import (
    P04Contract,
    expected_families,
    own_families,
    predict_single,
    read_log,
    the_log,
)
from tests.titanic_api_support import PackageServer, PackageUnderTest
from titanic_api import prediction_log


@pytest.fixture
def lesson() -> PackageUnderTest:
    return PackageUnderTest()


class TestFinalLessonContract(P04Contract):
    """Every promise of the final lesson, kept by the package."""

    @pytest.mark.live
    def test_runs_under_uvicorn(self, lesson: PackageUnderTest) -> None:  # type: ignore[override]
        with PackageServer("uvicorn") as server:
            response = httpx2.get(server.url + "/", timeout=10)
            schema = httpx2.get(server.url + "/openapi.json", timeout=10).json()
        assert response.status_code == 200
        assert response.json() == {"message": "Titanic MLflow API is running"}
        assert schema["info"]["title"] == lesson.app.title

    def test_metrics_show_only_this_lessons_series(  # type: ignore[override]
        self, lesson: PackageUnderTest, metrics: object
    ) -> None:
        """The package shows the final lesson's metric families, and the process collector's."""
        scraped: Metrics = metrics()  # type: ignore[operator]
        assert own_families(scraped) == expected_families(FINAL_LESSON)
        assert any(name.startswith("process_") for name in scraped.types)

    def test_all_monitoring_lessons_import_into_one_process(  # type: ignore[override]
        self, lesson: PackageUnderTest
    ) -> None:
        """Every app the factory builds has its own registry: two apps never share counts."""
        other = PackageUnderTest()
        assert other.registry is not lesson.registry
        for registry in (lesson.registry, other.registry):
            text = prometheus_client.generate_latest(registry).decode()
            assert own_families(Metrics.parse(text)) == expected_families(FINAL_LESSON)

    def test_file_is_read_once_at_start_not_per_request(  # type: ignore[override]
        self, client: TestClient, log_dir: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        def never_again(path: Path) -> int:
            raise AssertionError("the log was re-read for a request")

        monkeypatch.setattr(prediction_log, "last_execute", never_again)
        for _ in range(3):
            predict_single(client, PASSENGER)
        assert [line["execute"] for line in read_log(the_log(log_dir))] == [1, 2, 3]

    def test_openapi_shows_the_example(self, client: TestClient) -> None:
        """As the lesson's, except that the package documents every status it can answer."""
        schema = client.get("/openapi.json").json()
        passenger = schema["components"]["schemas"]["Passenger"]
        assert passenger["examples"] == [PASSENGER]
        operation = schema["paths"]["/predict_single"]["post"]
        assert operation["requestBody"]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/Passenger"
        }
        assert set(operation["responses"]) == {"200", "400", "413", "422", "503"}

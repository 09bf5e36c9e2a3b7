"""titanic_api keeps the final lesson's contract: the lessons' own test classes, run on it.

The ``subject`` fixture (tests/titanic_api/conftest.py) is the package, a fresh app per
test; every inherited test then runs against it unchanged. Only the tests that start
a lesson's server are replaced, with the package's equivalent.
"""

from __future__ import annotations

import httpx2
import prometheus_client
import pytest
from fastapi.testclient import TestClient

from tests.support.contracts import (
    API_RUNNING,
    BatchContract,
    ModelApiContract,
    UvicornSmokeContract,
)
from tests.support.golden_signals_contracts import GoldenSignalsContract, MetricsEndpointContract
from tests.support.lessons import FINAL_LESSON
from tests.support.metrics import Metrics, scrape
from tests.support.model_metrics_contracts import ModelMetricsContract
from tests.support.monitoring import Scrape, expected_families, own_families
from tests.support.package import PackageServer, package_subject
from tests.support.prediction_log_contracts import PredictionLogContract
from tests.support.simulation_contracts import SimulationContract
from tests.support.subject import Subject
from tests.support.validation_contracts import ValidationContract
from tools.examples import PASSENGER

# The final lesson's behaviours, one class each, as
# tests/lessons/test_prometheus_04_multi_execute_app.py lists them; where the package differs
# (its own server command, registry per app, the statuses it documents), the class says how.
# Its OpenAPI schema is not the lesson's snapshot: it documents 400, 413 and 503 as well.


class TestServedByUvicorn(UvicornSmokeContract):
    @pytest.mark.live
    def test_runs_under_uvicorn(self, subject: Subject) -> None:
        with PackageServer("uvicorn") as server:
            response = httpx2.get(server.url + "/", timeout=10)
            schema = httpx2.get(server.url + "/openapi.json", timeout=10).json()
        assert response.status_code == 200
        assert response.json() == API_RUNNING
        assert schema["info"]["title"] == subject.app.title


class TestModelApi(ModelApiContract):
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


class TestValidation(ValidationContract): ...


class TestBatch(BatchContract): ...


class TestMetricsEndpoint(MetricsEndpointContract):
    def test_every_app_has_its_own_registry(self, subject: Subject) -> None:
        """Every app the factory builds has its own registry: two apps never share counts."""
        other = package_subject()
        assert other.registry is not subject.registry
        # Started: the model's reference profile (model monitoring) is loaded with it.
        with TestClient(subject.app), TestClient(other.app):
            for registry in (subject.registry, other.registry):
                assert registry is not None
                text = prometheus_client.generate_latest(registry).decode()
                assert own_families(Metrics.parse(text)) == (
                    expected_families(FINAL_LESSON) | subject.added_families
                )


class TestGoldenSignals(GoldenSignalsContract): ...


class WithoutKind:
    """The package's passenger histograms add a ``kind`` label (user or simulation) to the
    lesson's: these contracts read them summed over it, as the lesson would show them
    (tests/titanic_api/test_simulation_setting.py checks the label itself)."""

    @pytest.fixture
    def metrics(self, client: TestClient) -> Scrape:
        def summed() -> Metrics:
            scraped = scrape(client)
            samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
            for (name, labels), value in scraped.samples.items():
                key = (name, frozenset((k, v) for k, v in labels if k != "kind"))
                samples[key] = samples.get(key, 0.0) + value
            return Metrics(samples, scraped.types)

        return summed


class TestModelMetrics(WithoutKind, ModelMetricsContract): ...


class TestPredictionLog(PredictionLogContract): ...


class TestSimulation(WithoutKind, SimulationContract): ...

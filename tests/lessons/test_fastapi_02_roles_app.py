"""Lesson 02: roles with dependency injection."""

import pytest
from fastapi.testclient import TestClient

from lessons import fastapi_02_roles_app as roles
from tests.support.contracts import UvicornSmokeContract

LESSON = "fastapi_02_roles_app"

# Kept from earlier lessons, and tested where each behaviour starts, over every
# lesson that keeps it (this one among them):
# TestOpenAPISnapshot in test_fastapi_01_test_app.py.

DENIED = {"detail": "Access denied: Admins only."}


def test_public_is_open(client: TestClient) -> None:
    response = client.get("/public")
    assert response.status_code == 200
    assert response.json() == {"message": "This endpoint is open to everyone.", "role": "user"}


def test_admin_refuses_a_user(client: TestClient) -> None:
    response = client.get("/admin")
    assert response.status_code == 403
    assert response.json() == DENIED


def test_admin_admits_an_admin(client: TestClient) -> None:
    roles.app.dependency_overrides[roles.get_current_user_role] = lambda: "admin"
    response = client.get("/admin")
    assert response.status_code == 200
    assert response.json() == {
        "message": "Welcome, admin: this endpoint is for admins only.",
        "role": "admin",
    }
    assert client.get("/public").json()["role"] == "admin"


@pytest.mark.parametrize("role", ["user", "guest", "Admin", ""])
def test_any_other_role_is_refused(client: TestClient, role: str) -> None:
    roles.app.dependency_overrides[roles.get_current_user_role] = lambda: role
    response = client.get("/admin")
    assert response.status_code == 403
    assert response.json() == DENIED


@pytest.mark.parametrize(
    "request_kwargs",
    [
        {"headers": {"X-Role": "admin", "Authorization": "Bearer admin"}},
        {"params": {"role": "admin"}},
        {"cookies": {"role": "admin"}},
    ],
    ids=["headers", "query", "cookie"],
)
def test_nothing_in_the_request_makes_an_admin(
    client: TestClient, request_kwargs: dict[str, dict[str, str]]
) -> None:
    client.cookies.update(request_kwargs.pop("cookies", {}))
    response = client.get("/admin", **request_kwargs)  # type: ignore[arg-type]
    assert response.status_code == 403
    assert response.json() == DENIED


def test_require_admin_directly() -> None:
    assert roles.require_admin("admin") == "admin"
    with pytest.raises(roles.HTTPException) as refused:
        roles.require_admin("user")
    assert (refused.value.status_code, refused.value.detail) == (403, DENIED["detail"])


def test_openapi_has_no_role_parameter(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert set(paths) == {"/public", "/admin"}
    assert "parameters" not in paths["/admin"]["get"]
    assert "parameters" not in paths["/public"]["get"]


class TestServedByUvicorn(UvicornSmokeContract):
    smoke_path = "/public"
    smoke_json = {"message": "This endpoint is open to everyone.", "role": "user"}

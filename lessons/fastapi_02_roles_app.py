"""Roles with dependency injection: an open endpoint and an admin-only one.

What it adds over lesson 01: ``Depends``. A dependency is a plain function
that FastAPI calls before your endpoint, passing its result in. Here one
dependency says who the caller is and a second one refuses anyone who is not
an admin with 403 Forbidden. The endpoints stay free of access checks.

The caller's role is *simulated*: ``get_current_user_role`` always answers
"user", and no header, query parameter or cookie can change that. A real app
would read and verify a token there (FastAPI's security tutorial shows OAuth2
with JWT). Tests, and the notebook, swap the dependency for one that answers
"admin" with ``app.dependency_overrides``, the way FastAPI teaches it.

Run it:

    uvicorn lessons.fastapi_02_roles_app:app --reload

Try it:
- GET /public answers 200 for everybody;
- GET /admin answers 403 {"detail": "Access denied: Admins only."};
- /docs shows both endpoints; the dependencies do not appear as parameters,
  because they take none from the request.
"""

from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, status

app = FastAPI(
    title="Titanic tutorial 02: roles with dependencies",
    description="An open endpoint and an admin-only one, guarded by a dependency.",
    version="1.0.0",
)


def get_current_user_role() -> str:
    """Who is calling? Simulated: everyone is a plain "user".

    Replace this with real authentication; everything downstream keeps working.
    """
    return "user"


def require_admin(role: Annotated[str, Depends(get_current_user_role)]) -> str:
    """Let admins through; answer 403 Forbidden to everyone else."""
    if role != "admin":
        raise HTTPException(
            status_code=status.HTTP_403_FORBIDDEN, detail="Access denied: Admins only."
        )
    return role


@app.get("/public")
def read_public(role: Annotated[str, Depends(get_current_user_role)]) -> dict[str, str]:
    """Open to every caller; says which role the caller has."""
    return {"message": "This endpoint is open to everyone.", "role": role}


@app.get("/admin")
def read_admin(role: Annotated[str, Depends(require_admin)]) -> dict[str, str]:
    """Only reached when ``require_admin`` let the caller through."""
    return {"message": "Welcome, admin: this endpoint is for admins only.", "role": role}

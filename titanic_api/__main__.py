"""``python -m titanic_api``: serve the package with its limits (see titanic_api.server)."""

from titanic_api.server import run

run()

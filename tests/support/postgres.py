"""A PostgreSQL server for a test module (the feedback store shared by replicas)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tools.servers import PostgresServer, postgres_binary

INSTALL_HINT = "PostgreSQL is not installed: apt-get install postgresql (Debian's package)."


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    """A throw-away PostgreSQL server; skipped without PostgreSQL, unless REQUIRE_POSTGRES=1."""
    if postgres_binary("initdb") is None or postgres_binary("postgres") is None:
        if os.environ.get("REQUIRE_POSTGRES") == "1":
            pytest.fail(f"REQUIRE_POSTGRES=1 but PostgreSQL was not found. {INSTALL_HINT}")
        pytest.skip(INSTALL_HINT)
    server = PostgresServer().start()
    try:
        yield server
    finally:
        server.stop()

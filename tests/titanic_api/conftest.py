"""The package's fixtures: the contract classes run on ``titanic_api`` itself."""

from __future__ import annotations

import pytest

from tests.support.package import package_subject
from tests.support.subject import Subject


@pytest.fixture
def subject() -> Subject:
    """A fresh ``create_app()``, as the contract classes read an app."""
    return package_subject()

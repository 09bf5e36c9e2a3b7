"""The course site, built once per test run for the tests of this folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.site import build_site


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site, built once per test run into a temporary folder (never into the repository)."""
    site_dir = tmp_path_factory.mktemp("site")
    result = build_site(site_dir)
    assert result.returncode == 0, result.stderr
    assert "WARNING" not in result.stderr, result.stderr
    return site_dir

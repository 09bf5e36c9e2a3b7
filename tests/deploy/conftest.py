"""The fixture the Kubernetes tests share: deploy/k8s/ rendered once per module."""

import pytest

from tests.deploy.k8s_checks import Objects, render


@pytest.fixture(scope="module")
def rendered() -> Objects:
    return render()

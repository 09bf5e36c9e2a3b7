"""docker-compose.yml: every service hardened (issue 20, finding 11), checked by reading it back."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from tests.deploy.test_container import COMPOSE

Compose = dict[str, Any]


def hardening_problems(compose: Compose) -> list[str]:
    """What a service misses of: no capabilities, no privilege gain, limits, a restart policy."""
    problems = []
    for name, service in compose["services"].items():
        if service.get("cap_drop") != ["ALL"]:
            problems.append(f"{name}: cap_drop is not [ALL]")
        if "no-new-privileges:true" not in service.get("security_opt", []):
            problems.append(f"{name}: no no-new-privileges")
        if service.get("restart") not in ("unless-stopped", "always", "on-failure"):
            problems.append(f"{name}: no restart policy")
        limits = service.get("deploy", {}).get("resources", {}).get("limits", {})
        if not {"cpus", "memory"} <= limits.keys():
            problems.append(f"{name}: no memory and CPU limits")
        for tmpfs in service.get("tmpfs", []):
            if not re.search(r":(.*,)?size=\d+[kmg]?\b", tmpfs):
                problems.append(f"{name}: tmpfs {tmpfs} has no size")
    return problems


def compose() -> Compose:
    data: Compose = yaml.safe_load(COMPOSE.read_text())
    return data


def test_every_service_is_hardened() -> None:
    assert hardening_problems(compose()) == []


def test_the_apps_tmpfs_is_bounded_and_holds_what_goes_there() -> None:
    [tmpfs] = compose()["services"]["app"]["tmpfs"]
    assert tmpfs == "/tmp:size=256m"


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda s: s.pop("cap_drop"), "app: cap_drop is not [ALL]"),
        (lambda s: s.update(security_opt=[]), "app: no no-new-privileges"),
        (lambda s: s.pop("restart"), "app: no restart policy"),
        (lambda s: s["deploy"]["resources"]["limits"].pop("memory"), "app: no memory and CPU"),
        (lambda s: s.update(tmpfs=["/tmp"]), "app: tmpfs /tmp has no size"),
    ],
)
def test_the_check_fails_on_a_weakened_service(change: Any, problem: str) -> None:
    data = compose()
    change(data["services"]["app"])
    assert [p for p in hardening_problems(data) if p.startswith(problem)] != []

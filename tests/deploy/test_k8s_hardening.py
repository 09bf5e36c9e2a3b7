"""deploy/k8s: a NetworkPolicy, no service-account token, a log volume sized from the log's
settings, and no /simulate_predictions in production (issue 20, findings 5, 10 and 11)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.k8s_checks import containers, only, render
from tools.servers import REPO_ROOT

Objects = list[dict[str, Any]]
UNITS = {"": 1, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "k": 10**3, "M": 10**6, "G": 10**9}


def quantity(text: str) -> int:
    """A Kubernetes quantity of bytes ("512Mi") as an int."""
    match = re.fullmatch(r"(\d+)([KMG]i?|k)?", text)
    assert match, text
    return int(match.group(1)) * UNITS[match.group(2) or ""]


def environment(objects: Objects) -> dict[str, str]:
    [container] = containers(objects)
    return {item["name"]: item["value"] for item in container["env"]}


def log_volume_problems(objects: Objects) -> list[str]:
    """The prediction log's emptyDir holds every file the rotation keeps, and not much more."""
    from titanic_api.settings import Settings

    env = environment(objects)
    if "PREDICTION_LOG_PATH" not in env:
        return ["no PREDICTION_LOG_PATH: a new file per start, the volume cannot be sized"]
    settings = Settings.model_validate(
        {k.lower(): v for k, v in env.items() if k.startswith("PREDICTION_")}
    )
    assert settings.prediction_log_path is not None
    kept = (settings.prediction_log_backups + 1) * settings.prediction_log_max_bytes
    pod = only(objects, "Deployment")["spec"]["template"]["spec"]
    [container] = pod["containers"]
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    volume = volumes[mounts[str(settings.prediction_log_path.parent)]]
    limit = quantity(volume["emptyDir"]["sizeLimit"])
    if limit < kept:
        return [f"sizeLimit {limit} < the {kept} bytes the rotation keeps: the pod is evicted"]
    if limit >= kept + settings.prediction_log_max_bytes:
        return [f"sizeLimit {limit} holds a whole file more than the {kept} bytes kept"]
    return []


def test_the_log_volume_is_sized_from_the_rotation_settings(rendered: Objects) -> None:
    assert log_volume_problems(rendered) == []
    env = environment(rendered)
    assert (env["PREDICTION_LOG_MAX_BYTES"], env["PREDICTION_LOG_BACKUPS"]) == ("104857600", "4")


@pytest.mark.parametrize(
    ("setting", "value", "problem"),
    [
        ("PREDICTION_LOG_BACKUPS", "9", "the pod is evicted"),
        ("PREDICTION_LOG_MAX_BYTES", "10485760", "holds a whole file more"),
    ],
)
def test_the_sizing_check_fails_on_a_mismatch(
    tmp_path: Path, setting: str, value: str, problem: str
) -> None:
    base = tmp_path / "k8s"
    base.mkdir()
    for source in (REPO_ROOT / "deploy/k8s").rglob("*"):
        target = base / source.relative_to(REPO_ROOT / "deploy/k8s")
        if source.is_dir():
            target.mkdir(exist_ok=True)
        else:
            target.write_bytes(source.read_bytes())
    deployment = base / "deployment.yaml"
    text = deployment.read_text()
    old = re.search(rf"name: {setting}\n\s+value: (\S+)", text)
    assert old
    deployment.write_text(text.replace(old.group(0), old.group(0).replace(old.group(1), value)))
    [found] = log_volume_problems(render(base))
    assert problem in found


def test_the_pod_mounts_no_service_account_token(rendered: Objects) -> None:
    pod = only(rendered, "Deployment")["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False


def test_a_network_policy_lets_in_http_only_and_nothing_out(rendered: Objects) -> None:
    policy = only(rendered, "NetworkPolicy")
    pod = only(rendered, "Deployment")["spec"]["template"]
    selector = policy["spec"]["podSelector"]["matchLabels"]
    assert selector.items() <= pod["metadata"]["labels"].items()
    assert sorted(policy["spec"]["policyTypes"]) == ["Egress", "Ingress"]
    assert policy["spec"]["egress"] == []
    [container] = pod["spec"]["containers"]
    http = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert policy["spec"]["ingress"] == [{"ports": [{"port": "http", "protocol": "TCP"}]}]
    assert set(http) == {"http"}, "every port the pod listens on is the one let in"


def test_production_serves_no_simulation(rendered: Objects) -> None:
    from titanic_api.settings import Settings

    env = environment(rendered)
    assert env["TITANIC_ENABLE_SIMULATION"] == "false"
    settings = Settings.model_validate({"enable_simulation": env["TITANIC_ENABLE_SIMULATION"]})
    assert settings.enable_simulation is False

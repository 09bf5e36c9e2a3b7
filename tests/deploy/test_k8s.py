"""deploy/k8s/, checked offline: rendered by a pinned kustomize, then validated.

The base passes every check of tests/deploy/k8s_checks.py (the Kubernetes and CRD
schemas, promtool, the source files, the probes, the wiring) and renders what the course
describes. ``test_each_check_fails_on_a_broken_manifest`` breaks a copy of the base once
per check and shows that check failing. Without kustomize these tests skip, unless
``REQUIRE_KUSTOMIZE=1`` (CI), which turns the skip into a failure.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import yaml

from tests.deploy.k8s_checks import (
    BASE,
    CHECKS,
    NAMESPACE,
    Objects,
    containers,
    kustomize_binary,
    name,
    only,
    render,
    status_of,
)
from tools import k8s_generate, kustomize
from tools.servers import REPO_ROOT

# ------------------------------------------------------------------ the base passes


def test_derived_files_are_up_to_date() -> None:
    assert k8s_generate.stale_files() == [], "run python -m tools.k8s_generate"


def test_a_stale_derived_file_is_found_and_rewritten(tmp_path: Path) -> None:
    for path in (k8s_generate.RULES, k8s_generate.DASHBOARD, k8s_generate.GENERATED_DIR):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        copy = shutil.copytree if (REPO_ROOT / path).is_dir() else shutil.copy
        copy(REPO_ROOT / path, tmp_path / path)
    assert k8s_generate.stale_files(tmp_path) == []
    rules = tmp_path / k8s_generate.RULES
    rules.write_text(
        rules.read_text(encoding="utf-8").replace("for: 1m", "for: 2m"), encoding="utf-8"
    )
    assert k8s_generate.stale_files(tmp_path) == [k8s_generate.PROMETHEUS_RULE]
    assert k8s_generate.write(tmp_path) == [k8s_generate.PROMETHEUS_RULE]
    assert k8s_generate.stale_files(tmp_path) == []
    rule = yaml.safe_load((tmp_path / k8s_generate.PROMETHEUS_RULE).read_text(encoding="utf-8"))
    assert rule["spec"] == yaml.safe_load(rules.read_text(encoding="utf-8"))


def test_kustomize_is_the_pinned_one_and_off_the_path() -> None:
    binary = kustomize_binary()
    assert kustomize.versions(binary) == {
        "kubectl": kustomize.KUBECTL_VERSION,
        "kustomize": kustomize.KUSTOMIZE_VERSION,
    }
    assert str(binary.parent) not in os.environ.get("PATH", "").split(os.pathsep)


def test_the_base_renders_what_the_course_describes(rendered: Objects) -> None:
    assert sorted(name(obj) for obj in rendered) == [
        "ConfigMap/titanic-api-dashboard",
        "Deployment/titanic-api",
        "HorizontalPodAutoscaler/titanic-api",
        "Namespace/titanic",
        "NetworkPolicy/titanic-api",
        "PodDisruptionBudget/titanic-api",
        "PrometheusRule/titanic-api",
        "Service/titanic-api",
        "ServiceMonitor/titanic-api",
    ]
    for obj in rendered:
        if obj["kind"] != "Namespace":
            assert obj["metadata"]["namespace"] == NAMESPACE, name(obj)


@pytest.mark.parametrize("check", CHECKS)
def test_the_base_passes_every_check(check: str, rendered: Objects, tmp_path: Path) -> None:
    assert CHECKS[check](rendered, tmp_path) == []


def test_deployment_runs_one_uvicorn_per_pod_hardened(rendered: Objects) -> None:
    deployment = only(rendered, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert deployment["spec"]["replicas"] >= 2
    # One server process per pod (no workers, no gunicorn): each pod is one scrape target.
    assert container["command"] == ["python", "-m", "titanic_api"]
    env = {item["name"]: item["value"] for item in container["env"]}
    [port] = container["ports"]
    assert (env["TITANIC_HOST"], env["TITANIC_PORT"]) == ("0.0.0.0", str(port["containerPort"]))
    # The image is set in kustomization.yaml's images: only.
    kustomization = yaml.safe_load((BASE / "kustomization.yaml").read_text(encoding="utf-8"))
    [image] = kustomization["images"]
    assert container["image"] == f"{image['newName']}:{image['newTag']}"
    # Non-root, read-only root file system, the prediction log on an emptyDir.
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] > 0
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts[env["PREDICTION_LOG_DIR"]]]
    assert set(container["resources"]) == {"requests", "limits"}
    # The drain fits in the grace period: preStop pause + uvicorn's graceful timeout + margin.
    pause = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    drain = float(env["TITANIC_GRACEFUL_TIMEOUT"])
    assert pod["terminationGracePeriodSeconds"] >= pause + drain + 5


def test_the_package_reads_the_deployments_environment(
    rendered: Objects, monkeypatch: pytest.MonkeyPatch
) -> None:
    from titanic_api.settings import ServerSettings, Settings

    [container] = containers(rendered)
    for item in container["env"]:
        monkeypatch.setenv(item["name"], item["value"])
    server = ServerSettings()
    assert (server.host, server.port, server.graceful_timeout) == ("0.0.0.0", 8000, 20.0)
    assert Settings().prediction_log_dir == Path("/var/log/titanic-api")


def test_monitoring_objects_carry_the_labels_their_operators_select(rendered: Objects) -> None:
    monitor, rule = only(rendered, "ServiceMonitor"), only(rendered, "PrometheusRule")
    service = only(rendered, "Service")
    for obj in (monitor, rule):
        assert obj["metadata"]["labels"]["release"] == k8s_generate.RELEASE, name(obj)
    # The scraped series keep job="fastapi_app", which the dashboard and the rules select.
    assert service["metadata"]["labels"][monitor["spec"]["jobLabel"]] == "fastapi_app"
    [endpoint] = monitor["spec"]["endpoints"]
    assert endpoint["path"] == "/metrics" and status_of("/metrics") == 200
    dashboard = only(rendered, "ConfigMap")
    assert dashboard["metadata"]["labels"] == {"grafana_dashboard": "1"}


# ------------------------------------------------------------------ each check can fail

BROKEN = {
    # case: (the check that must fail, file in deploy/k8s, text, its replacement, what it says)
    "misspelt kind": (
        "kubernetes schemas",
        "deployment.yaml",
        "kind: Deployment",
        "kind: Deploymnet",
        "Deploymnet/titanic-api: SchemaNotFoundError",
    ),
    "string for a number": (
        "kubernetes schemas",
        "hpa.yaml",
        "maxReplicas: 5",
        'maxReplicas: "5"',
        "'5' is not of type 'integer'",
    ),
    "misspelt CRD kind": (
        "kubernetes schemas",
        "servicemonitor.yaml",
        "kind: ServiceMonitor",
        "kind: ServiceMonitors",
        "ServiceMonitors/titanic-api: no CRD schema",
    ),
    "string for a number in a CRD": (
        "CRD schemas",
        "servicemonitor.yaml",
        "  jobLabel: prometheus-job",
        '  jobLabel: prometheus-job\n  sampleLimit: "1000"',
        "$.spec.sampleLimit: '1000' is not valid",
    ),
    "unknown CRD field": (
        "CRD schemas",
        "servicemonitor.yaml",
        "interval: 15s",
        "intervall: 15s",
        "'intervall' was unexpected",
    ),
    "broken PromQL": (
        "promtool",
        "generated/prometheus-rule.yaml",
        'expr: up{job="fastapi_app"} == 0',
        'expr: up{job="fastapi_app" == 0',
        '"TitanicApiDown": could not parse expression',
    ),
    "stale dashboard copy": (
        "sources",
        "generated/titanic_api_simple_app_monitoring.json",
        '"refresh": "10s"',
        '"refresh": "30s"',
        "the dashboard ConfigMap is not grafana_dashboard/",
    ),
    "probe on an unserved path": (
        "probes",
        "deployment.yaml",
        "path: /health",
        "path: /healthz",
        "livenessProbe asks /healthz: 404",
    ),
    "ServiceMonitor port the Service lacks": (
        "wiring",
        "servicemonitor.yaml",
        "- port: http",
        "- port: metrics",
        "port metrics not in Service/titanic-api",
    ),
}


@pytest.mark.parametrize("case", BROKEN)
def test_each_check_fails_on_a_broken_manifest(case: str, tmp_path: Path) -> None:
    check, file, text, replacement, says = BROKEN[case]
    base = tmp_path / "k8s"
    shutil.copytree(BASE, base)
    original = (base / file).read_text(encoding="utf-8")
    assert original.count(text) == 1, f"{file} no longer has {text!r}"
    (base / file).write_text(original.replace(text, replacement), encoding="utf-8")
    problems = CHECKS[check](render(base), tmp_path)
    assert any(says in problem for problem in problems), (case, problems)

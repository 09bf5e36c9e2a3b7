"""deploy/k8s/ rendered by a pinned kustomize, and the checks that stand in for a cluster.

No cluster runs here, so each rendered object goes through checks that stand in for
what ``kubectl apply -k deploy/k8s`` and the Prometheus Operator would do:

- built-in kinds against the Kubernetes OpenAPI schemas of a pinned version
  (kubernetes-validate's Python API: its command line exits 0 on unknown kinds);
- ServiceMonitor and PrometheusRule against their CRD schemas (deploy/crd-schemas/);
- the PrometheusRule's rules through ``promtool check rules``;
- the dashboard ConfigMap and the PrometheusRule equal their source files;
- probes ask paths the app serves; Service, pods and ServiceMonitor find each other.

Each check returns the problems it finds (``CHECKS``, by name); tests/deploy/test_k8s.py
runs them on the base and on broken copies of it. kustomize is kubectl's, from a
downloaded wheel, off the PATH (tools/kustomize.py): without it the tests that render
skip, unless ``REQUIRE_KUSTOMIZE=1`` (CI), which turns the skip into a failure.
"""

from __future__ import annotations

import functools
import importlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from fastapi.testclient import TestClient

from tests.deploy.stack import promtool
from tools import k8s_generate, kustomize
from tools.servers import REPO_ROOT

BASE = REPO_ROOT / k8s_generate.K8S_DIR
CRD_SCHEMAS = REPO_ROOT / k8s_generate.CRD_SCHEMAS_DIR
# The Kubernetes version whose OpenAPI schemas the built-in kinds must satisfy.
KUBERNETES_VERSION = "1.37.0"
CRD_GROUP = "monitoring.coreos.com/v1"
APP_MODULE = "titanic_api.main"
NAMESPACE = "titanic"
Objects = list[dict[str, Any]]


def kustomize_binary() -> Path:
    if kustomize.BINARY.is_file():
        return kustomize.BINARY
    hint = (
        f"kustomize is not installed: run `python -m tools.kustomize install` ({kustomize.BINARY})"
    )
    if os.environ.get("REQUIRE_KUSTOMIZE") == "1":
        pytest.fail(f"REQUIRE_KUSTOMIZE=1 but {hint}")
    pytest.skip(hint)


def render(base: Path = BASE) -> Objects:
    return kustomize.build(base, kustomize_binary())


def only(objects: Objects, kind: str) -> dict[str, Any]:
    [found] = [obj for obj in objects if obj["kind"] == kind]
    return found


def of_kind(objects: Objects, kind: str) -> Objects:
    return [obj for obj in objects if obj["kind"] == kind]


def name(obj: dict[str, Any]) -> str:
    return f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"


@functools.cache
def status_of(path: str) -> int:
    """What the app (with its model loaded) answers to GET ``path``, as a probe would see it."""
    app = importlib.import_module(APP_MODULE).app
    with TestClient(app) as client:
        return client.get(path).status_code


def containers(objects: Objects) -> list[dict[str, Any]]:
    return [
        c
        for d in of_kind(objects, "Deployment")
        for c in d["spec"]["template"]["spec"]["containers"]
    ]


# ------------------------------------------------------------------ the checks
# Each takes the rendered objects and returns its problems, one line each.


def check_kubernetes_schemas(objects: Objects) -> list[str]:
    """Built-in kinds against Kubernetes' schemas; unknown kinds are problems too."""
    problems = []
    for obj in objects:
        if obj.get("apiVersion") == CRD_GROUP:
            if not (CRD_SCHEMAS / f"{str(obj.get('kind')).lower()}.json").is_file():
                problems.append(f"{name(obj)}: no CRD schema for this kind")
            continue
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except (kubernetes_validate.ValidationError, kubernetes_validate.SchemaNotFoundError) as e:
            first_line = (str(e).splitlines() or [""])[0]
            problems.append(f"{name(obj)}: {type(e).__name__} {first_line}")
    return problems


def check_crd_schemas(objects: Objects) -> list[str]:
    """ServiceMonitor and PrometheusRule against the CRD schemas in deploy/crd-schemas/."""
    problems = []
    for obj in objects:
        path = CRD_SCHEMAS / f"{str(obj.get('kind')).lower()}.json"
        if obj.get("apiVersion") != CRD_GROUP or not path.is_file():
            continue
        validator = jsonschema.Draft202012Validator(json.loads(path.read_text(encoding="utf-8")))
        for error in validator.iter_errors(obj):
            problems.append(f"{name(obj)} at {error.json_path}: {error.message}")
    return problems


def check_promtool(objects: Objects, tmp: Path) -> list[str]:
    """Every PrometheusRule's spec is a rules file promtool accepts."""
    problems = []
    for obj in of_kind(objects, "PrometheusRule"):
        rules = tmp / f"{obj['metadata']['name']}.rules.yml"
        rules.write_text(yaml.safe_dump(obj.get("spec")), encoding="utf-8")
        result = promtool("check", "rules", str(rules))
        if result.returncode != 0:
            problems.append(f"{name(obj)}: {(result.stdout + result.stderr).strip()}")
    return problems


def check_sources(objects: Objects) -> list[str]:
    """The dashboard ConfigMap and the PrometheusRule say exactly what their sources say."""
    dashboard = (REPO_ROOT / k8s_generate.DASHBOARD).read_text(encoding="utf-8")
    rules = yaml.safe_load((REPO_ROOT / k8s_generate.RULES).read_text(encoding="utf-8"))
    problems = []
    maps = [
        c
        for c in of_kind(objects, "ConfigMap")
        if "grafana_dashboard" in c["metadata"].get("labels", {})
    ]
    if [c["data"] for c in maps] != [{k8s_generate.DASHBOARD.name: dashboard}]:
        problems.append(f"the dashboard ConfigMap is not {k8s_generate.DASHBOARD}")
    if [r.get("spec") for r in of_kind(objects, "PrometheusRule")] != [rules]:
        problems.append(f"the PrometheusRule's spec is not {k8s_generate.RULES}")
    return problems


def check_probes(objects: Objects) -> list[str]:
    """Each probe asks a path the app serves, on a port the container declares."""
    problems = []
    for container in containers(objects):
        ports = {p.get("name") for p in container.get("ports", [])}
        ports |= {p.get("containerPort") for p in container.get("ports", [])}
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            get = container.get(probe, {}).get("httpGet")
            if get is None:
                problems.append(f"{container['name']}: no HTTP {probe}")
                continue
            status = status_of(get.get("path"))
            if status != 200:
                problems.append(f"{container['name']}: {probe} asks {get.get('path')}: {status}")
            if get.get("port") not in ports:
                problems.append(f"{container['name']}: {probe} port {get.get('port')} undeclared")
    return problems


def matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def check_wiring(objects: Objects) -> list[str]:
    """Service -> pods, ServiceMonitor -> Service, by labels and named ports."""
    problems = []
    pods = [d["spec"]["template"] for d in of_kind(objects, "Deployment")]
    services = of_kind(objects, "Service")
    for service in services:
        chosen = [p for p in pods if matches(service["spec"]["selector"], p["metadata"]["labels"])]
        if not chosen:
            problems.append(f"{name(service)} selects no pod")
        port_names = {
            p.get("name")
            for pod in chosen
            for c in pod["spec"]["containers"]
            for p in c.get("ports", [])
        }
        for port in service["spec"]["ports"]:
            if port.get("targetPort") not in port_names:
                problems.append(
                    f"{name(service)}: targetPort {port.get('targetPort')} is no pod port"
                )
    for monitor in of_kind(objects, "ServiceMonitor"):
        spec = monitor["spec"]
        selected = [
            s
            for s in services
            if matches(spec["selector"]["matchLabels"], s["metadata"].get("labels", {}))
        ]
        if not selected:
            problems.append(f"{name(monitor)} selects no Service")
        for endpoint in spec["endpoints"]:
            for service in selected:
                if endpoint.get("port") not in {p.get("name") for p in service["spec"]["ports"]}:
                    problems.append(
                        f"{name(monitor)}: port {endpoint.get('port')} not in {name(service)}"
                    )
        for service in selected:
            if spec.get("jobLabel") not in service["metadata"].get("labels", {}):
                problems.append(
                    f"{name(monitor)}: {name(service)} has no label {spec.get('jobLabel')}"
                )
    return problems


CHECKS: dict[str, Callable[[Objects, Path], list[str]]] = {
    "kubernetes schemas": lambda objects, _tmp: check_kubernetes_schemas(objects),
    "CRD schemas": lambda objects, _tmp: check_crd_schemas(objects),
    "promtool": check_promtool,
    "sources": lambda objects, _tmp: check_sources(objects),
    "probes": lambda objects, _tmp: check_probes(objects),
    "wiring": lambda objects, _tmp: check_wiring(objects),
}

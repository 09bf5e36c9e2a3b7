"""deploy/k8s read as the Prometheus Operator and a cluster would read it, for tools.rehearse.

- ``scrape_job``: the scrape job the Operator generates for the ServiceMonitor and the
  Service (job name, relabelling, one static target per replica carrying the meta labels
  Kubernetes' service discovery would give it);
- ``rules_spec``: the rendered PrometheusRule's spec, the rules Prometheus loads;
- ``container``: the Deployment's one container (command, environment, probes).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import yaml

from tools.k8s_generate import K8S_DIR, PROMETHEUS_RULE
from tools.servers import REPO_ROOT

BASE = REPO_ROOT / K8S_DIR
# Scrape and evaluate every second (the ServiceMonitor says 15s: too slow for a test).
INTERVAL = "1s"


def manifest(file: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((BASE / file).read_text(encoding="utf-8"))
    return data


def namespace() -> str:
    return str(manifest("kustomization.yaml")["namespace"])


def container() -> dict[str, Any]:
    [spec] = manifest("deployment.yaml")["spec"]["template"]["spec"]["containers"]
    return dict(spec)


def sanitize(label: str) -> str:
    """A Kubernetes label name as a Prometheus meta label suffix (what the SD does)."""
    return re.sub(r"[^a-zA-Z0-9_]", "_", label)


def scrape_job(targets: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """The Operator's scrape job for the ServiceMonitor, over ``(pod, host:port)`` targets.

    Service discovery is replaced by static targets carrying the meta labels
    Kubernetes' would give them; the relabelling is what the Operator generates.
    """
    monitor, service = manifest("servicemonitor.yaml"), manifest("service.yaml")
    [endpoint] = monitor["spec"]["endpoints"]
    ns, service_name = namespace(), service["metadata"]["name"]
    service_labels = service["metadata"]["labels"]
    meta = {f"__meta_kubernetes_service_label_{sanitize(k)}": v for k, v in service_labels.items()}
    meta |= {
        "__meta_kubernetes_namespace": ns,
        "__meta_kubernetes_service_name": service_name,
        "__meta_kubernetes_endpoint_port_name": endpoint["port"],
    }
    relabel = [
        {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
        {"source_labels": ["__meta_kubernetes_service_name"], "target_label": "service"},
        {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
        {"target_label": "endpoint", "replacement": endpoint["port"]},
        # job: the Service's name, unless jobLabel names a Service label that is set.
        {"source_labels": ["__meta_kubernetes_service_name"], "target_label": "job"},
    ]
    if "jobLabel" in monitor["spec"]:
        relabel.append(
            {
                "source_labels": [
                    f"__meta_kubernetes_service_label_{sanitize(monitor['spec']['jobLabel'])}"
                ],
                "target_label": "job",
                "regex": "(.+)",
                "replacement": "${1}",
            }
        )
    return {
        "job_name": f"serviceMonitor/{ns}/{monitor['metadata']['name']}/0",
        "scrape_interval": INTERVAL,
        "metrics_path": endpoint.get("path", "/metrics"),
        # The Operator keeps the labels the targets expose (honor_labels false).
        "static_configs": [
            {"targets": [address], "labels": {**meta, "__meta_kubernetes_pod_name": pod}}
            for pod, address in targets
        ],
        "relabel_configs": relabel,
    }


def rules_spec() -> dict[str, Any]:
    """The rendered PrometheusRule's spec: the rules Prometheus loads."""
    spec: dict[str, Any] = yaml.safe_load(
        (REPO_ROOT / PROMETHEUS_RULE).read_text(encoding="utf-8")
    )["spec"]
    return spec

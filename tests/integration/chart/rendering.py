"""Rendering the Helm chart with a real helm binary, for the chart tests.

``render`` runs ``helm template`` with a set of values and returns the rendered objects
as dictionaries; renders are cached per value set, since several tests read each one.
"""

from __future__ import annotations

import functools
import json
import subprocess
from pathlib import Path
from typing import Any

import yaml

from dbkeeper.paths import source_root

CHART_DIR = source_root() / "charts" / "dbkeeper"
RELEASE = "keeper"
RELEASE_NAMESPACE = "dbkeeper-system"

Manifest = dict[str, Any]

# The value sets every chart test renders. Each one is a way users install the chart.
VALUE_SETS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "namespaced-with-secret-names": {
        "watch": {
            "namespaces": ["health", "billing"],
            "secretNames": ["clinic-owner", "clinic-app", "clinic-pooler"],
        },
    },
    "namespaced": {"watch": {"namespaces": ["health"]}},
    "audit-key": {"audit": {"keySecret": "dbkeeper-audit-key"}},
    "cluster-wide": {"watch": {"namespaces": []}, "replicas": 3},
    "monitoring-on": {
        "metrics": {
            "serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}},
            "prometheusRule": {"enabled": True},
            "dashboard": {"enabled": True},
        },
    },
    "monitoring-off": {
        "metrics": {
            "service": {"enabled": False},
            "serviceMonitor": {"enabled": False},
            "prometheusRule": {"enabled": False},
            "dashboard": {"enabled": False},
        },
    },
    "network-policy": {
        "networkPolicy": {
            "enabled": True,
            "metricsFrom": [{"namespaceSelector": {"matchLabels": {"name": "monitoring"}}}],
            "apiServer": {"ports": [6443], "cidrs": ["10.96.0.1/32"]},
        },
    },
    "single-replica": {"replicas": 1},
    "backup-claims": {"backupClaims": ["clinic-backups"], "watch": {"namespaces": ["health"]}},
}


class HelmError(RuntimeError):
    """helm exited non-zero; carries its stderr."""

    def __init__(self, command: list[str], stderr: str) -> None:
        super().__init__(f"{' '.join(command[:2])} failed: {stderr.strip()}")
        self.stderr = stderr


def run_helm(helm: Path, *args: str, values: dict[str, Any] | None = None) -> str:
    command = [str(helm), *args]
    result = subprocess.run(
        command,
        input=json.dumps(values or {}),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode != 0:
        raise HelmError(command, result.stderr)
    return result.stdout


def template(helm: Path, values: dict[str, Any], *extra: str) -> str:
    """``helm template`` output; values are passed as JSON on stdin (JSON is YAML)."""
    return run_helm(
        helm,
        "template",
        RELEASE,
        str(CHART_DIR),
        "--namespace",
        RELEASE_NAMESPACE,
        "--include-crds",
        "--values",
        "-",
        *extra,
        values=values,
    )


@functools.cache
def _render_cached(helm: Path, values_json: str) -> tuple[Manifest, ...]:
    text = template(helm, json.loads(values_json))
    return tuple(doc for doc in yaml.safe_load_all(text) if doc)


def render(helm: Path, values: dict[str, Any]) -> list[Manifest]:
    """Every object the chart renders with ``values`` (CRDs included)."""
    return [dict(obj) for obj in _render_cached(helm, json.dumps(values, sort_keys=True))]


def of_kind(objects: list[Manifest], kind: str) -> list[Manifest]:
    return [obj for obj in objects if obj.get("kind") == kind]


def pod_specs(objects: list[Manifest]) -> list[tuple[str, Manifest]]:
    """(``Kind/name``, pod spec) of every workload among ``objects``."""
    found: list[tuple[str, Manifest]] = []
    for obj in objects:
        kind, spec = obj.get("kind"), obj.get("spec") or {}
        name = f"{kind}/{obj.get('metadata', {}).get('name')}"
        if kind == "Pod":
            found.append((name, spec))
        elif kind in {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}:
            found.append((name, spec["template"]["spec"]))
        elif kind == "CronJob":
            found.append((name, spec["jobTemplate"]["spec"]["template"]["spec"]))
    return found

"""Every pod dbkeeper runs meets Pod Security "restricted", checked field by field.

The operator's pods come from the rendered chart; the pooler and backup pods are built
by the operator (dbkeeper.manifests), so those builders run here with sample input and
go through the same check.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from dbkeeper.manifests.backup import (
    BackupJobSettings,
    build_backup_cronjob,
    build_backup_job,
    build_verify_cronjob,
)
from dbkeeper.manifests.pooler import PoolerObjectsInput, build_pooler_deployment
from dbkeeper.pooler.render import UserEntry
from dbkeeper.pooler.settings import DatabaseTarget, PgBouncerSettings
from tests.integration.chart.pod_security import restricted_violations
from tests.integration.chart.rendering import VALUE_SETS, Manifest, pod_specs, render

OWNER = {
    "apiVersion": "dbkeeper.dev/v1alpha1",
    "kind": "DatabaseSchema",
    "name": "clinic",
    "uid": "5f1e2b7a-9d0c-4c43-8a8e-0c1d2e3f4a5b",
}


def _operator_built_workloads() -> list[Manifest]:
    pooler = PoolerObjectsInput(
        name="clinic-pooler",
        namespace="health",
        owner_reference=OWNER,
        settings=PgBouncerSettings(
            databases=(DatabaseTarget("clinic", "clinic-pg.health.svc", 5432, "clinic"),),
        ),
        users=(UserEntry.from_password("clinic_app", "not-a-real-password"),),
        image="dbkeeper:0.1.0",
    )
    backup = BackupJobSettings(
        resource_name="clinic",
        namespace="health",
        image="dbkeeper:0.1.0",
        database_host="clinic-pg.health.svc",
        database_port=5432,
        database_name="clinic",
        credentials_secret="clinic-owner",
        claim_name="clinic-backups",
        owner_reference=OWNER,
        keep_last=7,
    )
    return [
        build_pooler_deployment(pooler),
        build_backup_cronjob(backup, "0 2 * * *"),
        build_verify_cronjob(backup, "0 4 * * 0"),
        build_backup_job(backup, "clinic-backup-now"),
    ]


@pytest.mark.parametrize("values", VALUE_SETS.values(), ids=VALUE_SETS.keys())
def test_chart_pods_meet_restricted(helm: Path, values: dict[str, Any]) -> None:
    pods = pod_specs(render(helm, values))
    assert pods, "the chart rendered no pod"
    for name, pod in pods:
        assert restricted_violations(pod) == [], name


@pytest.mark.parametrize(
    "workload", _operator_built_workloads(), ids=lambda w: f"{w['kind']}-{w['metadata']['name']}"
)
def test_pooler_and_backup_pods_meet_restricted(workload: Manifest) -> None:
    ((name, pod),) = pod_specs([workload])
    assert restricted_violations(pod) == [], name


def test_operator_built_pods_do_not_get_an_api_token() -> None:
    for _, pod in pod_specs(_operator_built_workloads()):
        assert pod["automountServiceAccountToken"] is False


# Each way of breaking the profile, applied to a pod that passes: the check must see it.
_BREAKAGES: dict[str, tuple[str, Any]] = {
    "privileged": ("container.securityContext.privileged", True),
    "escalation": ("container.securityContext.allowPrivilegeEscalation", True),
    "root-user": ("container.securityContext.runAsUser", 0),
    "may-run-as-root": ("container.securityContext.runAsNonRoot", False),
    "unconfined-seccomp": ("container.securityContext.seccompProfile", {"type": "Unconfined"}),
    "keeps-capabilities": ("container.securityContext.capabilities", {"drop": ["NET_RAW"]}),
    "adds-capability": (
        "container.securityContext.capabilities",
        {"drop": ["ALL"], "add": ["SYS_ADMIN"]},
    ),
    "writable-root": ("container.securityContext.readOnlyRootFilesystem", False),
    "host-network": ("pod.hostNetwork", True),
    "host-path": ("pod.volumes", [{"name": "h", "hostPath": {"path": "/"}}]),
    "host-port": ("container.ports", [{"containerPort": 80, "hostPort": 80}]),
    "unsafe-sysctl": ("pod.securityContext.sysctls", [{"name": "kernel.msgmax", "value": "1"}]),
}


@pytest.mark.parametrize(("field", "value"), _BREAKAGES.values(), ids=_BREAKAGES.keys())
def test_the_check_finds_each_way_of_breaking_restricted(field: str, value: Any) -> None:
    ((_, good),) = pod_specs([_operator_built_workloads()[0]])
    assert restricted_violations(good) == []
    pod = copy.deepcopy(good)
    where, *path = field.split(".")
    target = pod["containers"][0] if where == "container" else pod
    for key in path[:-1]:
        target = target.setdefault(key, {})
    target[path[-1]] = value
    assert restricted_violations(pod) != []

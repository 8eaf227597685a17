"""The chart's RBAC, judged by the real API server's authorizer.

Every scenario's operator logs in as the chart's ServiceAccount (see tests/k8s/conftest.py),
so each one shows the chart grants enough. These show it grants no more: installed for
one namespace, the operator may not read Secrets elsewhere, and an operator asked to
watch a namespace its RBAC does not cover says so in one line at start-up.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes
import pytest

from dbkeeper.kube import KubeClient, KubeError
from dbkeeper.reconcile.permissions import missing_permissions
from tests.k8s.chart_install import NAMESPACE as CHART_NAMESPACE
from tests.k8s.chart_install import SERVICE_ACCOUNT
from tests.k8s.harness import Cluster
from tests.k8s.scenarios.conftest import (
    OwnedDatabase,
    schema_manifest,
    secret_manifest,
    wait_for_phase,
)


def _client(kubeconfig: Path) -> KubeClient:
    api = kubernetes.config.new_client_from_config(  # type: ignore[no-untyped-call]
        config_file=str(kubeconfig), persist_config=False
    )
    return KubeClient(api)


def _operator_login(cluster: Cluster) -> Path:
    assert cluster.operator_kubeconfig is not None, "the chart is installed for scenarios"
    return cluster.operator_kubeconfig


def test_operators_log_in_as_the_charts_service_account(k8s_cluster: Cluster) -> None:
    client = _client(_operator_login(k8s_cluster))
    review = client._request(  # the raw call: who does the server think we are?
        "POST",
        "/apis/authentication.k8s.io/v1/selfsubjectreviews",
        body={"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
    )
    assert review is not None
    username = review["status"]["userInfo"]["username"]
    assert username == f"system:serviceaccount:{CHART_NAMESPACE}:{SERVICE_ACCOUNT}"


def test_the_cluster_wide_chart_grants_every_call_the_operator_makes(
    k8s_cluster: Cluster,
) -> None:
    assert missing_permissions(_client(_operator_login(k8s_cluster)), []) == []


@pytest.mark.k8s_chart(values={"watch": {"namespaces": ["team-a"]}})
def test_a_namespaced_chart_grants_its_namespace_and_nothing_outside(
    k8s_cluster: Cluster,
) -> None:
    for namespace in ("team-a", "team-b"):
        k8s_cluster.ensure_namespace(namespace)
        k8s_cluster.create(secret_manifest(namespace, "owner", "someone", "not-a-real-secret"))
    client = _client(_operator_login(k8s_cluster))

    assert missing_permissions(client, ["team-a"]) == []
    assert client.read_secret("team-a", "owner") is not None
    with pytest.raises(KubeError) as refused:
        client.read_secret("team-b", "owner")
    assert refused.value.status == 403
    assert "team-b" in str(refused.value)
    outside = missing_permissions(client, ["team-b"])
    assert "get secrets in namespace team-b" in outside
    assert "list databaseschemas in namespace team-b" in outside
    assert missing_permissions(client, []), "nothing may be done cluster-wide"


@pytest.mark.k8s_chart(values={"watch": {"namespaces": ["team-a"]}})
def test_an_operator_watching_beyond_its_rbac_says_so_and_serves_what_it_may(
    k8s_cluster: Cluster, start_dbkeeper: Any, owned_database: OwnedDatabase
) -> None:
    for namespace in ("team-a", "team-b"):
        k8s_cluster.ensure_namespace(namespace)
    k8s_cluster.create(
        secret_manifest("team-a", "owner", owned_database.username, owned_database.password)
    )
    with start_dbkeeper(namespaces=["team-a", "team-b"]) as operator:
        k8s_cluster.create(schema_manifest("team-a", "clinic", owned_database, "owner"))
        wait_for_phase(k8s_cluster, "team-a", "clinic", "Ready", timeout=90)
        logs = operator.log_text()
    complaint = next(line for line in logs.splitlines() if "may not" in line)
    assert "get secrets in namespace team-b" in complaint
    assert "team-a" not in complaint
    assert "watch.namespaces" in complaint

"""The chart's RBAC grants exactly what the operator's code and kopf call, no more.

What the operator's own code calls comes from ``dbkeeper.kube`` (``KINDS`` and
``API_CALLS``), not from a list kept here. What kopf itself calls is listed below, each
with the reason, since it is not in dbkeeper's code.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from dbkeeper.kube import API_CALLS, KINDS
from tests.integration.chart.rendering import VALUE_SETS, Manifest, of_kind, render

Grant = tuple[str, str, str]  # (apiGroup, resource, verb)

# kopf's own calls, for every served namespace (or cluster-wide):
KOPF_NEEDS: dict[tuple[str, str], frozenset[str]] = {
    # watching the resources it serves, and patching finalizers and annotations on them
    ("dbkeeper.dev", "databaseschemas"): frozenset({"list", "watch", "patch"}),
    # KubeClient.patch_status (the status helper) writes the status subresource
    ("dbkeeper.dev", "databaseschemas/status"): frozenset({"patch"}),
    # watching the ConfigMaps labelled as migration sets, to wake the resources using them
    ("", "configmaps"): frozenset({"list", "watch"}),
}
# ...with peering (more than one replica): its peering objects, per served namespace or
# cluster-wide.
KOPF_PEERING_NEEDS = frozenset({"get", "list", "watch", "patch"})
# ...cluster-wide only: following CRDs as they appear (namespace-scoped, kopf logs that
# it may not and carries on with what it found at start-up).
KOPF_CLUSTER_NEEDS: dict[tuple[str, str], frozenset[str]] = {
    ("apiextensions.k8s.io", "customresourcedefinitions"): frozenset({"list", "watch"}),
}


def _code_needs() -> set[Grant]:
    grants: set[Grant] = set()
    for kind_name, verbs in API_CALLS.items():
        kind = KINDS[kind_name]
        grants |= {(kind.group, kind.plural, verb) for verb in verbs}
    return grants


def _expected(*, clusterwide: bool, peering: bool) -> set[Grant]:
    needs = _code_needs()
    extra = dict(KOPF_NEEDS)
    if clusterwide:
        extra.update(KOPF_CLUSTER_NEEDS)
    if peering:
        plural = "clusterkopfpeerings" if clusterwide else "kopfpeerings"
        extra[("kopf.dev", plural)] = KOPF_PEERING_NEEDS
    for (group, resource), verbs in extra.items():
        needs |= {(group, resource, verb) for verb in verbs}
    return needs


def _grants(rules: Iterable[dict[str, Any]]) -> set[Grant]:
    return {
        (group, resource, verb)
        for rule in rules
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def _no_wildcards(rules: Iterable[dict[str, Any]]) -> None:
    for rule in rules:
        for field in ("apiGroups", "resources", "verbs", "resourceNames"):
            assert "*" not in rule.get(field, []), f"wildcard in {field}: {rule}"
        assert "nonResourceURLs" not in rule


def _bound_to_the_operator(objects: list[Manifest], binding_kind: str, role: Manifest) -> None:
    (account,) = of_kind(objects, "ServiceAccount")
    (deployment,) = of_kind(objects, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == account["metadata"]["name"]
    bindings = [
        b
        for b in of_kind(objects, binding_kind)
        if b["roleRef"]["name"] == role["metadata"]["name"]
        and b["metadata"].get("namespace") == role["metadata"].get("namespace")
    ]
    assert len(bindings) == 1, f"{role['kind']} {role['metadata']} is bound {len(bindings)} times"
    assert bindings[0]["roleRef"]["kind"] == role["kind"]
    assert bindings[0]["subjects"] == [
        {
            "kind": "ServiceAccount",
            "name": account["metadata"]["name"],
            "namespace": account["metadata"]["namespace"],
        }
    ]


@pytest.mark.parametrize("replicas", [1, 2])
def test_cluster_wide_mode_grants_exactly_what_is_called(helm: Path, replicas: int) -> None:
    objects = render(helm, {"watch": {"namespaces": []}, "replicas": replicas})
    assert not of_kind(objects, "Role")
    assert not of_kind(objects, "RoleBinding")
    (role,) = of_kind(objects, "ClusterRole")
    _no_wildcards(role["rules"])
    assert _grants(role["rules"]) == _expected(clusterwide=True, peering=replicas > 1)
    assert all("resourceNames" not in rule for rule in role["rules"])
    _bound_to_the_operator(objects, "ClusterRoleBinding", role)


@pytest.mark.parametrize("replicas", [1, 2])
def test_namespaced_mode_grants_exactly_what_is_called_in_each_namespace(
    helm: Path, replicas: int
) -> None:
    namespaces = ["health", "billing"]
    objects = render(helm, {"watch": {"namespaces": namespaces}, "replicas": replicas})
    assert not of_kind(objects, "ClusterRole")
    assert not of_kind(objects, "ClusterRoleBinding")
    roles = of_kind(objects, "Role")
    assert sorted(r["metadata"]["namespace"] for r in roles) == sorted(namespaces)
    for role in roles:
        _no_wildcards(role["rules"])
        assert _grants(role["rules"]) == _expected(clusterwide=False, peering=replicas > 1)
        _bound_to_the_operator(objects, "RoleBinding", role)


def test_secret_names_limit_every_secret_read_and_write_to_those_names(helm: Path) -> None:
    values = VALUE_SETS["namespaced-with-secret-names"]
    names = values["watch"]["secretNames"]
    for role in of_kind(render(helm, values), "Role"):
        _no_wildcards(role["rules"])
        assert _grants(role["rules"]) == _expected(clusterwide=False, peering=True)
        for rule in role["rules"]:
            if "secrets" not in rule["resources"]:
                continue
            assert rule["resources"] == ["secrets"], "a Secret rule shared with other kinds"
            if set(rule["verbs"]) & {"get", "list", "watch", "patch", "update", "delete"}:
                assert rule.get("resourceNames") == names, rule
                assert not set(rule["verbs"]) & {"list", "watch"}
            else:
                # Kubernetes cannot restrict create by name: create reads nothing.
                assert rule["verbs"] == ["create"], rule


def test_without_secret_names_secrets_are_not_restricted_by_name(helm: Path) -> None:
    for role in of_kind(render(helm, VALUE_SETS["namespaced"]), "Role"):
        assert all("resourceNames" not in rule for rule in role["rules"])


def test_no_rbac_objects_when_rbac_is_off(helm: Path) -> None:
    objects = render(helm, {"rbac": {"create": False}})
    kinds = {obj["kind"] for obj in objects}
    assert not kinds & {"Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"}

"""The chart lints, renders with every value set, and renders only valid objects."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from dbkeeper.paths import source_root
from dbkeeper.settings import Settings
from tests.integration.chart.rendering import (
    CHART_DIR,
    RELEASE_NAMESPACE,
    VALUE_SETS,
    Manifest,
    of_kind,
    render,
    run_helm,
)

KUBERNETES_VERSION = "1.30"
# Kinds whose schemas are not in kubernetes-validate; checked by the tests below.
CUSTOM_KINDS = {"PrometheusRule", "ServiceMonitor", "ClusterKopfPeering", "KopfPeering"}
value_sets = pytest.mark.parametrize("values", VALUE_SETS.values(), ids=VALUE_SETS.keys())


def _operator_deployment(objects: list[Manifest]) -> Manifest:
    (deployment,) = of_kind(objects, "Deployment")
    return deployment


def _env(deployment: Manifest) -> dict[str, Any]:
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    return {item["name"]: item.get("value", item.get("valueFrom")) for item in container["env"]}


@value_sets
def test_helm_lint_passes(helm: Path, values: dict[str, Any], tmp_path: Path) -> None:
    values_file = tmp_path / "values.json"
    values_file.write_text(json.dumps(values))
    output = run_helm(helm, "lint", "--strict", str(CHART_DIR), "--values", str(values_file))
    assert "0 chart(s) failed" in output


@value_sets
def test_every_rendered_object_is_valid_kubernetes(helm: Path, values: dict[str, Any]) -> None:
    objects = render(helm, values)
    assert of_kind(objects, "Deployment"), "the chart rendered no Deployment"
    for obj in objects:
        if obj["kind"] in CUSTOM_KINDS:
            continue
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


@value_sets
def test_namespaced_objects_go_to_the_release_or_a_watched_namespace(
    helm: Path, values: dict[str, Any]
) -> None:
    watched = set(values.get("watch", {}).get("namespaces", []))
    for obj in render(helm, values):
        namespace = obj["metadata"].get("namespace")
        if obj["kind"] in {"Role", "RoleBinding", "KopfPeering"}:
            assert namespace in watched, obj["kind"]
        elif obj["kind"] not in {
            "CustomResourceDefinition",
            "ClusterRole",
            "ClusterRoleBinding",
            "ClusterKopfPeering",
        }:
            assert namespace == RELEASE_NAMESPACE, f"{obj['kind']} in {namespace}"


def test_chart_crd_is_the_generated_crd_byte_for_byte() -> None:
    generated = source_root() / "crds" / "databaseschema.yaml"
    shipped = CHART_DIR / "crds" / "databaseschema.yaml"
    assert shipped.read_bytes() == generated.read_bytes(), (
        "charts/dbkeeper/crds/databaseschema.yaml differs from crds/: run `make chart-crds`"
    )


def test_rendered_crds_are_valid_apiextensions_v1(helm: Path) -> None:
    crds = of_kind(render(helm, {}), "CustomResourceDefinition")
    assert {crd["metadata"]["name"] for crd in crds} == {
        "databaseschemas.dbkeeper.dev",
        "clusterkopfpeerings.kopf.dev",
        "kopfpeerings.kopf.dev",
    }
    for crd in crds:
        kubernetes_validate.validate(crd, KUBERNETES_VERSION, strict=True)


@value_sets
def test_operator_environment_is_accepted_by_the_settings(
    helm: Path, values: dict[str, Any]
) -> None:
    env = _env(_operator_deployment(render(helm, values)))
    dbkeeper_env = {k: v for k, v in env.items() if k.startswith("DBKEEPER_")}
    settings = Settings.from_env(dbkeeper_env)
    assert settings.namespaces == tuple(values.get("watch", {}).get("namespaces", []))
    container = _operator_deployment(render(helm, values))["spec"]["template"]["spec"]
    ports = {p["name"]: p["containerPort"] for p in container["containers"][0]["ports"]}
    assert ports == {"metrics": settings.metrics_port, "health": settings.health_port}


@pytest.mark.parametrize(
    ("values", "peering"),
    [({}, "dbkeeper"), ({"replicas": 1}, None), ({"replicas": 3, "peering": {"name": "x"}}, "x")],
    ids=["two-replicas", "one-replica", "three-replicas"],
)
def test_peering_is_on_exactly_when_there_is_more_than_one_replica(
    helm: Path, values: dict[str, Any], peering: str | None
) -> None:
    objects = render(helm, values)
    deployment = _operator_deployment(objects)
    assert _env(deployment).get("DBKEEPER_PEERING") == peering
    assert Settings.from_env({"DBKEEPER_PEERING": peering or ""}).peering == peering
    peerings = of_kind(objects, "ClusterKopfPeering")
    assert [p["metadata"]["name"] for p in peerings] == ([peering] if peering else [])
    strategy = deployment["spec"]["strategy"]["type"]
    assert strategy == ("RollingUpdate" if peering else "Recreate")


@pytest.mark.parametrize(
    ("values", "mode"),
    [
        ({}, "auto"),
        ({"operator": {"imageSetMount": "volume"}}, "volume"),
        ({"operator": {"imageSetMount": "copy"}}, "copy"),
    ],
    ids=["default", "volume", "copy"],
)
def test_image_set_mount_value_reaches_the_operator_setting(
    helm: Path, values: dict[str, Any], mode: str
) -> None:
    env = _env(_operator_deployment(render(helm, values)))
    assert env["DBKEEPER_IMAGE_SET_MOUNT"] == mode
    assert Settings.from_env({"DBKEEPER_IMAGE_SET_MOUNT": mode}).image_set_mount == mode


def test_namespaced_peering_objects_are_in_every_watched_namespace(helm: Path) -> None:
    objects = render(helm, VALUE_SETS["namespaced-with-secret-names"])
    peerings = of_kind(objects, "KopfPeering")
    assert sorted(p["metadata"]["namespace"] for p in peerings) == ["billing", "health"]
    assert not of_kind(objects, "ClusterKopfPeering")


def test_probes_use_the_kopf_liveness_endpoint(helm: Path) -> None:
    deployment = _operator_deployment(render(helm, {}))
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "health"}


def test_root_filesystem_is_read_only_with_a_writable_tmp(helm: Path) -> None:
    pod = _operator_deployment(render(helm, {}))["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]


def test_backup_claims_are_mounted_where_the_operator_looks(helm: Path) -> None:
    pod = _operator_deployment(render(helm, VALUE_SETS["backup-claims"]))["spec"]["template"][
        "spec"
    ]
    env = _env({"spec": {"template": {"spec": pod}}})
    mounts = {m["name"]: m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
    claims = {
        v["name"]: v["persistentVolumeClaim"]["claimName"]
        for v in pod["volumes"]
        if "persistentVolumeClaim" in v
    }
    assert claims == {"backup-clinic-backups": "clinic-backups"}
    assert mounts["backup-clinic-backups"] == f"{env['DBKEEPER_BACKUP_DIR']}/clinic-backups"


def test_monitoring_toggles_add_and_remove_their_objects(helm: Path) -> None:
    on = {o["kind"] for o in render(helm, VALUE_SETS["monitoring-on"])}
    off = {o["kind"] for o in render(helm, VALUE_SETS["monitoring-off"])}
    assert {"ServiceMonitor", "PrometheusRule", "ConfigMap", "Service"} <= on
    assert not {"ServiceMonitor", "PrometheusRule", "ConfigMap", "Service"} & off


def test_service_monitor_scrapes_the_metrics_service_keeping_labels(helm: Path) -> None:
    objects = render(helm, VALUE_SETS["monitoring-on"])
    (monitor,) = of_kind(objects, "ServiceMonitor")
    (service,) = of_kind(objects, "Service")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    spec = monitor["spec"]
    selector = spec["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    assert spec["namespaceSelector"] == {"matchNames": [RELEASE_NAMESPACE]}
    (endpoint,) = spec["endpoints"]
    port_names = [p["name"] for p in service["spec"]["ports"]]
    assert endpoint["port"] in port_names
    assert endpoint["path"] == "/metrics"
    assert endpoint["honorLabels"] is True


def test_prometheus_rule_holds_the_rules_file_unchanged(helm: Path) -> None:
    (rule,) = of_kind(render(helm, VALUE_SETS["monitoring-on"]), "PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    rules_file = yaml.safe_load((CHART_DIR / "files" / "prometheus-rules.yaml").read_text())
    assert rule["spec"] == rules_file
    groups = rule["spec"]["groups"]
    assert groups
    assert all(g["name"] and g["rules"] for g in groups)
    assert all("alert" in r and "expr" in r for g in groups for r in g["rules"])
    # The Prometheus templates in the annotations survive helm untouched.
    texts = [json.dumps(r.get("annotations", {})) for g in groups for r in g["rules"]]
    assert any("{{ $labels" in text for text in texts)


def test_dashboard_config_map_holds_the_dashboard_for_the_grafana_sidecar(helm: Path) -> None:
    configmaps = of_kind(render(helm, VALUE_SETS["monitoring-on"]), "ConfigMap")
    (dashboard,) = [c for c in configmaps if c["metadata"]["name"].endswith("-dashboard")]
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    (content,) = dashboard["data"].values()
    expected = json.loads((CHART_DIR / "files" / "grafana-dashboard.json").read_text())
    assert json.loads(content) == expected


def test_network_policy_allows_scrapes_dns_api_server_and_databases(helm: Path) -> None:
    objects = render(helm, VALUE_SETS["network-policy"])
    (policy,) = of_kind(objects, "NetworkPolicy")
    deployment = _operator_deployment(objects)
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    spec = policy["spec"]
    assert spec["podSelector"]["matchLabels"].items() <= pod_labels.items()
    assert sorted(spec["policyTypes"]) == ["Egress", "Ingress"]
    (ingress,) = spec["ingress"]
    assert ingress["ports"] == [{"port": "metrics", "protocol": "TCP"}]
    assert ingress["from"] == VALUE_SETS["network-policy"]["networkPolicy"]["metricsFrom"]
    egress_ports = {p["port"] for rule in spec["egress"] for p in rule["ports"]}
    assert {53, 6443, 5432, 6432} <= egress_ports
    assert not of_kind(render(helm, {}), "NetworkPolicy")


def test_notes_tell_the_user_what_to_do_next(helm: Path) -> None:
    output = run_helm(
        helm,
        "install",
        "keeper",
        str(CHART_DIR),
        "--dry-run=client",
        "--namespace",
        RELEASE_NAMESPACE,
    )
    notes = output.split("NOTES:", 1)[1]
    for step in (
        "rollout status",
        "create secret",
        "kubectl apply",
        "kubectl get dbs",
        "/metrics",
        "dbkeeper.dev/backup-now",
    ):
        assert step in notes


def test_the_audit_signing_key_is_mounted_into_the_operator_only(helm: Path) -> None:
    objects = render(helm, VALUE_SETS["audit-key"])
    deployment = _operator_deployment(objects)
    pod = deployment["spec"]["template"]["spec"]
    env = _env(deployment)
    assert env["DBKEEPER_AUDIT_KEY_FILE"] == "/etc/dbkeeper/audit-key/audit-key.pem"
    assert env["DBKEEPER_AUDIT_SEAL_INTERVAL"] == "5s"
    [volume] = [v for v in pod["volumes"] if v["name"] == "audit-key"]
    assert volume["secret"]["secretName"] == "dbkeeper-audit-key"
    assert volume["secret"]["defaultMode"] == 0o400
    [mount] = [m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "audit-key"]
    assert mount["readOnly"] is True
    # Without a key Secret there is no key file and no checkpoints.
    assert "DBKEEPER_AUDIT_KEY_FILE" not in _env(_operator_deployment(render(helm, {})))

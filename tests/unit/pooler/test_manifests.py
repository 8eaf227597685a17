"""The pooler's Kubernetes objects: valid against the Kubernetes schemas, restricted pods,
TLS Secrets mounted where pgbouncer.ini points."""

from __future__ import annotations

import dataclasses
from typing import Any

import kubernetes_validate
import pytest

from dbkeeper.manifests.pooler import (
    ANNOTATION_CONFIG_HASH,
    ANNOTATION_RESTART_HASH,
    PoolerObjectsInput,
    PoolerTlsSecrets,
    build_pooler_configmap,
    build_pooler_deployment,
    build_pooler_objects,
    build_pooler_secret,
    build_pooler_service,
)
from dbkeeper.pooler.changes import ChangeKind, change_kind
from dbkeeper.pooler.render import UserEntry
from dbkeeper.pooler.settings import DatabaseTarget, PgBouncerSettings, PoolerSettingsError
from tests.integration.chart.pod_security import restricted_violations

PASSWORD = "s3cret-app-password"
OWNER = {
    "apiVersion": "dbkeeper.dev/v1alpha1",
    "kind": "DatabaseSchema",
    "name": "clinic",
    "uid": "0b7c8a8e-3c56-4a53-9f4f-3d1f1f9c2a11",
}


def _input(**settings_changes: Any) -> PoolerObjectsInput:
    settings = PgBouncerSettings(
        databases=(DatabaseTarget("clinic", "clinic-pg.health.svc", 5432, "clinic"),),
        listen_port=6432,
        default_pool_size=20,
        max_client_conn=500,
        max_db_connections=50,
        reserve_pool_size=5,
        admin_users=("dbkeeper_admin",),
    ).updated(settings_changes)
    return PoolerObjectsInput(
        name="clinic-pooler",
        namespace="health",
        owner_reference=OWNER,
        settings=settings,
        users=(UserEntry.from_password("clinic_app", PASSWORD),),
        image="dbkeeper:0.1.0",
        replicas=2,
    )


def _container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers: list[dict[str, Any]] = deployment["spec"]["template"]["spec"]["containers"]
    return containers[0]


@pytest.mark.parametrize("obj", build_pooler_objects(_input()), ids=lambda o: o["kind"])
def test_object_is_valid_for_kubernetes_strictly(obj: dict[str, Any]) -> None:
    kubernetes_validate.validate(obj, "1.30", strict=True)


@pytest.mark.parametrize("obj", build_pooler_objects(_input()), ids=lambda o: o["kind"])
def test_object_is_owned_labelled_and_hashed(obj: dict[str, Any]) -> None:
    meta = obj["metadata"]
    assert meta["ownerReferences"][0]["uid"] == OWNER["uid"]
    assert meta["ownerReferences"][0]["controller"] is True
    assert meta["labels"]["app.kubernetes.io/managed-by"] == "dbkeeper"
    assert len(meta["annotations"][ANNOTATION_CONFIG_HASH]) == 64


def test_pod_security_context_meets_restricted() -> None:
    pod = build_pooler_deployment(_input())["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] > 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False


def test_container_security_context_meets_restricted() -> None:
    context = _container(build_pooler_deployment(_input()))["securityContext"]
    assert context["runAsNonRoot"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert context["seccompProfile"] == {"type": "RuntimeDefault"}
    assert context["readOnlyRootFilesystem"] is True


def test_socket_folder_is_a_writable_empty_dir_and_the_ini_points_at_it() -> None:
    inp = _input()
    deployment = build_pooler_deployment(inp)
    mounts = {m["name"]: m for m in _container(deployment)["volumeMounts"]}
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    assert "emptyDir" in volumes["run"]
    assert not mounts["run"].get("readOnly", False)
    ini = build_pooler_configmap(inp)["data"]["pgbouncer.ini"]
    assert f"unix_socket_dir = {mounts['run']['mountPath']}\n" in ini
    assert f"auth_file = {mounts['auth']['mountPath']}/userlist.txt\n" in ini


def test_pods_run_the_reloading_supervisor_on_the_mounted_ini() -> None:
    deployment = build_pooler_deployment(_input())
    container = _container(deployment)
    ini_path = container["command"][-1]
    assert container["command"] == ["dbkeeper", "pooler", "serve", ini_path]
    config = next(
        v for v in deployment["spec"]["template"]["spec"]["volumes"] if v["name"] == "config"
    )
    mount = next(m for m in container["volumeMounts"] if m["name"] == "config")
    assert config["configMap"]["name"] == build_pooler_configmap(_input())["metadata"]["name"]
    assert (
        ini_path == f"{mount['mountPath']}/{next(iter(build_pooler_configmap(_input())['data']))}"
    )


def test_probes_are_tcp_on_the_pgbouncer_port() -> None:
    container = _container(build_pooler_deployment(_input(listen_port=6500)))
    assert container["ports"][0]["containerPort"] == 6500
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["tcpSocket"]["port"] == container["ports"][0]["name"]


def test_no_plaintext_password_in_configmap_or_secret() -> None:
    inp = _input()
    assert PASSWORD not in str(build_pooler_configmap(inp))
    userlist = build_pooler_secret(inp)["stringData"]["userlist.txt"]
    assert PASSWORD not in userlist
    assert '"clinic_app" "SCRAM-SHA-256$4096:' in userlist


def test_service_exposes_the_listen_port_to_the_pods() -> None:
    inp = _input(listen_port=6500)
    service = build_pooler_service(inp)
    deployment = build_pooler_deployment(inp)
    assert service["spec"]["ports"][0]["port"] == 6500
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]


def test_pool_size_change_changes_the_configmap_hash_but_does_not_roll_pods() -> None:
    before, after = _input(), _input(default_pool_size=40)
    assert change_kind(before.settings, after.settings) is ChangeKind.RELOAD
    cm_hash = (build_pooler_configmap(x)["metadata"]["annotations"] for x in (before, after))
    assert len({h[ANNOTATION_CONFIG_HASH] for h in cm_hash}) == 2
    templates = [build_pooler_deployment(x)["spec"]["template"] for x in (before, after)]
    assert templates[0] == templates[1]


def test_listen_port_change_needs_a_restart_and_rolls_pods() -> None:
    before, after = _input(), _input(listen_port=6500)
    assert change_kind(before.settings, after.settings) is ChangeKind.RESTART
    hashes = {
        build_pooler_deployment(x)["spec"]["template"]["metadata"]["annotations"][
            ANNOTATION_RESTART_HASH
        ]
        for x in (before, after)
    }
    assert len(hashes) == 2


@pytest.mark.parametrize(
    ("changes", "kind"),
    [
        ({}, ChangeKind.NONE),
        ({"reserve_pool_size": 9}, ChangeKind.RELOAD),
        (
            {"databases": [{"alias": "clinic", "host": "b", "port": 5432, "dbname": "clinic"}]},
            ChangeKind.RELOAD,
        ),
        ({"admin_users": ["ops"]}, ChangeKind.RELOAD),
        ({"listen_addr": "10.0.0.1"}, ChangeKind.RESTART),
    ],
)
def test_change_kind(changes: dict[str, Any], kind: ChangeKind) -> None:
    settings = _input().settings
    assert change_kind(settings, settings.updated(changes)) is kind


def test_builder_refuses_an_owner_without_uid() -> None:
    with pytest.raises(ValueError, match="uid"):
        dataclasses.replace(_input(), owner_reference={**OWNER, "uid": ""})


# --- TLS ------------------------------------------------------------------------------

TLS = PoolerTlsSecrets(
    client_certificate="clinic-pooler-cert", client_ca="clinic-client-ca", server_ca="clinic-db-ca"
)


def _tls_input(tls: PoolerTlsSecrets = TLS, **settings_changes: Any) -> PoolerObjectsInput:
    changes = {
        "client_tls_sslmode": "require",
        "server_tls_sslmode": "verify-full",
        **tls.file_settings(),
        **settings_changes,
    }
    return dataclasses.replace(_input(**changes), tls=tls)


def _secret_volumes(deployment: dict[str, Any]) -> dict[str, dict[str, Any]]:
    volumes = deployment["spec"]["template"]["spec"]["volumes"]
    return {v["name"]: v["secret"] for v in volumes if v["name"].startswith("tls-")}


def _ini_settings(inp: PoolerObjectsInput) -> dict[str, str]:
    ini = build_pooler_configmap(inp)["data"]["pgbouncer.ini"]
    return dict(line.split(" = ", 1) for line in ini.splitlines() if " = " in line)


def test_tls_deployment_mounts_exactly_the_named_secrets_where_the_ini_points() -> None:
    inp = _tls_input()
    deployment = build_pooler_deployment(inp)
    volumes = _secret_volumes(deployment)
    assert {v["secretName"] for v in volumes.values()} == {
        "clinic-pooler-cert",
        "clinic-client-ca",
        "clinic-db-ca",
    }
    mounts = {m["name"]: m for m in _container(deployment)["volumeMounts"]}
    mounted_files = {
        f"{mounts[name]['mountPath']}/{item['path']}": (secret["secretName"], item["key"])
        for name, secret in volumes.items()
        for item in secret["items"]
    }
    ini = _ini_settings(inp)
    named = {
        setting: ini[setting]
        for setting in (
            "client_tls_cert_file",
            "client_tls_key_file",
            "client_tls_ca_file",
            "server_tls_ca_file",
        )
    }
    assert mounted_files == {
        named["client_tls_cert_file"]: ("clinic-pooler-cert", "tls.crt"),
        named["client_tls_key_file"]: ("clinic-pooler-cert", "tls.key"),
        named["client_tls_ca_file"]: ("clinic-client-ca", "ca.crt"),
        named["server_tls_ca_file"]: ("clinic-db-ca", "ca.crt"),
    }
    assert (ini["client_tls_sslmode"], ini["server_tls_sslmode"]) == ("require", "verify-full")


def test_tls_secrets_are_mounted_read_only_and_readable_by_the_pod_only() -> None:
    deployment = build_pooler_deployment(_tls_input())
    mounts = {m["name"]: m for m in _container(deployment)["volumeMounts"]}
    for name, secret in _secret_volumes(deployment).items():
        assert mounts[name]["readOnly"] is True
        assert secret["defaultMode"] & 0o137 == 0, oct(secret["defaultMode"])
        assert all("mode" not in item for item in secret["items"])


def test_only_the_secrets_named_are_mounted() -> None:
    server_only = PoolerTlsSecrets(server_ca="clinic-db-ca")
    inp = _tls_input(server_only, client_tls_sslmode="disable")
    volumes = _secret_volumes(build_pooler_deployment(inp))
    assert [v["secretName"] for v in volumes.values()] == ["clinic-db-ca"]
    ini = _ini_settings(inp)
    assert "client_tls_cert_file" not in ini
    assert "client_tls_key_file" not in ini
    assert ini["server_tls_ca_file"].endswith("/ca.crt")


def test_no_tls_secret_means_no_tls_volume_and_no_tls_file_in_the_ini() -> None:
    inp = _input()
    assert _secret_volumes(build_pooler_deployment(inp)) == {}
    assert not any(name.endswith("_file") and "tls" in name for name in _ini_settings(inp))


@pytest.mark.parametrize("obj", build_pooler_objects(_tls_input()), ids=lambda o: o["kind"])
def test_tls_objects_are_valid_for_kubernetes_strictly(obj: dict[str, Any]) -> None:
    kubernetes_validate.validate(obj, "1.30", strict=True)


def test_tls_pods_meet_pod_security_restricted() -> None:
    pod = build_pooler_deployment(_tls_input())["spec"]["template"]["spec"]
    assert _secret_volumes({"spec": {"template": {"spec": pod}}})
    assert restricted_violations(pod) == []


def test_another_certificate_secret_rolls_the_pods_but_keeps_the_ini() -> None:
    before = _tls_input()
    after = _tls_input(dataclasses.replace(TLS, client_certificate="clinic-pooler-cert-2"))
    assert build_pooler_configmap(before) == build_pooler_configmap(after)
    restart_hashes = {
        build_pooler_deployment(x)["spec"]["template"]["metadata"]["annotations"][
            ANNOTATION_RESTART_HASH
        ]
        for x in (before, after)
    }
    config_hashes = {
        build_pooler_deployment(x)["metadata"]["annotations"][ANNOTATION_CONFIG_HASH]
        for x in (before, after)
    }
    assert len(restart_hashes) == 2
    assert len(config_hashes) == 2


def test_a_verifying_mode_without_a_mounted_ca_is_refused_naming_the_setting() -> None:
    inp = dataclasses.replace(_tls_input(), tls=PoolerTlsSecrets(client_certificate="cert"))
    with pytest.raises(PoolerSettingsError, match="server_tls_ca_file"):
        build_pooler_configmap(inp)


@pytest.mark.parametrize("name", ["Upper", "a/b", "x" * 254, "-lead", "has space"])
def test_tls_secret_names_must_be_kubernetes_names(name: str) -> None:
    with pytest.raises(ValueError, match="client_certificate"):
        PoolerTlsSecrets(client_certificate=name)

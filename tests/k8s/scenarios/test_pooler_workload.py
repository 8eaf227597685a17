"""The pooler a DatabaseSchema runs in its cluster: its objects, its pods, its readiness.

On the test control plane with real PostgreSQL. Where a test takes the `kubelet`
fixture, the pooler's pods really run (`dbkeeper pooler serve` → pgbouncer, on the test
node, in its network: the pod's port is a port of 127.0.0.1), so readiness comes from
the pod's probe through the ReplicaSet and Deployment controllers.
"""

from __future__ import annotations

import base64
import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import kubernetes_validate
import psycopg
import pytest

from dbkeeper.local.postgres import free_port
from dbkeeper.pooler.scram import verifier_matches
from tests.integration.security.certificates import make_ca, make_server_cert
from tests.k8s.harness import Cluster
from tests.k8s.pod_runner import PodRunner
from tests.k8s.scenarios.conftest import API_VERSION, KIND, OwnedDatabase, wait_for_phase
from tests.k8s.scenarios.workloads import (
    NAME,
    NAMESPACE,
    POOLER,
    Workload,
    as_sent,
    listening,
    port_taken,
)

POOLER_KINDS = (("v1", "ConfigMap"), ("v1", "Secret"), ("apps/v1", "Deployment"), ("v1", "Service"))
POOLER_PODS = f"app.kubernetes.io/name=pgbouncer,app.kubernetes.io/instance={POOLER}"


def _pooler_objects(workload: Workload) -> list[dict[str, Any]]:
    return [workload.wait_get(api, kind, POOLER) for api, kind in POOLER_KINDS]


def _ready_pods(workload: Workload) -> list[dict[str, Any]]:
    def ready(pod: dict[str, Any]) -> bool:
        conditions = (pod.get("status") or {}).get("conditions") or []
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

    return [p for p in workload.pods(POOLER_PODS) if ready(p)]


def test_enabled_pooler_gets_four_valid_owned_objects_and_no_plaintext_password(
    workload: Workload,
) -> None:
    workload.create(pooler={"enabled": True})
    objects = _pooler_objects(workload)
    resource = workload.cluster.get(API_VERSION, KIND, NAMESPACE, NAME)
    assert resource is not None
    for obj in objects:
        kubernetes_validate.validate(as_sent(obj), "1.30", strict=True)
        owner = obj["metadata"]["ownerReferences"][0]
        assert (owner["uid"], owner["kind"], owner["controller"]) == (
            resource["metadata"]["uid"],
            KIND,
            True,
        )
    password = workload.database.password
    encoded = base64.b64encode(password.encode()).decode()
    for obj in objects:
        text = json.dumps(obj)
        assert password not in text
        assert encoded not in text
    secret = next(o for o in objects if o["kind"] == "Secret")
    lines = base64.b64decode(secret["data"]["userlist.txt"]).decode().splitlines()
    assert lines, "the userlist names the owner"
    assert all(re.fullmatch(r'"[^"]+" "SCRAM-SHA-256\$[^"]+"', line) for line in lines)
    owner_line = next(x for x in lines if x.startswith(f'"{workload.database.username}"'))
    verifier = owner_line.split('" "')[1].rstrip('"')
    assert verifier_matches(password, verifier)
    with psycopg.connect(workload.database.admin.dsn()) as conn:
        stored = conn.execute(
            "SELECT rolpassword FROM pg_authid WHERE rolname = %s", (workload.database.username,)
        ).fetchone()
    assert stored == (verifier,), "PostgreSQL holds the very verifier the pooler has"


def test_the_pooler_pod_serves_the_owner_and_pooler_ready_follows_its_readiness(
    workload: Workload, kubelet: PodRunner
) -> None:
    port = free_port()
    with port_taken(port):
        workload.create(pooler={"enabled": True, "replicas": 1, "port": port})
        waiting = workload.wait_condition("PoolerReady", "False", "PoolerNotReady")
        assert "0/1" in waiting["message"]
        (stuck,) = workload.cluster.wait_for(
            lambda: workload.pods(POOLER_PODS) or None, 60, "the pooler's pod"
        )
        assert not _ready_pods(workload), "a pooler that cannot listen is never ready"

    # The port is free again; pgbouncer does not retry it, so the pod is replaced.
    workload.cluster.delete("v1", "Pod", NAMESPACE, stuck["metadata"]["name"])
    ready = workload.wait_condition("PoolerReady", "True", "PoolerReady", timeout=120)
    assert "1/1" in ready["message"]
    status = workload.status()
    assert status["pooler"]["endpoint"] == f"{POOLER}.{NAMESPACE}.svc:{port}"
    configmap = workload.get("v1", "ConfigMap", POOLER)
    assert configmap is not None
    assert (
        status["pooler"]["configHash"]
        == configmap["metadata"]["annotations"]["dbkeeper.dev/config-hash"]
    )
    # The owner logs in through pgbouncer with the verifier both sides share.
    with workload.pooler_client(port) as client:
        row = client.execute("SELECT current_user, current_database()").fetchone()
    assert row == (workload.database.username, workload.database.conninfo.dbname)

    # Two replicas on one node cannot share the port: one is ready, and the message says so.
    workload.patch_spec({"pooler": {"replicas": 2}})
    workload.cluster.wait_for(
        lambda: "1/2" in (workload.condition("PoolerReady") or {}).get("message", "") or None,
        60,
        "PoolerReady to count 1 of 2 replicas",
    )
    assert workload.condition("PoolerReady")["status"] == "True"  # type: ignore[index]
    assert workload.status()["phase"] == "Ready", "the pooler's readiness is not the phase"


def test_a_pooler_that_stays_unready_past_its_grace_degrades_the_resource_until_it_serves(
    k8s_cluster: Cluster,
    start_dbkeeper: Any,
    owned_database: OwnedDatabase,
    kubelet: PodRunner,
) -> None:
    workload = Workload(k8s_cluster, owned_database)
    port = free_port()
    with start_dbkeeper(pooler_ready_grace=timedelta(seconds=3)):
        with port_taken(port):
            workload.create(pooler={"enabled": True, "replicas": 1, "port": port})
            # The schema is at its target; only the pooler keeps it from Ready.
            workload.wait_condition("SchemaCurrent", "True", "AtTarget")
            degraded = wait_for_phase(k8s_cluster, NAMESPACE, NAME, "Degraded", timeout=90)
            ready = next(c for c in degraded["conditions"] if c["type"] == "Ready")
            assert (ready["status"], ready["reason"]) == ("False", "PoolerNotReady")
            assert "PoolerReady is False" in degraded["message"]
            assert degraded["pooler"]["replicas"] == 1
            assert degraded["pooler"]["readyReplicas"] == 0
            (stuck,) = workload.cluster.wait_for(
                lambda: workload.pods(POOLER_PODS) or None, 60, "the pooler's pod"
            )
        # The port is free again and the pod is replaced: the pooler serves, and the
        # resource is Ready again on its own.
        workload.cluster.delete("v1", "Pod", NAMESPACE, stuck["metadata"]["name"])
        serving = wait_for_phase(k8s_cluster, NAMESPACE, NAME, "Ready", timeout=120)
        assert serving["pooler"]["readyReplicas"] == 1
        assert workload.condition("PoolerReady")["status"] == "True"  # type: ignore[index]


def _hashes(workload: Workload) -> tuple[str, str]:
    configmap = workload.wait_get("v1", "ConfigMap", POOLER)
    deployment = workload.wait_get("apps/v1", "Deployment", POOLER)
    template = deployment["spec"]["template"]["metadata"]["annotations"]
    return configmap["metadata"]["annotations"]["dbkeeper.dev/config-hash"], template[
        "dbkeeper.dev/restart-hash"
    ]


def test_a_pool_size_change_is_reloaded_by_the_running_pod_and_a_port_change_rolls_it(
    workload: Workload, kubelet: PodRunner
) -> None:
    port = free_port()
    workload.create(pooler={"enabled": True, "replicas": 1, "port": port, "defaultPoolSize": 20})
    workload.wait_condition("PoolerReady", "True", "PoolerReady", timeout=90)
    (pod,) = _ready_pods(workload)
    config_hash, restart_hash = _hashes(workload)
    assert workload.pooler_console(port).show_config()["default_pool_size"].value == "20"

    workload.patch_spec({"pooler": {"defaultPoolSize": 30}})
    workload.cluster.wait_for(
        lambda: (
            workload.pooler_console(port).show_config()["default_pool_size"].value == "30" or None
        ),
        60,
        "the running pgbouncer to reload the new pool size from its mounted ConfigMap",
    )
    new_config_hash, same_restart_hash = _hashes(workload)
    assert new_config_hash != config_hash
    assert same_restart_hash == restart_hash, "a pool size is reloaded, not rolled out"
    (same_pod,) = _ready_pods(workload)
    assert same_pod["metadata"]["uid"] == pod["metadata"]["uid"]
    assert same_pod["status"]["containerStatuses"][0]["restartCount"] == 0

    new_port = free_port()
    workload.patch_spec({"pooler": {"port": new_port}})
    workload.cluster.wait_for(
        lambda: (listening(new_port) and not listening(port)) or None,
        120,
        "the rollout to a pod on the new port, and the old pod to be gone",
    )
    assert _hashes(workload)[1] != restart_hash
    with workload.pooler_client(new_port) as client:
        assert client.execute("SELECT 1").fetchone() == (1,)


def test_disabling_the_pooler_deletes_its_objects(workload: Workload) -> None:
    workload.create(pooler={"enabled": True})
    _pooler_objects(workload)
    workload.wait_condition("PoolerReady", "False", "PoolerNotReady")

    workload.patch_spec({"pooler": {"enabled": False}})
    workload.cluster.wait_for(
        lambda: all(workload.get(api, kind, POOLER) is None for api, kind in POOLER_KINDS) or None,
        60,
        "the pooler's objects to be deleted",
    )
    workload.cluster.wait_for(
        lambda: workload.condition("PoolerReady") is None or None,
        60,
        "the PoolerReady condition to go",
    )
    assert "pooler" not in workload.status()


# --- pooler TLS ---------------------------------------------------------------------

POOLER_CERT = "clinic-pooler-cert"


def _tls_secret(cert: Path, key: Path) -> dict[str, Any]:
    def encode(path: Path) -> str:
        return base64.b64encode(path.read_bytes()).decode()

    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": POOLER_CERT, "namespace": NAMESPACE},
        "type": "kubernetes.io/tls",
        "data": {"tls.crt": encode(cert), "tls.key": encode(key)},
    }


def _client_tls_pooler(port: int) -> dict[str, Any]:
    return {
        "enabled": True,
        "replicas": 1,
        "port": port,
        "clientTls": {"sslMode": "require", "certificateSecret": POOLER_CERT},
    }


def test_client_tls_serves_the_certificate_from_the_secret(
    workload: Workload, kubelet: PodRunner, tmp_path: Path
) -> None:
    ca = make_ca(tmp_path / "tls", "clinic-ca")
    server = make_server_cert(tmp_path / "tls", ca, "pooler", "IP:127.0.0.1,DNS:localhost")
    workload.cluster.ensure_namespace(NAMESPACE)
    workload.cluster.create(_tls_secret(server.cert, server.key))
    port = free_port()
    workload.create(pooler=_client_tls_pooler(port))
    deployment = workload.wait_get("apps/v1", "Deployment", POOLER)
    kubernetes_validate.validate(as_sent(deployment), "1.30", strict=True)
    pod = deployment["spec"]["template"]["spec"]
    (volume,) = [v for v in pod["volumes"] if v.get("secret", {}).get("secretName") == POOLER_CERT]
    mount = next(m for m in pod["containers"][0]["volumeMounts"] if m["name"] == volume["name"])
    assert mount["readOnly"] is True
    ini = workload.wait_get("v1", "ConfigMap", POOLER)["data"]["pgbouncer.ini"]
    assert "client_tls_sslmode = require\n" in ini
    for key, setting in (("tls.crt", "client_tls_cert_file"), ("tls.key", "client_tls_key_file")):
        assert f"{setting} = {mount['mountPath']}/{key}\n" in ini

    workload.wait_condition("PoolerReady", "True", "PoolerReady", timeout=90)
    verified = {"sslmode": "verify-full", "sslrootcert": str(ca.cert)}
    with workload.pooler_client(port, **verified) as client:
        assert client.pgconn.ssl_in_use
        assert client.execute("SELECT 1").fetchone() == (1,)
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(workload.pooler_conninfo(port, sslmode="disable").dsn()).close()
    assert server.pem not in json.dumps(workload.status())


def test_a_missing_certificate_secret_is_named_until_it_is_created(
    workload: Workload, tmp_path: Path
) -> None:
    workload.create(pooler=_client_tls_pooler(free_port()))
    missing = workload.wait_condition("PoolerReady", "False", "SecretMissing")
    assert POOLER_CERT in missing["message"]
    assert "clientTls.certificateSecret" in missing["message"]
    assert workload.get("apps/v1", "Deployment", POOLER) is None

    ca = make_ca(tmp_path / "tls", "clinic-ca")
    server = make_server_cert(tmp_path / "tls", ca, "pooler", "IP:127.0.0.1")
    workload.cluster.create(_tls_secret(server.cert, server.key))
    workload.wait_get("apps/v1", "Deployment", POOLER)
    workload.wait_condition("PoolerReady", "False", "PoolerNotReady")

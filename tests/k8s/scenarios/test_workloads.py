"""The pooler and backup workloads a DatabaseSchema runs in its cluster.

Against the emulated API and real PostgreSQL. Nothing runs pods here, so the tests play
the cluster's part: they report a Deployment's ready replicas and a Job's outcome
through the objects' status, as the controllers of a real cluster would.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import kubernetes_validate
import psycopg
import pytest

from dbkeeper import metrics
from dbkeeper.migrate import load_set
from dbkeeper.pooler.scram import verifier_matches
from tests.k8s.harness import Cluster, OperatorRun
from tests.k8s.scenarios.conftest import (
    API_VERSION,
    KIND,
    OwnedDatabase,
    schema_manifest,
    secret_manifest,
    status_of,
    wait_for_phase,
)

# Its pods must run (pooler readiness, Job outcomes): until the test harness runs pods,
# this scenario fakes their status on the emulated API.
pytestmark = pytest.mark.k8s_emulator()

NAMESPACE = "workloads"
NAME = "clinic"
POOLER = f"{NAME}-pooler"
POOLER_KINDS = (("v1", "ConfigMap"), ("v1", "Secret"), ("apps/v1", "Deployment"), ("v1", "Service"))
BACKUP_NOW = "dbkeeper.dev/backup-now"
JOB_LABELS = f"app.kubernetes.io/instance={NAME},app.kubernetes.io/name=dbkeeper"


@pytest.fixture
def operator(start_dbkeeper: Any) -> Iterator[OperatorRun]:
    with start_dbkeeper() as run:
        yield run


def _create(cluster: Cluster, database: OwnedDatabase, **spec: Any) -> None:
    """The resource at the first revision (a short migration: these tests are about
    workloads) with ``spec`` sections added."""
    cluster.ensure_namespace(NAMESPACE)
    cluster.create(secret_manifest(NAMESPACE, "clinic-owner", database.username, database.password))
    manifest = schema_manifest(
        NAMESPACE, NAME, database, "clinic-owner", target=load_set("healthcare").ids[0]
    )
    manifest["spec"].update(spec)
    cluster.create(manifest)


def _patch_spec(cluster: Cluster, spec: dict[str, Any]) -> None:
    cluster.patch(API_VERSION, KIND, NAMESPACE, NAME, {"spec": spec})


def _condition(cluster: Cluster, type_: str) -> dict[str, Any] | None:
    conditions = status_of(cluster, NAMESPACE, NAME).get("conditions") or []
    return next((c for c in conditions if c["type"] == type_), None)


def _wait_condition(
    cluster: Cluster, type_: str, status: str, reason: str, timeout: float = 20
) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        found = _condition(cluster, type_)
        matches = found is not None and (found["status"], found["reason"]) == (status, reason)
        return found if matches else None

    return cluster.wait_for(
        check, timeout, f"{type_} {status}/{reason} (now: {_condition(cluster, type_)})"
    )


def _get(cluster: Cluster, api_version: str, kind: str, name: str) -> dict[str, Any] | None:
    return cluster.get(api_version, kind, NAMESPACE, name)


def _wait_get(cluster: Cluster, api_version: str, kind: str, name: str) -> dict[str, Any]:
    return cluster.wait_for(
        lambda: _get(cluster, api_version, kind, name), 30, f"{kind} {name} to exist"
    )


def _pooler_objects(cluster: Cluster) -> list[dict[str, Any]]:
    return [_wait_get(cluster, api, kind, POOLER) for api, kind in POOLER_KINDS]


def _as_sent(obj: dict[str, Any]) -> dict[str, Any]:
    """The object without what the API server adds, as a client would send it."""
    sent: dict[str, Any] = json.loads(json.dumps(obj))
    sent.pop("status", None)
    for key in ("uid", "resourceVersion", "creationTimestamp", "generation", "managedFields"):
        sent["metadata"].pop(key, None)
    return sent


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- the pooler ---------------------------------------------------------------------


def test_enabled_pooler_gets_four_valid_owned_objects_and_no_plaintext_password(
    k8s_cluster: Cluster, operator: OperatorRun, owned_database: OwnedDatabase
) -> None:
    _create(k8s_cluster, owned_database, pooler={"enabled": True})
    objects = _pooler_objects(k8s_cluster)
    resource = k8s_cluster.get(API_VERSION, KIND, NAMESPACE, NAME)
    assert resource is not None
    for obj in objects:
        kubernetes_validate.validate(_as_sent(obj), "1.30", strict=True)
        owner = obj["metadata"]["ownerReferences"][0]
        assert (owner["uid"], owner["kind"], owner["controller"]) == (
            resource["metadata"]["uid"],
            KIND,
            True,
        )
    password = owned_database.password
    encoded = base64.b64encode(password.encode()).decode()
    for obj in objects:
        text = json.dumps(obj)
        assert password not in text
        assert encoded not in text
    secret = next(o for o in objects if o["kind"] == "Secret")
    userlist = base64.b64decode(secret["data"]["userlist.txt"]).decode()
    lines = userlist.splitlines()
    assert lines, "the userlist names the owner"
    assert all(re.fullmatch(r'"[^"]+" "SCRAM-SHA-256\$[^"]+"', line) for line in lines)
    owner_line = next(line for line in lines if line.startswith(f'"{owned_database.username}"'))
    verifier = owner_line.split('" "')[1].rstrip('"')
    assert verifier_matches(password, verifier)
    with psycopg.connect(owned_database.admin.dsn()) as conn:
        stored = conn.execute(
            "SELECT rolpassword FROM pg_authid WHERE rolname = %s", (owned_database.username,)
        ).fetchone()
    assert stored == (verifier,), "PostgreSQL holds the very verifier the pooler has"


def test_pooler_ready_follows_the_deployments_ready_replicas(
    k8s_cluster: Cluster, operator: OperatorRun, owned_database: OwnedDatabase
) -> None:
    _create(k8s_cluster, owned_database, pooler={"enabled": True, "replicas": 2, "port": 6500})
    _wait_get(k8s_cluster, "apps/v1", "Deployment", POOLER)
    waiting = _wait_condition(k8s_cluster, "PoolerReady", "False", "PoolerNotReady")
    assert "0/2" in waiting["message"]
    wait_for_phase(k8s_cluster, NAMESPACE, NAME, "Ready")

    k8s_cluster.patch(
        "apps/v1",
        "Deployment",
        NAMESPACE,
        POOLER,
        {"status": {"replicas": 2, "readyReplicas": 1}},
        subresource="status",
    )
    ready = _wait_condition(k8s_cluster, "PoolerReady", "True", "PoolerReady")
    assert "1/2" in ready["message"]
    status = status_of(k8s_cluster, NAMESPACE, NAME)
    assert status["pooler"]["endpoint"] == f"{POOLER}.{NAMESPACE}.svc:6500"
    configmap = _get(k8s_cluster, "v1", "ConfigMap", POOLER)
    assert configmap is not None
    assert (
        status["pooler"]["configHash"]
        == configmap["metadata"]["annotations"]["dbkeeper.dev/config-hash"]
    )
    assert status["phase"] == "Ready", "the pooler's readiness does not change the phase"


def _hashes(cluster: Cluster) -> tuple[str, str]:
    configmap = _wait_get(cluster, "v1", "ConfigMap", POOLER)
    deployment = _wait_get(cluster, "apps/v1", "Deployment", POOLER)
    template = deployment["spec"]["template"]["metadata"]["annotations"]
    return configmap["metadata"]["annotations"]["dbkeeper.dev/config-hash"], template[
        "dbkeeper.dev/restart-hash"
    ]


def test_pool_size_change_patches_the_configmap_only_and_a_port_change_rolls_the_pods(
    k8s_cluster: Cluster, operator: OperatorRun, owned_database: OwnedDatabase
) -> None:
    _create(k8s_cluster, owned_database, pooler={"enabled": True, "defaultPoolSize": 20})
    config_hash, restart_hash = _hashes(k8s_cluster)

    _patch_spec(k8s_cluster, {"pooler": {"defaultPoolSize": 30}})
    k8s_cluster.wait_for(
        lambda: _hashes(k8s_cluster)[0] != config_hash or None, 20, "a new config-hash"
    )
    new_config_hash, same_restart_hash = _hashes(k8s_cluster)
    configmap = _get(k8s_cluster, "v1", "ConfigMap", POOLER)
    assert configmap is not None
    assert "default_pool_size = 30\n" in configmap["data"]["pgbouncer.ini"]
    assert same_restart_hash == restart_hash, "a pool size is reloaded, not rolled out"

    _patch_spec(k8s_cluster, {"pooler": {"port": 6600}})
    k8s_cluster.wait_for(
        lambda: _hashes(k8s_cluster)[1] != restart_hash or None, 20, "a new restart-hash"
    )
    assert _hashes(k8s_cluster)[0] != new_config_hash


def test_disabling_the_pooler_deletes_its_objects(
    k8s_cluster: Cluster, operator: OperatorRun, owned_database: OwnedDatabase
) -> None:
    _create(k8s_cluster, owned_database, pooler={"enabled": True})
    _pooler_objects(k8s_cluster)
    _wait_condition(k8s_cluster, "PoolerReady", "False", "PoolerNotReady")

    _patch_spec(k8s_cluster, {"pooler": {"enabled": False}})
    k8s_cluster.wait_for(
        lambda: (
            all(_get(k8s_cluster, api, kind, POOLER) is None for api, kind in POOLER_KINDS) or None
        ),
        20,
        "the pooler's objects to be deleted",
    )
    k8s_cluster.wait_for(
        lambda: _condition(k8s_cluster, "PoolerReady") is None or None,
        20,
        "the PoolerReady condition to go",
    )
    assert "pooler" not in status_of(k8s_cluster, NAMESPACE, NAME)


# --- pooler TLS ---------------------------------------------------------------------

POOLER_CERT = "clinic-pooler-cert"
# Stand-ins: nothing runs pgbouncer here, the operator only checks the keys are present.
FAKE_PEM = "-----BEGIN CERTIFICATE-----\nnot-a-real-certificate\n-----END CERTIFICATE-----\n"


def _tls_secret(name: str) -> dict[str, Any]:
    def encode(text: str) -> str:
        return base64.b64encode(text.encode()).decode()

    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "type": "kubernetes.io/tls",
        "data": {"tls.crt": encode(FAKE_PEM), "tls.key": encode(FAKE_PEM)},
    }


def _client_tls_pooler() -> dict[str, Any]:
    return {
        "enabled": True,
        "replicas": 1,
        "clientTls": {"sslMode": "require", "certificateSecret": POOLER_CERT},
    }


def test_client_tls_mounts_the_certificate_secret_and_readiness_is_reported(
    k8s_cluster: Cluster, operator: OperatorRun, owned_database: OwnedDatabase
) -> None:
    k8s_cluster.ensure_namespace(NAMESPACE)
    k8s_cluster.create(_tls_secret(POOLER_CERT))
    _create(k8s_cluster, owned_database, pooler=_client_tls_pooler())
    deployment = _wait_get(k8s_cluster, "apps/v1", "Deployment", POOLER)
    kubernetes_validate.validate(_as_sent(deployment), "1.30", strict=True)
    pod = deployment["spec"]["template"]["spec"]
    tls_volumes = [
        v for v in pod["volumes"] if v.get("secret", {}).get("secretName") == POOLER_CERT
    ]
    assert len(tls_volumes) == 1
    (volume,) = tls_volumes
    mount = next(m for m in pod["containers"][0]["volumeMounts"] if m["name"] == volume["name"])
    assert mount["readOnly"] is True
    ini = _wait_get(k8s_cluster, "v1", "ConfigMap", POOLER)["data"]["pgbouncer.ini"]
    assert "client_tls_sslmode = require\n" in ini
    for key, setting in (("tls.crt", "client_tls_cert_file"), ("tls.key", "client_tls_key_file")):
        assert f"{setting} = {mount['mountPath']}/{key}\n" in ini
    waiting = _wait_condition(k8s_cluster, "PoolerReady", "False", "PoolerNotReady")
    assert "0/1" in waiting["message"]

    k8s_cluster.patch(
        "apps/v1",
        "Deployment",
        NAMESPACE,
        POOLER,
        {"status": {"replicas": 1, "readyReplicas": 1}},
        subresource="status",
    )
    _wait_condition(k8s_cluster, "PoolerReady", "True", "PoolerReady")
    assert FAKE_PEM not in json.dumps(status_of(k8s_cluster, NAMESPACE, NAME))


def test_a_missing_certificate_secret_is_named_until_it_is_created(
    k8s_cluster: Cluster, operator: OperatorRun, owned_database: OwnedDatabase
) -> None:
    _create(k8s_cluster, owned_database, pooler=_client_tls_pooler())
    missing = _wait_condition(k8s_cluster, "PoolerReady", "False", "SecretMissing")
    assert POOLER_CERT in missing["message"]
    assert "clientTls.certificateSecret" in missing["message"]
    assert _get(k8s_cluster, "apps/v1", "Deployment", POOLER) is None

    k8s_cluster.create(_tls_secret(POOLER_CERT))
    _wait_get(k8s_cluster, "apps/v1", "Deployment", POOLER)
    _wait_condition(k8s_cluster, "PoolerReady", "False", "PoolerNotReady")


# --- backups ------------------------------------------------------------------------


def _backup(**fields: Any) -> dict[str, Any]:
    return {"destination": {"persistentVolumeClaim": {"claimName": "clinic-backups"}}, **fields}


def test_backup_schedules_become_two_valid_cronjobs_and_suspend_is_honoured(
    k8s_cluster: Cluster, operator: OperatorRun, owned_database: OwnedDatabase
) -> None:
    _create(
        k8s_cluster,
        owned_database,
        backup=_backup(schedule="0 2 * * *", verifySchedule="0 4 * * 0"),
    )
    backup = _wait_get(k8s_cluster, "batch/v1", "CronJob", f"{NAME}-backup")
    verify = _wait_get(k8s_cluster, "batch/v1", "CronJob", f"{NAME}-backup-verify")
    for cronjob in (backup, verify):
        kubernetes_validate.validate(_as_sent(cronjob), "1.30", strict=True)
        assert cronjob["spec"]["suspend"] is False
    assert (backup["spec"]["schedule"], verify["spec"]["schedule"]) == ("0 2 * * *", "0 4 * * 0")

    _patch_spec(k8s_cluster, {"backup": {"suspend": True}})
    k8s_cluster.wait_for(
        lambda: (
            _wait_get(k8s_cluster, "batch/v1", "CronJob", f"{NAME}-backup")["spec"]["suspend"]
            or None
        ),
        20,
        "the backup CronJob to be suspended",
    )


def _request_backup(cluster: Cluster, value: str) -> dict[str, Any]:
    cluster.patch(
        API_VERSION, KIND, NAMESPACE, NAME, {"metadata": {"annotations": {BACKUP_NOW: value}}}
    )
    return cluster.wait_for(
        lambda: next(
            iter(cluster.list("batch/v1", "Job", NAMESPACE, label_selector=JOB_LABELS)), None
        ),
        20,
        "the on-demand backup Job",
    )


def _finish_job(cluster: Cluster, job: dict[str, Any], succeeded: bool) -> None:
    now = _now()
    outcome = "Complete" if succeeded else "Failed"
    status: dict[str, Any] = {
        "startTime": now,
        "conditions": [{"type": outcome, "status": "True", "lastTransitionTime": now}],
    }
    if succeeded:
        status.update(succeeded=1, completionTime=now)
    else:
        status.update(failed=2)
    cluster.patch(
        "batch/v1",
        "Job",
        NAMESPACE,
        job["metadata"]["name"],
        {"status": status},
        subresource="status",
    )


def test_backup_now_creates_one_job_whose_success_is_reported(
    k8s_cluster: Cluster, operator: OperatorRun, owned_database: OwnedDatabase
) -> None:
    _create(k8s_cluster, owned_database, backup=_backup(schedule="0 2 * * *"))
    _wait_get(k8s_cluster, "batch/v1", "CronJob", f"{NAME}-backup")
    job = _request_backup(k8s_cluster, "2026-11-25T10:00:00Z")
    kubernetes_validate.validate(_as_sent(job), "1.30", strict=True)
    k8s_cluster.wait_for(
        lambda: (
            status_of(k8s_cluster, NAMESPACE, NAME).get("lastBackupRequest")
            == "2026-11-25T10:00:00Z"
            or None
        ),
        20,
        "the request to be recorded",
    )

    labels = {"namespace": NAMESPACE, "name": NAME}
    metric = "dbkeeper_backup_last_success_timestamp_seconds"
    before = metrics.REGISTRY.get_sample_value(metric, labels)
    _finish_job(k8s_cluster, job, succeeded=True)
    healthy = _wait_condition(k8s_cluster, "BackupHealthy", "True", "BackupSucceeded")
    status = status_of(k8s_cluster, NAMESPACE, NAME)
    assert status["lastBackup"]["id"] == job["metadata"]["name"]
    after = metrics.REGISTRY.get_sample_value(metric, labels)
    assert after is not None
    assert after != before, "the last-backup time metric moved"
    assert status["lastBackup"]["finishedAt"]
    assert job["metadata"]["name"] in healthy["message"]
    jobs = k8s_cluster.list("batch/v1", "Job", NAMESPACE, label_selector=JOB_LABELS)
    assert [j["metadata"]["name"] for j in jobs] == [job["metadata"]["name"]], (
        "passes after the request, with the same annotation value, create no other Job"
    )


def test_a_failed_backup_job_makes_backups_unhealthy_and_is_counted(
    k8s_cluster: Cluster, operator: OperatorRun, owned_database: OwnedDatabase
) -> None:
    _create(k8s_cluster, owned_database, backup=_backup())
    job = _request_backup(k8s_cluster, "first")
    labels = {"namespace": NAMESPACE, "name": NAME}
    before = metrics.REGISTRY.get_sample_value("dbkeeper_backup_failures_total", labels) or 0.0

    _finish_job(k8s_cluster, job, succeeded=False)
    failed = _wait_condition(k8s_cluster, "BackupHealthy", "False", "BackupFailed")
    assert job["metadata"]["name"] in failed["message"]
    assert "lastBackup" not in status_of(k8s_cluster, NAMESPACE, NAME)
    after = metrics.REGISTRY.get_sample_value("dbkeeper_backup_failures_total", labels)
    assert after == before + 1


def test_an_invalid_schedule_is_rejected_and_creates_no_cronjob(
    k8s_cluster: Cluster, operator: OperatorRun, owned_database: OwnedDatabase
) -> None:
    # Five fields, so the CRD's pattern lets it in; minute 61 does not exist.
    _create(k8s_cluster, owned_database, backup=_backup(schedule="61 2 * * *"))
    failed = wait_for_phase(k8s_cluster, NAMESPACE, NAME, "Failed")
    conditions = {c["type"]: c for c in failed["conditions"]}
    assert conditions["SchemaCurrent"]["reason"] == "InvalidSpec"
    assert "schedule" in failed["message"]

    def handled() -> bool | None:
        found = k8s_cluster.get(API_VERSION, KIND, NAMESPACE, NAME) or {}
        annotations = found.get("metadata", {}).get("annotations") or {}
        # kopf records the handled spec once every handler of the cycle has run.
        return (
            "61 2 * * *" in annotations.get("dbkeeper.dev/last-handled-configuration", "") or None
        )

    k8s_cluster.wait_for(handled, 20, "every handler to have seen the spec")
    assert k8s_cluster.list("batch/v1", "CronJob", NAMESPACE) == []
    assert _condition(k8s_cluster, "BackupHealthy") is None

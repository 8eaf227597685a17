"""Backups to a bucket from the resource's own Jobs, on the test control plane.

The bucket is on a real S3 server that checks credentials (``tests.object_storage``);
the keys are in a Secret of the resource's namespace. The operator, running in the test
process, takes the backup before the first migration itself, with the Secret's keys; the
test node runs the backup and drill Jobs' pods (``dbkeeper backup create|verify`` with
``DBKEEPER_BACKUP_DESTINATION=s3://…``, a staging emptyDir, and the keys as Secret
references). No volume claim is involved.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import kubernetes_validate
import psycopg
from psycopg import sql

from dbkeeper.backup.manifest import BackupManifest
from tests.k8s.pod_runner import PodRunner
from tests.k8s.scenarios.conftest import wait_for_phase
from tests.k8s.scenarios.workloads import NAME, NAMESPACE, Workload, as_sent, request_backup
from tests.object_storage.server import Bucket

KEYS_SECRET = "clinic-s3"
PREFIX = "health/clinic"


def _keys_secret(access_key: str, secret_key: str) -> dict[str, Any]:
    def encode(text: str) -> str:
        return base64.b64encode(text.encode()).decode()

    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": KEYS_SECRET, "namespace": NAMESPACE},
        "type": "Opaque",
        "data": {
            "AWS_ACCESS_KEY_ID": encode(access_key),
            "AWS_SECRET_ACCESS_KEY": encode(secret_key),
        },
    }


def _backup_spec(bucket: Bucket, **fields: Any) -> dict[str, Any]:
    return {
        "destination": {
            "s3": {
                "bucket": bucket.name,
                "prefix": PREFIX,
                "endpoint": bucket.endpoint,
                "region": "us-east-1",
                "credentialsSecret": KEYS_SECRET,
                "stagingSizeLimit": "1Gi",
            }
        },
        **fields,
    }


def _grant_createdb(workload: Workload) -> None:
    with psycopg.connect(workload.database.admin.dsn(), autocommit=True) as conn:
        conn.execute(
            sql.SQL("ALTER ROLE {} CREATEDB").format(sql.Identifier(workload.database.username))
        )


def _manifests(bucket: Bucket) -> dict[str, BackupManifest]:
    found = {}
    for obj in bucket.client.list_objects(bucket.name, f"{PREFIX}/", recursive=True):
        name = obj.object_name or ""
        if name.endswith("/manifest.json"):
            response = bucket.client.get_object(bucket.name, name)
            try:
                manifest = BackupManifest.from_json(response.read())
            finally:
                response.close()
                response.release_conn()
            found[manifest.id] = manifest
    return found


def _keys(bucket: Bucket) -> list[str]:
    listing = bucket.client.list_objects(bucket.name, f"{PREFIX}/", recursive=True)
    return sorted(o.object_name or "" for o in listing)


def test_backups_go_to_the_bucket_and_a_drill_restores_from_it(
    workload: Workload, kubelet: PodRunner, s3_auth_bucket: Bucket
) -> None:
    admin = s3_auth_bucket.server.admin
    workload.cluster.ensure_namespace(NAMESPACE)
    workload.cluster.create(_keys_secret(admin.access_key, admin.secret_key))
    _grant_createdb(workload)
    workload.create(backup=_backup_spec(s3_auth_bucket, schedule="0 2 * * *"))
    wait_for_phase(workload.cluster, NAMESPACE, NAME, "Ready", timeout=120)
    # The backup before the first migration, taken by the operator with the Secret's keys.
    (before_move,) = _manifests(s3_auth_bucket).values()
    assert before_move.schema_revision is None

    job = request_backup(workload, "2026-12-02T10:00:00Z")
    kubernetes_validate.validate(as_sent(job), "1.30", strict=True)
    workload.wait_condition("BackupHealthy", "True", "BackupSucceeded", timeout=180)
    assert workload.status()["lastBackup"]["destination"] == f"s3://{s3_auth_bucket.name}/{PREFIX}"
    taken = {m.id: m for m in _manifests(s3_auth_bucket).values() if m.id != before_move.id}
    (backup,) = taken.values()
    assert backup.schema_revision == workload.status()["currentRevision"]
    keys = _keys(s3_auth_bucket)
    assert f"{PREFIX}/{backup.id}/manifest.json" in keys
    assert not any(k.endswith(("/.in-progress", "/.pruning")) or "/.readers/" in k for k in keys)
    for name in backup.files:
        assert f"{PREFIX}/{backup.id}/{name}" in keys

    pod = job["spec"]["template"]["spec"]
    assert not any("persistentVolumeClaim" in v for v in pod["volumes"])
    assert {"name": "staging", "emptyDir": {"sizeLimit": "1Gi"}} in pod["volumes"]
    env = {e["name"]: e for e in pod["containers"][0]["env"]}
    assert env["DBKEEPER_BACKUP_DESTINATION"]["value"] == f"s3://{s3_auth_bucket.name}/{PREFIX}"
    assert env["AWS_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"]["name"] == KEYS_SECRET

    # Every minute, so the CronJob controller starts a drill within a minute.
    workload.patch_spec({"backup": {"verifySchedule": "* * * * *"}})
    verified = workload.wait_condition("RestoreVerified", "True", "RestoreVerified", timeout=240)
    assert f"{NAME}-backup-verify-" in verified["message"]
    assert _manifests(s3_auth_bucket)[backup.id].verify_result == "passed"

    stored = json.dumps(
        [
            *workload.cluster.list("batch/v1", "Job", NAMESPACE),
            *workload.cluster.list("batch/v1", "CronJob", NAMESPACE),
            *workload.cluster.events(NAMESPACE),
            workload.status(),
        ]
    )
    assert admin.secret_key not in stored
    assert admin.access_key not in stored


def test_refused_keys_turn_backups_unhealthy_with_the_reason_and_write_nothing(
    workload: Workload, kubelet: PodRunner, s3_auth_bucket: Bucket
) -> None:
    admin = s3_auth_bucket.server.admin
    workload.cluster.ensure_namespace(NAMESPACE)
    workload.cluster.create(_keys_secret(admin.access_key, "not-the-secret-key"))
    workload.create(backup=_backup_spec(s3_auth_bucket), migrations={"backupBeforeMigrate": False})
    job = request_backup(workload, "first")
    failed = workload.wait_condition("BackupHealthy", "False", "BackupFailed", timeout=180)
    assert job["metadata"]["name"] in failed["message"]
    pods = workload.pods(f"job-name={job['metadata']['name']}")
    messages = [
        c["state"]["terminated"].get("message", "")
        for p in pods
        for c in p["status"]["containerStatuses"]
    ]
    assert any("refused the credentials (SignatureDoesNotMatch)" in m for m in messages), messages
    assert all("not-the-secret-key" not in m for m in messages)
    assert _keys(s3_auth_bucket) == []

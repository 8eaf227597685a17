"""The backup CronJobs and Jobs a DatabaseSchema runs in its cluster.

On the test control plane with real PostgreSQL. Where a test takes the `kubelet`
fixture, the Jobs' pods really run `dbkeeper backup create` / `backup verify` on the test
node, writing to the folder of a hostPath PersistentVolume bound to the resource's claim
by the controller-manager; the Job and CronJob controllers decide the outcomes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import psycopg
from psycopg import sql

from dbkeeper import metrics
from tests.k8s.harness import Cluster
from tests.k8s.pod_runner import PodRunner
from tests.k8s.scenarios.conftest import wait_for_phase
from tests.k8s.scenarios.workloads import (
    BACKUP_JOB_LABELS,
    NAME,
    NAMESPACE,
    Workload,
    as_sent,
    request_backup,
)

CLAIM = "clinic-backups"
POD_USER = 65532  # the pods' runAsUser
DBKEEPER = str(Path(sys.executable).with_name("dbkeeper"))


def _backup(**fields: Any) -> dict[str, Any]:
    return {"destination": {"persistentVolumeClaim": {"claimName": CLAIM}}, **fields}


def _provision(cluster: Cluster, folder: Path, *, writable: bool = True) -> Path:
    """A hostPath PersistentVolume on ``folder`` and the claim of the backups, bound to it
    (as a storage administrator would pre-provision one)."""
    folder.mkdir(parents=True)
    if writable and os.geteuid() == 0:
        os.chown(folder, POD_USER, POD_USER)
    folder.chmod(0o750 if writable else 0o555)
    cluster.ensure_namespace(NAMESPACE)
    volume = f"{NAMESPACE}-{CLAIM}"
    cluster.create(
        {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": volume},
            "spec": {
                "capacity": {"storage": "1Gi"},
                "accessModes": ["ReadWriteOnce"],
                "persistentVolumeReclaimPolicy": "Retain",
                "storageClassName": "manual",
                "hostPath": {"path": str(folder), "type": "Directory"},
                "claimRef": {"namespace": NAMESPACE, "name": CLAIM},
            },
        }
    )
    cluster.create(
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": CLAIM, "namespace": NAMESPACE},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "storageClassName": "manual",
                "volumeName": volume,
                "resources": {"requests": {"storage": "1Gi"}},
            },
        }
    )
    cluster.wait_for(
        lambda: (
            (cluster.get("v1", "PersistentVolumeClaim", NAMESPACE, CLAIM) or {})
            .get("status", {})
            .get("phase")
            == "Bound"
            or None
        ),
        60,
        "the claim to be bound to its volume",
    )
    return folder


def _backups_in(folder: Path) -> dict[str, Any]:
    result = subprocess.run(
        [DBKEEPER, "backup", "list", "--destination", str(folder), "-o", "json"],
        capture_output=True,
        text=True,
        check=True,
    )
    listing: dict[str, Any] = json.loads(result.stdout)
    return listing


def test_backup_schedules_become_two_valid_cronjobs_and_suspend_is_honoured(
    workload: Workload,
) -> None:
    # Drills need CREATEDB; without it the drill CronJob is held suspended.
    with psycopg.connect(workload.database.admin.dsn(), autocommit=True) as conn:
        conn.execute(
            sql.SQL("ALTER ROLE {} CREATEDB").format(sql.Identifier(workload.database.username))
        )
    workload.create(backup=_backup(schedule="0 2 * * *", verifySchedule="0 4 * * 0"))
    backup = workload.wait_get("batch/v1", "CronJob", f"{NAME}-backup")
    verify = workload.wait_get("batch/v1", "CronJob", f"{NAME}-backup-verify")
    for cronjob in (backup, verify):
        kubernetes_validate.validate(as_sent(cronjob), "1.30", strict=True)
        assert cronjob["spec"]["suspend"] is False
    assert (backup["spec"]["schedule"], verify["spec"]["schedule"]) == ("0 2 * * *", "0 4 * * 0")

    workload.patch_spec({"backup": {"suspend": True}})
    workload.cluster.wait_for(
        lambda: (
            workload.wait_get("batch/v1", "CronJob", f"{NAME}-backup")["spec"]["suspend"] or None
        ),
        60,
        "the backup CronJob to be suspended",
    )


def test_backup_now_runs_a_backup_job_and_the_verify_cronjob_proves_it_by_a_restore(
    workload: Workload, kubelet: PodRunner, tmp_path: Path
) -> None:
    folder = _provision(workload.cluster, tmp_path / "backups")
    # A restore drill restores into a scratch database: the owner needs CREATEDB.
    with psycopg.connect(workload.database.admin.dsn(), autocommit=True) as conn:
        conn.execute(
            sql.SQL("ALTER ROLE {} CREATEDB").format(sql.Identifier(workload.database.username))
        )
    # The operator runs in the test process, where the claim is not mounted: no backup of
    # its own before the move (tests/k8s/scenarios/test_backup_before_migrate.py has those).
    workload.create(backup=_backup(schedule="0 2 * * *"), migrations={"backupBeforeMigrate": False})
    workload.wait_get("batch/v1", "CronJob", f"{NAME}-backup")
    wait_for_phase(workload.cluster, NAMESPACE, NAME, "Ready", timeout=60)
    labels = {"namespace": NAMESPACE, "name": NAME}
    metric = "dbkeeper_backup_last_success_timestamp_seconds"
    before = metrics.REGISTRY.get_sample_value(metric, labels)

    job = request_backup(workload, "2026-11-25T10:00:00Z")
    kubernetes_validate.validate(as_sent(job), "1.30", strict=True)
    healthy = workload.wait_condition("BackupHealthy", "True", "BackupSucceeded", timeout=120)
    status = workload.status()
    assert status["lastBackupRequest"] == "2026-11-25T10:00:00Z"
    assert status["lastBackup"]["id"] == job["metadata"]["name"]
    assert status["lastBackup"]["finishedAt"]
    assert status["lastBackup"]["destination"] == f"pvc/{CLAIM}"
    assert job["metadata"]["name"] in healthy["message"]
    after = metrics.REGISTRY.get_sample_value(metric, labels)
    assert after is not None
    assert after != before, "the last-backup time metric moved"
    jobs = workload.cluster.list("batch/v1", "Job", NAMESPACE, label_selector=BACKUP_JOB_LABELS)
    assert [j["metadata"]["name"] for j in jobs] == [job["metadata"]["name"]], (
        "passes after the request, with the same annotation value, create no other Job"
    )
    (taken,) = _backups_in(folder)["backups"]
    assert taken["database"] == workload.database.conninfo.dbname
    assert taken["schema_revision"] == workload.status()["currentRevision"]

    # Every minute, so the CronJob controller starts a drill within a minute.
    workload.patch_spec({"backup": {"verifySchedule": "* * * * *"}})
    verified = workload.wait_condition("RestoreVerified", "True", "RestoreVerified", timeout=180)
    assert f"{NAME}-backup-verify-" in verified["message"]
    (drilled,) = _backups_in(folder)["backups"]
    assert drilled["id"] == taken["id"]
    assert drilled["verify_result"] == "passed", drilled["verify_message"]


def test_drills_are_held_while_the_owner_lacks_createdb_and_resume_once_it_has_it(
    workload: Workload,
) -> None:
    # The owner has no CREATEDB: a drill could not make its scratch database. The
    # operator finds that itself and lets no drill Job start, which would only stop on it.
    # (A drill that runs and passes: test_backup_now_runs_a_backup_job_and_the_verify_...)
    workload.create(
        backup=_backup(schedule="0 2 * * *", verifySchedule="0 4 * * 0"),
        migrations={"backupBeforeMigrate": False},
    )
    held = workload.wait_condition("RestoreVerified", "Unknown", "MissingPrivilege", timeout=60)

    owner = workload.database.username
    assert f"role {owner!r} lacks CREATEDB" in held["message"]
    assert f"ALTER ROLE {owner} CREATEDB" in held["message"]
    verify = workload.wait_get("batch/v1", "CronJob", f"{NAME}-backup-verify")
    assert verify["spec"]["suspend"] is True
    backup = workload.wait_get("batch/v1", "CronJob", f"{NAME}-backup")
    assert backup["spec"]["suspend"] is False, "backups go on"
    labels = {"namespace": NAMESPACE, "name": NAME}
    assert metrics.REGISTRY.get_sample_value("dbkeeper_backup_last_verify_success", labels) is None

    with psycopg.connect(workload.database.admin.dsn(), autocommit=True) as conn:
        conn.execute(sql.SQL("ALTER ROLE {} CREATEDB").format(sql.Identifier(owner)))
    workload.wait_condition("RestoreVerified", "Unknown", "NoDrillYet", timeout=60)

    workload.cluster.wait_for(
        lambda: (
            workload.wait_get("batch/v1", "CronJob", f"{NAME}-backup-verify")["spec"]["suspend"]
            is False
            or None
        ),
        60,
        "the drill CronJob to be resumed",
    )


def test_a_backup_job_that_cannot_write_fails_and_backups_turn_unhealthy(
    workload: Workload, kubelet: PodRunner, tmp_path: Path
) -> None:
    # The volume's folder belongs to root and is read-only for the pods' user.
    folder = _provision(workload.cluster, tmp_path / "backups", writable=False)
    workload.create(backup=_backup())
    labels = {"namespace": NAMESPACE, "name": NAME}
    before = metrics.REGISTRY.get_sample_value("dbkeeper_backup_failures_total", labels) or 0.0

    job = request_backup(workload, "first")
    # backoffLimit 1: the Job controller tries a second pod, 10 s after the first failed.
    failed = workload.wait_condition("BackupHealthy", "False", "BackupFailed", timeout=150)
    assert job["metadata"]["name"] in failed["message"]
    assert "lastBackup" not in workload.status()
    after = metrics.REGISTRY.get_sample_value("dbkeeper_backup_failures_total", labels)
    assert after == before + 1
    pods = workload.pods(f"job-name={job['metadata']['name']}")
    assert len(pods) == 2
    for pod in pods:
        (container,) = pod["status"]["containerStatuses"]
        assert container["state"]["terminated"]["exitCode"] != 0
    assert list(folder.iterdir()) == []


def test_an_invalid_schedule_is_rejected_and_creates_no_cronjob(workload: Workload) -> None:
    # Five fields, so the CRD's pattern lets it in; minute 61 does not exist.
    workload.create(backup=_backup(schedule="61 2 * * *"))
    failed = wait_for_phase(workload.cluster, NAMESPACE, NAME, "Failed")
    conditions = {c["type"]: c for c in failed["conditions"]}
    assert conditions["SchemaCurrent"]["reason"] == "InvalidSpec"
    assert "schedule" in failed["message"]
    assert workload.cluster.list("batch/v1", "CronJob", NAMESPACE) == []
    assert workload.condition("BackupHealthy") is None

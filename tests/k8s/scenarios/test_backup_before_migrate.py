"""Backup before migrate, as the operator does it: no backup, no move."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg

from dbkeeper.migrate import load_set
from tests.k8s.harness import Cluster
from tests.k8s.scenarios.conftest import (
    OwnedDatabase,
    schema_manifest,
    secret_manifest,
    wait_for_phase,
)

NAMESPACE = "safety"


def _with_backup(manifest: dict[str, Any], destination: dict[str, Any]) -> dict[str, Any]:
    manifest["spec"]["backup"] = {"schedule": "0 2 * * *", "destination": destination}
    return manifest


def test_a_backup_is_taken_before_the_move_and_named_in_the_status(
    k8s_cluster: Cluster, start_dbkeeper: Any, owned_database: OwnedDatabase, tmp_path: Path
) -> None:
    folder = tmp_path / "backups"
    folder.mkdir()
    k8s_cluster.ensure_namespace(NAMESPACE)
    k8s_cluster.create(
        secret_manifest(NAMESPACE, "kept-owner", owned_database.username, owned_database.password)
    )
    manifest = _with_backup(
        schema_manifest(NAMESPACE, "kept", owned_database, "kept-owner"),
        {"directory": str(folder)},
    )
    with start_dbkeeper(manage_workloads=False):
        k8s_cluster.create(manifest)
        status = wait_for_phase(k8s_cluster, NAMESPACE, "kept", "Ready", timeout=90)
    backup_id = status["lastMigration"]["backupId"]
    manifest_file = folder / backup_id / "manifest.json"
    assert manifest_file.exists()
    recorded = json.loads(manifest_file.read_text())
    assert recorded["schema_revision"] is None  # taken before the first revision
    with psycopg.connect(owned_database.conninfo.dsn()) as conn:
        rows = conn.execute(
            "SELECT DISTINCT backup_id FROM dbkeeper.migration_history WHERE outcome = 'succeeded'"
        ).fetchall()
    assert rows == [(backup_id,)]
    assert status["currentRevision"] == load_set("healthcare").head


def test_without_access_to_the_backup_claim_the_move_does_not_start(
    k8s_cluster: Cluster, start_dbkeeper: Any, owned_database: OwnedDatabase
) -> None:
    k8s_cluster.ensure_namespace(NAMESPACE)
    k8s_cluster.create(
        secret_manifest(NAMESPACE, "nopvc-owner", owned_database.username, owned_database.password)
    )
    manifest = _with_backup(
        schema_manifest(NAMESPACE, "nopvc", owned_database, "nopvc-owner"),
        {"persistentVolumeClaim": {"claimName": "clinic-backups"}},
    )
    with start_dbkeeper(manage_workloads=False):
        k8s_cluster.create(manifest)
        status = wait_for_phase(k8s_cluster, NAMESPACE, "nopvc", "Pending", timeout=60)

        def refused() -> bool | None:
            current = _conditions(k8s_cluster, "nopvc").get("SchemaCurrent", {})
            return current.get("reason") == "BackupBeforeMigrateFailed" or None

        k8s_cluster.wait_for(refused, 60, "the backup refusal to show")
    conditions = _conditions(k8s_cluster, "nopvc")
    assert "clinic-backups" in conditions["SchemaCurrent"]["message"]
    assert "backupBeforeMigrate" in conditions["SchemaCurrent"]["message"]
    assert status.get("currentRevision") is None
    with psycopg.connect(owned_database.conninfo.dsn()) as conn:
        tables = conn.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
        ).fetchone()
    assert tables == (0,)


def _conditions(cluster: Cluster, name: str) -> dict[str, dict[str, Any]]:
    found = cluster.get("dbkeeper.dev/v1alpha1", "DatabaseSchema", NAMESPACE, name) or {}
    return {c["type"]: c for c in (found.get("status") or {}).get("conditions", [])}

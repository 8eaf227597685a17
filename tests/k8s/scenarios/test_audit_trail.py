"""The operator keeps a sealed audit trail sealed, verified and checkpointed, on the
test control plane and real PostgreSQL; a rewrite turns AuditTrailIntact False."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg

from dbkeeper.audit.checkpoint import generate_key, load_verifying_key, parse, signature_problem
from tests.k8s.harness import Cluster
from tests.k8s.scenarios.conftest import (
    OwnedDatabase,
    event_reasons,
    schema_manifest,
    secret_manifest,
    status_of,
    wait_for_phase,
)

NAMESPACE = "audited"
PATIENTS = (
    "INSERT INTO organizations (identifier, name, kind) VALUES ('ORG-1', 'General', 'hospital');"
    "INSERT INTO patients (organization_id, mrn, given_name, family_name, birth_date, sex) "
    "SELECT 1, 'MRN' || n, 'Ann', 'Lee', date '1975-03-04', 'female' "
    "FROM generate_series(1, 12) n"
)


def _condition(status: dict[str, Any], kind: str) -> dict[str, Any] | None:
    return next((c for c in status.get("conditions", []) if c["type"] == kind), None)


def test_rows_are_sealed_checkpointed_and_a_rewrite_degrades_the_resource(
    k8s_cluster: Cluster, start_dbkeeper: Any, owned_database: OwnedDatabase, tmp_path: Path
) -> None:
    key = tmp_path / "audit-key.pem"
    generate_key(key)
    k8s_cluster.ensure_namespace(NAMESPACE)
    k8s_cluster.create(
        secret_manifest(NAMESPACE, "clinic-owner", owned_database.username, owned_database.password)
    )
    with start_dbkeeper(
        audit_key_file=str(key),
        audit_seal_interval=timedelta(milliseconds=200),
        audit_checkpoint_interval=timedelta(seconds=1),
    ):
        k8s_cluster.create(schema_manifest(NAMESPACE, "clinic", owned_database, "clinic-owner"))
        wait_for_phase(k8s_cluster, NAMESPACE, "clinic", "Ready", timeout=60)
        with psycopg.connect(owned_database.conninfo.dsn(), autocommit=True) as conn:
            conn.execute(PATIENTS)

        def checkpointed() -> dict[str, Any] | None:
            audit = status_of(k8s_cluster, NAMESPACE, "clinic").get("audit") or {}
            checkpoint = audit.get("checkpoint") or {}
            return audit if checkpoint.get("rows") == 12 else None

        audit = k8s_cluster.wait_for(checkpointed, 60, "a checkpoint covering the 12 rows")
        assert audit["sealedRows"] == 12
        checkpoint = parse({"format": "dbkeeper-audit-checkpoint-v1", **audit["checkpoint"]})
        assert signature_problem(checkpoint, load_verifying_key(Path(f"{key}.pub"))) is None
        intact = _condition(status_of(k8s_cluster, NAMESPACE, "clinic"), "AuditTrailIntact")
        assert intact is not None
        assert intact["status"] == "True"

        # A superuser rewrites a sealed row and re-hashes it.
        with (
            psycopg.connect(owned_database.admin.dsn(), autocommit=True) as admin,
            admin.transaction(),
        ):
            admin.execute("ALTER TABLE audit.log DISABLE TRIGGER log_append_only")
            admin.execute(
                "UPDATE audit.log SET actor = 'someone-else', content_hash = "
                "audit.content_hash(id, table_name, row_key, patient_id, action, old_values, "
                "new_values, 'someone-else', txid, occurred_at) "
                "WHERE id = (SELECT min(id) FROM audit.log)"
            )
            admin.execute("ALTER TABLE audit.log ENABLE TRIGGER log_append_only")

        status = wait_for_phase(k8s_cluster, NAMESPACE, "clinic", "Degraded", timeout=60)
    broken = _condition(status, "AuditTrailIntact")
    assert broken is not None
    assert (broken["status"], broken["reason"]) == ("False", "AuditTrailBroken")
    assert "broken at row" in broken["message"]
    assert status["audit"]["checkpoint"] == audit["checkpoint"]  # none signed over it
    assert "AuditTrailBroken" in event_reasons(k8s_cluster, NAMESPACE, "clinic")
    assert owned_database.password not in str(status)

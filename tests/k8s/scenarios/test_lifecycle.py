"""A DatabaseSchema from creation to deletion, against the emulated API and real PostgreSQL."""

from __future__ import annotations

from typing import Any

import psycopg

from dbkeeper.migrate import load_set
from tests.k8s.harness import Cluster
from tests.k8s.scenarios.conftest import (
    API_VERSION,
    KIND,
    OwnedDatabase,
    event_reasons,
    schema_manifest,
    secret_manifest,
    wait_for_phase,
)

NAMESPACE = "health"


def test_create_migrates_to_head_and_reports_ready(
    k8s_cluster: Cluster, start_dbkeeper: Any, owned_database: OwnedDatabase
) -> None:
    head = load_set("healthcare").head
    k8s_cluster.ensure_namespace(NAMESPACE)
    k8s_cluster.create(
        secret_manifest(NAMESPACE, "clinic-owner", owned_database.username, owned_database.password)
    )
    with start_dbkeeper():
        k8s_cluster.create(schema_manifest(NAMESPACE, "clinic", owned_database, "clinic-owner"))
        status = wait_for_phase(k8s_cluster, NAMESPACE, "clinic", "Ready", timeout=60)
    assert status["currentRevision"] == head
    assert status["targetRevision"] == head
    assert status["pendingRevisions"] == []
    assert status["observedGeneration"] == 1
    assert status["lastMigration"]["result"] == "Succeeded"
    assert status["lastMigration"]["to"] == head
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["Ready"]["status"] == "True"
    assert conditions["SchemaCurrent"]["reason"] == "AtTarget"
    reasons = event_reasons(k8s_cluster, NAMESPACE, "clinic")
    assert "MigrationStarted" in reasons
    assert reasons.count("RevisionApplied") == len(load_set("healthcare").ids)
    assert "MigrationSucceeded" in reasons
    with psycopg.connect(owned_database.conninfo.dsn()) as conn:
        (version,) = conn.execute("SELECT version_num FROM alembic_version").fetchone() or ("",)
    assert version == head
    stored = k8s_cluster.get(API_VERSION, KIND, NAMESPACE, "clinic")
    assert stored is not None

"""A DatabaseSchema from creation to deletion, on the test control plane and real PostgreSQL."""

from __future__ import annotations

from typing import Any

import psycopg

from dbkeeper.local.postgres import free_port
from dbkeeper.manifests.pooler import pooler_name
from dbkeeper.migrate import load_set
from tests.k8s.harness import Cluster
from tests.k8s.pod_runner import PodRunner
from tests.k8s.scenarios.conftest import (
    API_VERSION,
    KIND,
    OwnedDatabase,
    event_reasons,
    schema_manifest,
    secret_manifest,
    wait_for_phase,
)
from tests.k8s.scenarios.workloads import listening

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


def _revision_of(database: OwnedDatabase) -> str | None:
    with psycopg.connect(database.conninfo.dsn()) as conn:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    return None if row is None else str(row[0])


def _ready_clinic(k8s_cluster: Cluster, database: OwnedDatabase) -> None:
    k8s_cluster.ensure_namespace(NAMESPACE)
    k8s_cluster.create(
        secret_manifest(NAMESPACE, "clinic-owner", database.username, database.password)
    )
    k8s_cluster.create(schema_manifest(NAMESPACE, "clinic", database, "clinic-owner"))
    wait_for_phase(k8s_cluster, NAMESPACE, "clinic", "Ready", timeout=60)


def test_downgrade_needs_consent_and_then_rolls_back(
    k8s_cluster: Cluster, start_dbkeeper: Any, owned_database: OwnedDatabase
) -> None:
    chain = load_set("healthcare").ids
    head, below = chain[-1], chain[-2]
    with start_dbkeeper():
        _ready_clinic(k8s_cluster, owned_database)
        k8s_cluster.patch(
            API_VERSION,
            KIND,
            NAMESPACE,
            "clinic",
            {"spec": {"migrations": {"targetRevision": below}}},
        )
        failed = wait_for_phase(k8s_cluster, NAMESPACE, "clinic", "Failed")
        assert "allowDowngrade" in failed["message"]
        conditions = {c["type"]: c for c in failed["conditions"]}
        assert conditions["SchemaCurrent"]["reason"] == "DowngradeNotAllowed"
        assert failed["currentRevision"] == head
        assert _revision_of(owned_database) == head  # nothing changed

        k8s_cluster.patch(
            API_VERSION,
            KIND,
            NAMESPACE,
            "clinic",
            {"spec": {"migrations": {"allowDowngrade": True}}},
        )

        def rolled_back_to_below() -> dict[str, Any] | None:
            status = _status(k8s_cluster)
            at_below = status.get("phase") == "Ready" and status.get("currentRevision") == below
            return status if at_below else None

        rolled_back = k8s_cluster.wait_for(rolled_back_to_below, 60, "the rollback to finish")
    assert rolled_back["lastMigration"]["direction"] == "downgrade"
    assert _revision_of(owned_database) == below
    reasons = event_reasons(k8s_cluster, NAMESPACE, "clinic")
    assert "RevisionReverted" in reasons
    assert "RolledBack" in reasons


def _status(k8s_cluster: Cluster) -> dict[str, Any]:
    found = k8s_cluster.get(API_VERSION, KIND, NAMESPACE, "clinic") or {}
    return dict(found.get("status") or {})


def test_delete_with_retain_releases_the_finalizer_and_keeps_schema_and_data(
    k8s_cluster: Cluster, start_dbkeeper: Any, owned_database: OwnedDatabase
) -> None:
    with start_dbkeeper():
        _ready_clinic(k8s_cluster, owned_database)
        stored = k8s_cluster.get(API_VERSION, KIND, NAMESPACE, "clinic")
        assert stored is not None
        assert "dbkeeper.dev/finalizer" in stored["metadata"].get("finalizers", [])
        with psycopg.connect(owned_database.conninfo.dsn(), autocommit=True) as conn:
            conn.execute(
                "INSERT INTO organizations (identifier, name, kind)"
                " VALUES ('ORG-KEPT', 'Kept Clinic', 'clinic')"
            )
        k8s_cluster.delete(API_VERSION, KIND, NAMESPACE, "clinic")
        k8s_cluster.wait_for(
            lambda: k8s_cluster.get(API_VERSION, KIND, NAMESPACE, "clinic") is None or None,
            30,
            "the resource to be gone",
        )
    assert _revision_of(owned_database) == load_set("healthcare").head
    with psycopg.connect(owned_database.conninfo.dsn()) as conn:
        kept = conn.execute("SELECT count(*) FROM organizations WHERE name = 'Kept Clinic'")
        assert kept.fetchone() == (1,)
    assert "Retained" in event_reasons(k8s_cluster, NAMESPACE, "clinic")


def _pooler_objects(k8s_cluster: Cluster) -> dict[str, bool]:
    name = pooler_name("clinic")
    kinds = (("apps/v1", "Deployment"), ("v1", "Service"), ("v1", "ConfigMap"), ("v1", "Secret"))
    return {kind: k8s_cluster.get(api, kind, NAMESPACE, name) is not None for api, kind in kinds}


def _delete_clinic(k8s_cluster: Cluster) -> None:
    k8s_cluster.delete(API_VERSION, KIND, NAMESPACE, "clinic")
    k8s_cluster.wait_for(
        lambda: k8s_cluster.get(API_VERSION, KIND, NAMESPACE, "clinic") is None or None,
        120,
        "the resource to be gone",
    )


def _wait_for_garbage_collection(k8s_cluster: Cluster) -> None:
    """Owned through ownerReferences: the real garbage collector removes the pooler's
    objects, then its ReplicaSet's pods."""
    k8s_cluster.wait_for(
        lambda: not any(_pooler_objects(k8s_cluster).values()) or None,
        120,
        f"the garbage collector to remove the pooler (now: {_pooler_objects(k8s_cluster)})",
    )
    k8s_cluster.wait_for(
        lambda: not k8s_cluster.list("v1", "Pod", NAMESPACE) or None, 120, "its pods to go"
    )


def test_deleting_the_resource_lets_the_garbage_collector_remove_its_pooler(
    k8s_cluster: Cluster, start_dbkeeper: Any, owned_database: OwnedDatabase
) -> None:
    k8s_cluster.ensure_namespace(NAMESPACE)
    k8s_cluster.create(
        secret_manifest(NAMESPACE, "clinic-owner", owned_database.username, owned_database.password)
    )
    manifest = schema_manifest(NAMESPACE, "clinic", owned_database, "clinic-owner")
    manifest["spec"]["pooler"] = {"enabled": True, "replicas": 1}
    with start_dbkeeper():
        k8s_cluster.create(manifest)
        wait_for_phase(k8s_cluster, NAMESPACE, "clinic", "Ready", timeout=90)
        k8s_cluster.wait_for(
            lambda: all(_pooler_objects(k8s_cluster).values()), 60, "the pooler's objects"
        )
        # The controller-manager runs the Deployment: a ReplicaSet and its pod exist
        # (the pod stays Pending: this test runs no node).
        k8s_cluster.wait_for(
            lambda: k8s_cluster.list("v1", "Pod", NAMESPACE), 60, "the pooler's pod"
        )
        _delete_clinic(k8s_cluster)
    _wait_for_garbage_collection(k8s_cluster)
    # deletionPolicy Retain: the database keeps its schema.
    assert _revision_of(owned_database) == load_set("healthcare").head


def test_delete_with_drop_takes_the_schema_to_base_and_the_running_pooler_goes_with_it(
    k8s_cluster: Cluster, kubelet: PodRunner, start_dbkeeper: Any, owned_database: OwnedDatabase
) -> None:
    k8s_cluster.ensure_namespace(NAMESPACE)
    k8s_cluster.create(
        secret_manifest(NAMESPACE, "clinic-owner", owned_database.username, owned_database.password)
    )
    port = free_port()
    manifest = schema_manifest(NAMESPACE, "clinic", owned_database, "clinic-owner")
    manifest["spec"]["deletionPolicy"] = "Drop"
    manifest["spec"]["pooler"] = {"enabled": True, "replicas": 1, "port": port}
    with start_dbkeeper():
        k8s_cluster.create(manifest)
        wait_for_phase(k8s_cluster, NAMESPACE, "clinic", "Ready", timeout=90)
        k8s_cluster.wait_for(lambda: listening(port) or None, 90, "the pooler pod to listen")
        _delete_clinic(k8s_cluster)
    _wait_for_garbage_collection(k8s_cluster)
    assert not listening(port), "the pod's pgbouncer went with it"
    # deletionPolicy Drop: every object of the set is gone, the database itself stays.
    with psycopg.connect(owned_database.conninfo.dsn()) as conn:
        tables = conn.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
            " AND tablename <> 'alembic_version'"
        ).fetchone()
    assert tables == (0,)
    assert "Dropped" in event_reasons(k8s_cluster, NAMESPACE, "clinic")

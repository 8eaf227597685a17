"""Bad input and broken surroundings: reported where users look, healed when fixed."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from dbkeeper.local.postgres import LocalPostgres
from dbkeeper.migrate import load_set
from tests.k8s.harness import ApiError, Cluster
from tests.k8s.scenarios.conftest import (
    API_VERSION,
    KIND,
    OwnedDatabase,
    create_owned_database,
    event_reasons,
    schema_manifest,
    secret_manifest,
    status_of,
    wait_for_phase,
)

NAMESPACE = "errors"


def _tables(database: OwnedDatabase) -> int:
    with psycopg.connect(database.conninfo.dsn()) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', "
            "'information_schema')"
        ).fetchone()
    return int(row[0]) if row else 0


def test_a_spec_the_crd_forbids_is_refused_by_the_api_with_422(k8s_cluster: Cluster) -> None:
    k8s_cluster.ensure_namespace(NAMESPACE)
    manifest: dict[str, Any] = {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": "bad-pool", "namespace": NAMESPACE},
        "spec": {
            "database": {"host": "db", "name": "app", "credentialsSecret": "app-owner"},
            "pooler": {"defaultPoolSize": -3},
        },
    }
    with pytest.raises(ApiError) as refused:
        k8s_cluster.create(manifest)
    assert refused.value.status == 422
    assert any("defaultPoolSize" in cause.get("field", "") for cause in refused.value.causes)
    assert k8s_cluster.get(API_VERSION, KIND, NAMESPACE, "bad-pool") is None


def test_a_spec_only_the_model_forbids_fails_naming_the_field_and_changes_nothing(
    k8s_cluster: Cluster, start_dbkeeper: Any, owned_database: OwnedDatabase
) -> None:
    k8s_cluster.ensure_namespace(NAMESPACE)
    manifest = schema_manifest(NAMESPACE, "crossed", owned_database, "crossed-owner")
    # Each number is allowed by the CRD; together they are impossible.
    manifest["spec"]["pooler"] = {
        "enabled": True,
        "defaultPoolSize": 40,
        "maxDatabaseConnections": 10,
    }
    k8s_cluster.create(
        secret_manifest(
            NAMESPACE, "crossed-owner", owned_database.username, owned_database.password
        )
    )
    with start_dbkeeper():
        k8s_cluster.create(manifest)
        failed = wait_for_phase(k8s_cluster, NAMESPACE, "crossed", "Failed")
    assert "spec.pooler.defaultPoolSize" in failed["message"]
    assert "maxDatabaseConnections" in failed["message"]
    conditions = {c["type"]: c for c in failed["conditions"]}
    assert conditions["Ready"]["reason"] == "InvalidSpec"
    assert "InvalidSpec" in event_reasons(k8s_cluster, NAMESPACE, "crossed")
    assert _tables(owned_database) == 0


def test_a_missing_secret_waits_visibly_and_heals_when_created(
    k8s_cluster: Cluster, start_dbkeeper: Any, owned_database: OwnedDatabase
) -> None:
    k8s_cluster.ensure_namespace(NAMESPACE)
    with start_dbkeeper():
        k8s_cluster.create(schema_manifest(NAMESPACE, "later", owned_database, "later-owner"))
        waiting = wait_for_phase(k8s_cluster, NAMESPACE, "later", "Pending")
        conditions = {c["type"]: c for c in waiting["conditions"]}
        assert conditions["DatabaseReachable"]["reason"] == "SecretMissing"
        assert "later-owner" in conditions["DatabaseReachable"]["message"]
        generation = k8s_cluster.get(API_VERSION, KIND, NAMESPACE, "later")
        assert generation is not None
        k8s_cluster.create(
            secret_manifest(
                NAMESPACE, "later-owner", owned_database.username, owned_database.password
            )
        )
        ready = wait_for_phase(k8s_cluster, NAMESPACE, "later", "Ready", timeout=60)
    assert ready["currentRevision"] == load_set("healthcare").head
    after = k8s_cluster.get(API_VERSION, KIND, NAMESPACE, "later")
    assert after is not None
    assert after["metadata"]["generation"] == generation["metadata"]["generation"]
    assert "SecretMissing" in event_reasons(k8s_cluster, NAMESPACE, "later")


@pytest.fixture
def own_cluster() -> Iterator[LocalPostgres]:
    """A PostgreSQL server of this test alone, so it can be stopped and started."""
    cluster = LocalPostgres(Path(tempfile.mkdtemp(prefix="dbkeeper-stoppable-")))
    cluster.init()
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.destroy()


def test_a_stopped_database_degrades_the_resource_until_it_returns(
    k8s_cluster: Cluster, start_dbkeeper: Any, own_cluster: LocalPostgres
) -> None:
    database = create_owned_database(own_cluster)
    k8s_cluster.ensure_namespace(NAMESPACE)
    k8s_cluster.create(
        secret_manifest(NAMESPACE, "flaky-owner", database.username, database.password)
    )
    with start_dbkeeper():
        k8s_cluster.create(schema_manifest(NAMESPACE, "flaky", database, "flaky-owner"))
        wait_for_phase(k8s_cluster, NAMESPACE, "flaky", "Ready", timeout=60)
        own_cluster.stop()
        degraded = wait_for_phase(k8s_cluster, NAMESPACE, "flaky", "Degraded")
        conditions = {c["type"]: c for c in degraded["conditions"]}
        assert conditions["DatabaseReachable"]["status"] == "False"
        assert conditions["DatabaseReachable"]["reason"] == "DatabaseUnreachable"
        own_cluster.start()
        recovered = wait_for_phase(k8s_cluster, NAMESPACE, "flaky", "Ready")
    assert recovered["currentRevision"] == load_set("healthcare").head
    reasons = event_reasons(k8s_cluster, NAMESPACE, "flaky")
    assert "DatabaseUnreachable" in reasons
    assert "DatabaseRecovered" in reasons


def test_an_unknown_target_revision_fails_without_touching_the_database(
    k8s_cluster: Cluster, start_dbkeeper: Any, owned_database: OwnedDatabase
) -> None:
    k8s_cluster.ensure_namespace(NAMESPACE)
    k8s_cluster.create(
        secret_manifest(NAMESPACE, "typo-owner", owned_database.username, owned_database.password)
    )
    with start_dbkeeper():
        k8s_cluster.create(
            schema_manifest(NAMESPACE, "typo", owned_database, "typo-owner", target="0999")
        )
        failed = wait_for_phase(k8s_cluster, NAMESPACE, "typo", "Failed")
    assert "0999" in failed["message"]
    assert {c["type"]: c for c in failed["conditions"]}["SchemaCurrent"]["reason"] == (
        "UnknownRevision"
    )
    assert _tables(owned_database) == 0
    assert status_of(k8s_cluster, NAMESPACE, "typo").get("currentRevision") is None

"""Many resources at once, and more than one operator: nothing waits on a stranger,
nothing is applied twice."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from dbkeeper.local.postgres import LocalPostgres
from dbkeeper.metrics import REGISTRY
from tests.k8s.harness import Cluster
from tests.k8s.scenarios.conftest import (
    OwnedDatabase,
    create_owned_database,
    schema_manifest,
    secret_manifest,
    status_of,
    wait_for_phase,
)

SETS = Path(__file__).resolve().parents[2] / "fixtures" / "migration_sets"


@pytest.fixture
def fixture_sets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DBKEEPER_MIGRATIONS_DIR", str(SETS))


def _deploy(
    cluster: Cluster, namespace: str, name: str, database: OwnedDatabase, set_name: str
) -> None:
    cluster.ensure_namespace(namespace)
    cluster.create(
        secret_manifest(namespace, f"{name}-owner", database.username, database.password)
    )
    cluster.create(
        schema_manifest(namespace, name, database, f"{name}-owner", migration_set=set_name)
    )


def _applied_rows(database: OwnedDatabase) -> list[tuple[str, str]]:
    with psycopg.connect(database.conninfo.dsn()) as conn:
        rows = conn.execute(
            "SELECT revision, outcome FROM dbkeeper.migration_history"
            " WHERE direction = 'upgrade' ORDER BY id"
        ).fetchall()
    return [(str(r[0]), str(r[1])) for r in rows]


def _open_gate(database: OwnedDatabase) -> None:
    with psycopg.connect(database.conninfo.dsn(), autocommit=True) as conn:
        conn.execute("INSERT INTO public.gate VALUES (true)")


def test_twenty_resources_in_five_namespaces_are_not_held_up_by_a_slow_one(
    k8s_cluster: Cluster, start_dbkeeper: Any, pg_cluster: LocalPostgres, fixture_sets: None
) -> None:
    slow = create_owned_database(pg_cluster)
    with psycopg.connect(slow.conninfo.dsn(), autocommit=True) as conn:
        conn.execute("CREATE TABLE public.gate (open boolean)")
    quick = [create_owned_database(pg_cluster) for _ in range(20)]
    with start_dbkeeper():
        _deploy(k8s_cluster, "team-slow", "backfill", slow, "gated")
        wait_for_phase(k8s_cluster, "team-slow", "backfill", "Migrating", timeout=60)
        started = time.monotonic()
        try:
            for index, database in enumerate(quick):
                _deploy(k8s_cluster, f"team-{index % 5}", f"app-{index}", database, "toy")
            for index in range(20):
                wait_for_phase(
                    k8s_cluster, f"team-{index % 5}", f"app-{index}", "Ready", timeout=120
                )
            quick_done = time.monotonic() - started
            slow_phase_then = status_of(k8s_cluster, "team-slow", "backfill").get("phase")
        finally:
            _open_gate(slow)
        wait_for_phase(k8s_cluster, "team-slow", "backfill", "Ready", timeout=60)
    print(
        f"20 resources Ready {quick_done:.1f}s after creation, while the slow one was "
        f"{slow_phase_then}"
    )
    # The slow migration only ends when the gate opens, after the others were Ready.
    assert slow_phase_then == "Migrating"
    for database in quick:
        assert [r for r, _ in _applied_rows(database)] == ["0001", "0002", "0003", "0004"]
    assert [r for r, _ in _applied_rows(slow)] == ["0001"]


def _successful_passes() -> float:
    return REGISTRY.get_sample_value("dbkeeper_reconcile_total", {"outcome": "success"}) or 0.0


def test_two_operator_replicas_with_peering_apply_each_revision_once(
    k8s_cluster: Cluster, start_dbkeeper: Any, pg_cluster: LocalPostgres, fixture_sets: None
) -> None:
    # The chart (two replicas by default) brings kopf's peering CRDs and the
    # ClusterKopfPeering object both replicas join.
    databases = [create_owned_database(pg_cluster) for _ in range(3)]
    with (
        start_dbkeeper(peering="dbkeeper", priority=10),
        start_dbkeeper(peering="dbkeeper", priority=20),
    ):
        for index, database in enumerate(databases):
            _deploy(k8s_cluster, "ha", f"ha-{index}", database, "toy")
        for index in range(3):
            wait_for_phase(k8s_cluster, "ha", f"ha-{index}", "Ready", timeout=150)
    for database in databases:
        rows = _applied_rows(database)
        assert [r for r, _ in rows] == ["0001", "0002", "0003", "0004"]
        assert {o for _, o in rows} == {"succeeded"}


def _peers(cluster: Cluster) -> dict[str, Any]:
    peering = cluster.get("kopf.dev/v1", "ClusterKopfPeering", None, "dbkeeper") or {}
    return dict(peering.get("status") or {})


def test_two_unpeered_operators_still_never_apply_a_revision_twice(
    k8s_cluster: Cluster, start_dbkeeper: Any, owned_database: OwnedDatabase, fixture_sets: None
) -> None:
    # Without peering both instances handle the resource; the engine's advisory lock
    # is what keeps the database safe.
    before = _successful_passes()
    with start_dbkeeper(), start_dbkeeper():
        _deploy(k8s_cluster, "split", "brain", owned_database, "toy")
        wait_for_phase(k8s_cluster, "split", "brain", "Ready", timeout=60)
        # Both instances have finished a pass over the resource: the slower one too.
        k8s_cluster.wait_for(
            lambda: _successful_passes() - before >= 2, 60, "a finished pass of each instance"
        )
    succeeded = [r for r, o in _applied_rows(owned_database) if o == "succeeded"]
    assert succeeded == ["0001", "0002", "0003", "0004"]

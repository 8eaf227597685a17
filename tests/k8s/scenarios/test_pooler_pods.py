"""The operator reaches the pooler's pods: it PAUSEs them around risky revisions and
exports their pool metrics.

On the test control plane: the pooler pod the operator's Deployment asks for really runs
on the test node (`dbkeeper pooler serve` → pgbouncer on 127.0.0.1 and the resource's
pooler port), and the tests talk to it as clients and through its admin console, which
the rendered configuration opens to the schema owner.
"""

from __future__ import annotations

import copy
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from dbkeeper.local.postgres import free_port
from tests.integration.pooler.conftest import BackgroundQuery
from tests.k8s.harness import Cluster
from tests.k8s.pod_runner import PodRunner
from tests.k8s.scenarios.conftest import API_VERSION, KIND, OwnedDatabase
from tests.k8s.scenarios.workloads import NAME, NAMESPACE, POOLER, Workload

SETS = Path(__file__).resolve().parents[2] / "fixtures" / "migration_sets"


@dataclass(frozen=True)
class PooledSetup:
    """The resource at revision 0001 of ``gated_risky`` with one ready pooler pod."""

    workload: Workload
    port: int
    metrics_port: int

    @property
    def cluster(self) -> Cluster:
        return self.workload.cluster

    @property
    def database(self) -> OwnedDatabase:
        return self.workload.database

    def client(self) -> psycopg.Connection[Any]:
        return self.workload.pooler_client(self.port)

    def paused(self) -> bool:
        alias = self.database.conninfo.dbname
        databases = self.workload.pooler_console(self.port).show_databases()
        return next(db.paused for db in databases if db.name == alias)

    def clients_waiting(self) -> int:
        alias = self.database.conninfo.dbname
        pools = self.workload.pooler_console(self.port).show_pools()
        return sum(p.clients_waiting for p in pools if p.database == alias)


@pytest.fixture
def pooled(
    k8s_cluster: Cluster,
    kubelet: PodRunner,
    start_dbkeeper: Any,
    owned_database: OwnedDatabase,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[PooledSetup]:
    monkeypatch.setenv("DBKEEPER_MIGRATIONS_DIR", str(SETS))
    with psycopg.connect(owned_database.conninfo.dsn(), autocommit=True) as conn:
        conn.execute("CREATE TABLE public.gate (open boolean)")
    metrics_port, port = free_port(), free_port()
    with start_dbkeeper(metrics_port=metrics_port):
        workload = Workload(k8s_cluster, owned_database)
        workload.create(
            migration_set="gated_risky",
            migrations={"target": "0001", "lint": "warn", "pauseRiskyRevisions": True},
            pooler={"enabled": True, "replicas": 1, "port": port},
        )
        workload.wait_condition("PoolerReady", "True", "PoolerReady", timeout=90)
        try:
            yield PooledSetup(workload, port, metrics_port)
        finally:
            _open_gate(owned_database)


def _open_gate(database: OwnedDatabase) -> None:
    with psycopg.connect(database.conninfo.dsn(), autocommit=True) as conn:
        conn.execute("INSERT INTO public.gate VALUES (true)")


def _scrape(port: int, metric: str) -> float | None:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            if sample.name == metric and (labels.get("namespace"), labels.get("name")) == (
                NAMESPACE,
                NAME,
            ):
                return float(sample.value)
    return None


def _at(workload: Workload, revision: str) -> bool:
    status = workload.status()
    return status.get("phase") == "Ready" and status.get("currentRevision") == revision


def _move_to_0002(cluster: Cluster) -> None:
    cluster.patch(
        API_VERSION, KIND, NAMESPACE, NAME, {"spec": {"migrations": {"targetRevision": "0002"}}}
    )


def test_pool_metrics_of_the_ready_pods_are_exported(pooled: PooledSetup) -> None:
    with pooled.client() as first, pooled.client() as second:
        for conn in (first, second):
            assert conn.execute("SELECT 1").fetchone() == (1,)

        pooled.cluster.wait_for(
            lambda: _scrape(pooled.metrics_port, "dbkeeper_pooler_clients_active") == 2 or None,
            30,
            "dbkeeper_pooler_clients_active to count the two clients",
        )
        servers = sum(
            _scrape(pooled.metrics_port, f"dbkeeper_pooler_servers_{state}") or 0.0
            for state in ("active", "idle")
        )
        assert servers >= 1, "the server connection the clients used is counted"
        assert _scrape(pooled.metrics_port, "dbkeeper_pooler_clients_waiting") == 0


def test_a_risky_revision_runs_while_the_pool_is_paused_and_the_pool_is_resumed_after(
    pooled: PooledSetup,
) -> None:
    cluster = pooled.cluster
    with pooled.client() as client:
        assert not pooled.paused()
        _move_to_0002(cluster)

        # 0002 waits for the gate, and only a risky revision is paused around: the pool
        # is paused while 0002 is in progress.
        cluster.wait_for(lambda: pooled.paused() or None, 30, "the pool to be paused")
        query = BackgroundQuery(client, "SELECT 1")
        cluster.wait_for(
            lambda: pooled.clients_waiting() >= 1 or None, 20, "the client's query to wait"
        )
        assert not query.done

        _open_gate(pooled.database)
        cluster.wait_for(
            lambda: _at(pooled.workload, "0002") or None, 60, "the resource to be Ready at 0002"
        )
        assert not pooled.paused(), "the pool is resumed after the move"
        assert query.join(10) == (1,), "the waiting query ran once the pool resumed"


def _report_ready_pod_without_a_console(cluster: Cluster, name: str) -> None:
    """A pod that looks like the pooler's and says it is ready, but nothing answers on its
    port (its image is not one the test node runs; the test reports its status, as a
    node with a broken network would)."""
    deployment = cluster.get("apps/v1", "Deployment", NAMESPACE, POOLER)
    assert deployment is not None
    template = copy.deepcopy(deployment["spec"]["template"])
    # Without the ReplicaSet's pod-template-hash label no ReplicaSet adopts it.
    spec = template["spec"]
    spec["containers"][0]["image"] = "unreachable.example/pgbouncer:0"
    spec["containers"][0]["ports"][0]["containerPort"] = free_port()
    cluster.create(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "namespace": NAMESPACE,
                "labels": template["metadata"]["labels"],
            },
            "spec": spec,
        }
    )
    cluster.patch(
        "v1",
        "Pod",
        NAMESPACE,
        name,
        {
            "status": {
                "phase": "Running",
                "podIP": "127.0.0.1",
                "conditions": [{"type": "Ready", "status": "True"}],
            }
        },
        subresource="status",
    )


def test_a_pod_whose_console_does_not_answer_is_skipped_with_a_warning_and_the_move_goes_on(
    pooled: PooledSetup,
) -> None:
    cluster = pooled.cluster
    silent = f"{POOLER}-silent"
    _report_ready_pod_without_a_console(cluster, silent)
    _move_to_0002(cluster)

    def skipped() -> dict[str, Any] | None:
        events = cluster.events(NAMESPACE, NAME)
        return next((e for e in events if e["reason"] == "PoolerPauseSkipped"), None)

    event = cluster.wait_for(skipped, 60, "a PoolerPauseSkipped event")
    assert event["type"] == "Warning"
    assert silent in event["message"]
    cluster.wait_for(lambda: pooled.paused() or None, 30, "the reachable pod to be paused")
    _open_gate(pooled.database)
    cluster.wait_for(
        lambda: _at(pooled.workload, "0002") or None, 60, "the resource to be Ready at 0002"
    )
    assert not pooled.paused()
    assert pooled.database.password not in event["message"]

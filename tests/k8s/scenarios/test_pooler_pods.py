"""The operator reaches the pooler's pods: it PAUSEs them around risky revisions and
exports their pool metrics.

Nothing runs pods against the emulated API, so the test plays the cluster: a real
pgbouncer runs locally in front of the test's database, and the test creates a Pod
object with the pooler's labels, status Running and Ready, IP 127.0.0.1 and the
pgbouncer's port. Like the pooler the operator renders, that pgbouncer lets the schema
owner into its admin console and holds the verifier the operator derives for the owner.
"""

from __future__ import annotations

import shutil
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from dbkeeper.local.postgres import free_port
from dbkeeper.manifests.pooler import pooler_name
from dbkeeper.pooler.local import LocalPgBouncer
from dbkeeper.pooler.render import UserEntry
from dbkeeper.pooler.scram import scram_verifier
from dbkeeper.pooler.settings import DatabaseTarget, PgBouncerSettings
from dbkeeper.reconcile.pooler_input import verifier_salt
from tests.integration.pooler.conftest import BackgroundQuery, make_temp_dir
from tests.k8s.harness import Cluster
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

SETS = Path(__file__).resolve().parents[2] / "fixtures" / "migration_sets"
NAMESPACE = "pooled"
NAME = "clinic"
POOLER = pooler_name(NAME)


@dataclass(frozen=True)
class PooledSetup:
    """The resource at revision 0001 with one ready pooler pod backed by ``pgbouncer``."""

    cluster: Cluster
    database: OwnedDatabase
    pgbouncer: LocalPgBouncer
    metrics_port: int

    def client(self) -> psycopg.Connection[Any]:
        info = self.pgbouncer.client_conninfo(
            self.database.conninfo.dbname, self.database.username, self.database.password
        )
        return psycopg.connect(info.dsn(), prepare_threshold=None, autocommit=True)

    def paused(self) -> bool:
        alias = self.database.conninfo.dbname
        databases = self.pgbouncer.admin_console().show_databases()
        return next(db.paused for db in databases if db.name == alias)

    def clients_waiting(self) -> int:
        alias = self.database.conninfo.dbname
        pools = self.pgbouncer.admin_console().show_pools()
        return sum(p.clients_waiting for p in pools if p.database == alias)


def _start_pgbouncer(database: OwnedDatabase, folder: Path) -> LocalPgBouncer:
    owner, target = database.username, database.conninfo
    settings = PgBouncerSettings(
        databases=(DatabaseTarget(target.dbname, target.host, target.port, target.dbname),),
        listen_port=free_port(),
        server_tls_sslmode="disable",
        server_login_retry=0.5,
        server_connect_timeout=2.0,
        query_wait_timeout=60.0,
        admin_users=(owner,),
    )
    # The verifier the operator gives the owner, so this pgbouncer can log in as it.
    salt = verifier_salt(NAMESPACE, NAME, owner)
    users = [UserEntry(owner, scram_verifier(database.password, salt=salt))]
    pgbouncer = LocalPgBouncer(folder, settings, users)
    pgbouncer.start()
    return pgbouncer


def _create_ready_pod(cluster: Cluster, port: int, name: str = f"{POOLER}-7d4b9-x2k8q") -> None:
    deployment = cluster.wait_for(
        lambda: cluster.get("apps/v1", "Deployment", NAMESPACE, POOLER), 30, "the pooler"
    )
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    cluster.create(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": NAMESPACE, "labels": labels},
            "spec": {
                "containers": [
                    {
                        "name": "pgbouncer",
                        "image": "dbkeeper:test",
                        "ports": [{"name": "pgbouncer", "containerPort": port}],
                    }
                ]
            },
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


def _wait_verifier_set(cluster: Cluster) -> None:
    # The pooler's Secret is applied only after PostgreSQL holds the owner's verifier.
    cluster.wait_for(
        lambda: cluster.get("v1", "Secret", NAMESPACE, POOLER), 30, "the pooler's Secret"
    )


@pytest.fixture
def pooled(
    k8s_cluster: Cluster,
    start_dbkeeper: Any,
    owned_database: OwnedDatabase,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[PooledSetup]:
    monkeypatch.setenv("DBKEEPER_MIGRATIONS_DIR", str(SETS))
    with psycopg.connect(owned_database.conninfo.dsn(), autocommit=True) as conn:
        conn.execute("CREATE TABLE public.gate (open boolean)")
    folder = make_temp_dir("dbkeeper-test-pooler-pod-")
    pgbouncer = _start_pgbouncer(owned_database, folder)
    metrics_port = free_port()
    try:
        with start_dbkeeper(metrics_port=metrics_port):
            k8s_cluster.ensure_namespace(NAMESPACE)
            k8s_cluster.create(
                secret_manifest(
                    NAMESPACE, "clinic-owner", owned_database.username, owned_database.password
                )
            )
            manifest = schema_manifest(
                NAMESPACE,
                NAME,
                owned_database,
                "clinic-owner",
                migration_set="gated_risky",
                target="0001",
                lint="warn",
                pauseRiskyRevisions=True,
            )
            manifest["spec"]["pooler"] = {"enabled": True, "port": pgbouncer.port}
            k8s_cluster.create(manifest)
            _create_ready_pod(k8s_cluster, pgbouncer.port)
            _wait_verifier_set(k8s_cluster)
            wait_for_phase(k8s_cluster, NAMESPACE, NAME, "Ready")
            try:
                yield PooledSetup(k8s_cluster, owned_database, pgbouncer, metrics_port)
            finally:
                _open_gate(owned_database)
    finally:
        pgbouncer.stop()
        shutil.rmtree(folder, ignore_errors=True)


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


def _at(cluster: Cluster, revision: str) -> bool:
    status = status_of(cluster, NAMESPACE, NAME)
    return status.get("phase") == "Ready" and status.get("currentRevision") == revision


def test_pool_metrics_of_the_ready_pods_are_exported(pooled: PooledSetup) -> None:
    with pooled.client() as first, pooled.client() as second:
        for conn in (first, second):
            assert conn.execute("SELECT 1").fetchone() == (1,)

        pooled.cluster.wait_for(
            lambda: _scrape(pooled.metrics_port, "dbkeeper_pooler_clients_active") == 2 or None,
            20,
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
        cluster.patch(
            API_VERSION, KIND, NAMESPACE, NAME, {"spec": {"migrations": {"targetRevision": "0002"}}}
        )

        # 0002 waits for the gate, and only a risky revision is paused around: the pool
        # is paused while 0002 is in progress.
        cluster.wait_for(lambda: pooled.paused() or None, 20, "the pool to be paused")
        query = BackgroundQuery(client, "SELECT 1")
        cluster.wait_for(
            lambda: pooled.clients_waiting() >= 1 or None, 10, "the client's query to wait"
        )
        assert not query.done

        _open_gate(pooled.database)
        cluster.wait_for(
            lambda: _at(cluster, "0002") or None, 30, "the resource to be Ready at 0002"
        )
        assert not pooled.paused(), "the pool is resumed after the move"
        assert query.join(10) == (1,), "the waiting query ran once the pool resumed"


def test_a_pod_whose_console_does_not_answer_is_skipped_with_a_warning_and_the_move_goes_on(
    pooled: PooledSetup,
) -> None:
    cluster = pooled.cluster
    silent = f"{POOLER}-7d4b9-silent"
    _create_ready_pod(cluster, free_port(), name=silent)  # nothing listens there
    cluster.patch(
        API_VERSION, KIND, NAMESPACE, NAME, {"spec": {"migrations": {"targetRevision": "0002"}}}
    )

    def skipped() -> dict[str, Any] | None:
        events = cluster.events(NAMESPACE, NAME)
        return next((e for e in events if e["reason"] == "PoolerPauseSkipped"), None)

    event = cluster.wait_for(skipped, 20, "a PoolerPauseSkipped event")
    assert event["type"] == "Warning"
    assert silent in event["message"]
    cluster.wait_for(lambda: pooled.paused() or None, 20, "the reachable pod to be paused")
    _open_gate(pooled.database)
    cluster.wait_for(lambda: _at(cluster, "0002") or None, 30, "the resource to be Ready at 0002")
    assert not pooled.paused()
    assert pooled.database.password not in event["message"]

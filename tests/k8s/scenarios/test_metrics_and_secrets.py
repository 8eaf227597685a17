"""What on-call sees: /metrics values that move with reality, and no secret anywhere."""

from __future__ import annotations

import base64
import tempfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from dbkeeper.local.postgres import LocalPostgres, free_port
from dbkeeper.migrate import load_set
from tests.k8s.harness import Cluster
from tests.k8s.scenarios.conftest import (
    API_VERSION,
    KIND,
    create_owned_database,
    schema_manifest,
    secret_manifest,
    wait_for_phase,
)

SETS = Path(__file__).resolve().parents[2] / "fixtures" / "migration_sets"
NAMESPACE = "oncall"


def scrape(port: int) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], metric: str, **labels: str
) -> float | None:
    wanted = set(labels.items())
    for (sample_name, sample_labels), sample_value in samples.items():
        if sample_name == metric and wanted <= set(sample_labels):
            return sample_value
    return None


@pytest.fixture
def own_cluster() -> Iterator[LocalPostgres]:
    cluster = LocalPostgres(Path(tempfile.mkdtemp(prefix="dbkeeper-metrics-")))
    cluster.init()
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.destroy()


def test_metrics_follow_migrations_failures_and_outages(
    k8s_cluster: Cluster,
    start_dbkeeper: Any,
    own_cluster: LocalPostgres,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DBKEEPER_MIGRATIONS_DIR", str(SETS))
    good, bad = create_owned_database(own_cluster), create_owned_database(own_cluster)
    lost = create_owned_database(own_cluster)
    port = free_port()
    k8s_cluster.ensure_namespace(NAMESPACE)
    for name, database in (("good", good), ("bad", bad), ("lost", lost)):
        k8s_cluster.create(
            secret_manifest(NAMESPACE, f"{name}-owner", database.username, database.password)
        )
    with start_dbkeeper(metrics_port=port) as operator:
        k8s_cluster.create(
            schema_manifest(NAMESPACE, "good", good, "good-owner", migration_set="toy")
        )
        k8s_cluster.create(
            schema_manifest(NAMESPACE, "bad", bad, "bad-owner", migration_set="failing")
        )
        # A target that names no revision of the set.
        k8s_cluster.create(
            schema_manifest(
                NAMESPACE, "lost", lost, "lost-owner", migration_set="toy", target="0042"
            )
        )
        wait_for_phase(k8s_cluster, NAMESPACE, "good", "Ready", timeout=60)
        wait_for_phase(k8s_cluster, NAMESPACE, "bad", "Failed", timeout=60)
        wait_for_phase(k8s_cluster, NAMESPACE, "lost", "Failed", timeout=60)
        # The gauges follow the status write, so they may trail what the API shows.
        expected_phases = {"good": "Ready", "bad": "Failed", "lost": "Failed"}

        def phases_published() -> dict[tuple[str, frozenset[tuple[str, str]]], float] | None:
            samples = scrape(port)
            published = all(
                value(samples, "dbkeeper_resource_phase", namespace=NAMESPACE, name=n, phase=p) == 1
                for n, p in expected_phases.items()
            )
            return samples if published else None

        after_migrations = k8s_cluster.wait_for(
            phases_published, 60, "the phase gauges to show good Ready, bad and lost Failed"
        )
        own_cluster.stop()
        wait_for_phase(k8s_cluster, NAMESPACE, "good", "Degraded", timeout=60)

        def database_down() -> dict[tuple[str, frozenset[tuple[str, str]]], float] | None:
            samples = scrape(port)
            up = value(samples, "dbkeeper_database_up", namespace=NAMESPACE, name="good")
            return samples if up == 0 else None

        down = k8s_cluster.wait_for(database_down, 60, "dbkeeper_database_up to drop to 0")
        logs = operator.log_text()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics") as response:
            metrics_text = response.read().decode()
    head = load_set("toy", SETS).head
    assert head is not None
    assert (
        value(
            after_migrations,
            "dbkeeper_schema_revision_info",
            namespace=NAMESPACE,
            name="good",
            current_revision=head,
        )
        == 1
    )
    assert (
        value(
            after_migrations,
            "dbkeeper_schema_revision_info",
            namespace=NAMESPACE,
            name="good",
            migration_set="toy",
            target_revision=head,
        )
        == 1
    ), "the migration_set label names the set the spec chose"
    assert (
        value(
            after_migrations,
            "dbkeeper_resource_phase",
            namespace=NAMESPACE,
            name="good",
            phase="Ready",
        )
        == 1
    )
    # Failed resources are visible to alerts, by phase and by the condition that says why.
    for name in ("bad", "lost"):
        assert (
            value(
                after_migrations,
                "dbkeeper_resource_phase",
                namespace=NAMESPACE,
                name=name,
                phase="Failed",
            )
            == 1
        )
    assert (
        value(
            after_migrations,
            "dbkeeper_resource_condition",
            namespace=NAMESPACE,
            name="lost",
            condition="SchemaCurrent",
            status="False",
            reason="UnknownRevision",
        )
        == 1
    )
    # An unresolvable target is reported as such, never as a downgrade to base.
    assert (
        value(after_migrations, "dbkeeper_schema_target_resolved", namespace=NAMESPACE, name="lost")
        == 0
    )
    assert (
        value(after_migrations, "dbkeeper_schema_target_resolved", namespace=NAMESPACE, name="good")
        == 1
    )
    assert (
        value(
            after_migrations,
            "dbkeeper_schema_revision_info",
            namespace=NAMESPACE,
            name="lost",
            target_revision="base",
        )
        is None
    )
    assert (
        value(
            after_migrations,
            "dbkeeper_schema_revision_info",
            namespace=NAMESPACE,
            name="lost",
            target_revision="",
        )
        == 1
    )
    assert (
        value(
            after_migrations,
            "dbkeeper_migration_failures_total",
            namespace=NAMESPACE,
            name="bad",
            direction="upgrade",
        )
        == 1
    )
    assert (
        value(
            after_migrations,
            "dbkeeper_migration_failures_total",
            namespace=NAMESPACE,
            name="good",
            direction="upgrade",
        )
        == 0
    )
    assert (
        value(down, "dbkeeper_resource_phase", namespace=NAMESPACE, name="good", phase="Degraded")
        == 1
    )
    _assert_no_secret_anywhere(
        k8s_cluster, logs + metrics_text, [good.password, bad.password, lost.password]
    )


def _assert_no_secret_anywhere(cluster: Cluster, logs: str, passwords: list[str]) -> None:
    """No password in the logs, nor in any version of any object but a Secret that the
    API server ever wrote to etcd (status, Events, ConfigMaps, workloads, leases...)."""
    places: list[tuple[str, bytes]] = [("operator logs", logs.encode())]
    stored = cluster.stored_history()
    assert any(key.startswith("/registry/events/") for key, _ in stored), "the scan sees etcd"
    places += [(key, value) for key, value in stored if not key.startswith("/registry/secrets/")]
    for password in passwords:
        forms = (password.encode(), base64.b64encode(password.encode()))
        leaked = sorted({where for where, data in places if any(f in data for f in forms)})
        assert not leaked, f"a password appeared in: {leaked}"


def test_no_password_in_logs_events_status_or_stored_objects_across_a_lifecycle(
    k8s_cluster: Cluster, start_dbkeeper: Any, own_cluster: LocalPostgres
) -> None:
    database = create_owned_database(own_cluster)
    k8s_cluster.ensure_namespace(NAMESPACE)
    k8s_cluster.create(
        secret_manifest(NAMESPACE, "life-owner", database.username, database.password)
    )
    with start_dbkeeper() as operator:
        k8s_cluster.create(schema_manifest(NAMESPACE, "life", database, "life-owner"))
        wait_for_phase(k8s_cluster, NAMESPACE, "life", "Ready", timeout=60)
        # Failures are where secrets tend to leak: a refused downgrade, an outage.
        k8s_cluster.patch(
            API_VERSION, KIND, NAMESPACE, "life", {"spec": {"migrations": {"targetRevision": "-1"}}}
        )
        wait_for_phase(k8s_cluster, NAMESPACE, "life", "Failed")
        k8s_cluster.patch(
            API_VERSION,
            KIND,
            NAMESPACE,
            "life",
            {"spec": {"migrations": {"targetRevision": "head"}}},
        )
        wait_for_phase(k8s_cluster, NAMESPACE, "life", "Ready")
        own_cluster.stop()
        wait_for_phase(k8s_cluster, NAMESPACE, "life", "Degraded")
        own_cluster.start()
        wait_for_phase(k8s_cluster, NAMESPACE, "life", "Ready")
        k8s_cluster.delete(API_VERSION, KIND, NAMESPACE, "life")
        k8s_cluster.wait_for(
            lambda: k8s_cluster.get(API_VERSION, KIND, NAMESPACE, "life") is None or None,
            30,
            "the resource to be gone",
        )
        logs = operator.log_text()
    assert database.password not in logs
    _assert_no_secret_anywhere(k8s_cluster, logs, [database.password])

"""A running /metrics endpoint, a way to scrape it, and sample values for every metric."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from dbkeeper import metrics
from dbkeeper.health import DatabaseHealth, TopQuery
from dbkeeper.pooler.stats import pools_from_rows, stats_from_rows


@pytest.fixture
def metrics_server() -> Iterator[metrics.MetricsServer]:
    server = metrics.start_metrics_server(0, addr="127.0.0.1")
    try:
        yield server
    finally:
        server.stop()


def scrape(server: metrics.MetricsServer) -> list[Sample]:
    """Every sample the endpoint serves, parsed as Prometheus would."""
    url = f"http://127.0.0.1:{server.port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    return [sample for family in text_string_to_metric_families(text) for sample in family.samples]


def record_sample_values(namespace: str, name: str) -> None:
    """Call every recording function once, with every optional value present."""
    now = datetime.now(UTC)
    metrics.record_reconcile("success", 0.12)
    metrics.record_reconcile("permanent_error", 0.5)
    metrics.set_phase(namespace, name, "Ready")
    metrics.set_conditions(
        namespace,
        name,
        [
            metrics.ConditionState("Ready", "True", "Reconciled"),
            metrics.ConditionState("RestoreVerified", "Unknown", "DrillNotRun"),
        ],
    )
    metrics.set_pooler_replicas(namespace, name, 2, 1)
    metrics.set_audit_state(namespace, name, 120, 3, 1.5)
    metrics.set_schema_state(namespace, name, "healthcare", "0004", "0005", 1, 2)
    metrics.observe_migration(namespace, name, "upgrade", "failure", 3.0)
    metrics.observe_migration(namespace, name, "upgrade", "success", 4.0)
    metrics.set_database_health(
        namespace,
        name,
        DatabaseHealth(
            up=True,
            connections_used=12,
            max_connections=100,
            longest_transaction_seconds=3.5,
            cache_hit_ratio=0.97,
            replication_lag_seconds=0.4,
            top_queries=(TopQuery(-4242, 10, 0.08), TopQuery(77, 3, 0.02)),
            statement_calls=1000,
            statement_exec_seconds=12.5,
        ),
    )
    metrics.set_backup_state(
        namespace,
        name,
        metrics.BackupState(
            enabled_since=now - timedelta(days=7),
            interval_seconds=86400.0,
            last_success=now - timedelta(hours=3),
            duration_seconds=42.0,
            size_bytes=123_456_789,
            verify_interval_seconds=604800.0,
            last_verified=now - timedelta(days=1),
            verify_ok=True,
        ),
    )
    metrics.count_backup_failure(namespace, name, now - timedelta(hours=4))
    metrics.set_pool_stats(
        namespace,
        name,
        pools_from_rows(
            [
                {
                    "database": "app",
                    "user": "app",
                    "cl_active": 7,
                    "cl_waiting": 2,
                    "sv_active": 7,
                    "sv_idle": 3,
                    "maxwait": 1,
                    "maxwait_us": 5000,
                }
            ]
        ),
        stats_from_rows([{"database": "app", "avg_wait_time": 15_000, "avg_query_time": 4_000}]),
    )

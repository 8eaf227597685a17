"""The metric-recording API: bounded, validated labels and series that follow the resource."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from dbkeeper import metrics
from dbkeeper.health import DatabaseHealth, TopQuery
from dbkeeper.pooler.stats import pools_from_rows, stats_from_rows

NS = "health"


def _name() -> str:
    # The registry is process-wide: each test owns a resource of its own.
    return f"clinic-{uuid.uuid4().hex[:8]}"


def _value(metric: str, **labels: str) -> float | None:
    return metrics.REGISTRY.get_sample_value(metric, labels)


def _series(metric: str, name: str) -> list[dict[str, str]]:
    return [
        sample.labels
        for family in metrics.REGISTRY.collect()
        for sample in family.samples
        if sample.name == metric and sample.labels.get("name") == name
    ]


def _dbkeeper_series() -> list[str]:
    """The exposition without the process's own CPU and memory, which change by themselves."""
    return [
        line
        for line in metrics.render_latest().decode().splitlines()
        if not line.startswith(("#", "dbkeeper_process_"))
    ]


def test_revision_info_keeps_one_series_per_resource() -> None:
    name = _name()
    metrics.set_schema_state(NS, name, "healthcare", None, "head", 5, 0)
    metrics.set_schema_state(NS, name, "healthcare", "0003", "head", 2, 0)
    metrics.set_schema_state(NS, name, "healthcare", "0005", "0005", 0, 0)
    series = _series("dbkeeper_schema_revision_info", name)
    assert series == [
        {
            "namespace": NS,
            "name": name,
            "migration_set": "healthcare",
            "current_revision": "0005",
            "target_revision": "0005",
        }
    ]


def test_an_unresolvable_target_is_not_published_as_base() -> None:
    name = _name()
    metrics.set_schema_state(NS, name, "healthcare", "0003", "base", 0, 0)
    assert _value("dbkeeper_schema_target_resolved", namespace=NS, name=name) == 1
    metrics.set_schema_state(NS, name, "healthcare", "0003", "base", 0, 0, target_resolved=False)
    assert _value("dbkeeper_schema_target_resolved", namespace=NS, name=name) == 0
    (series,) = _series("dbkeeper_schema_revision_info", name)
    assert series["target_revision"] == ""


def test_conditions_are_one_series_each_and_replaced_when_they_change() -> None:
    name = _name()
    metrics.set_conditions(
        NS,
        name,
        [
            metrics.ConditionState("Ready", "False", "PoolerNotReady"),
            metrics.ConditionState("PoolerReady", "False", "PoolerNotReady"),
        ],
    )
    metrics.set_conditions(
        NS,
        name,
        [
            metrics.ConditionState("Ready", "True", "Reconciled"),
            metrics.ConditionState("PoolerReady", "True", "PoolerReady"),
        ],
    )
    assert sorted(
        (s["condition"], s["status"], s["reason"])
        for s in _series("dbkeeper_resource_condition", name)
    ) == [("PoolerReady", "True", "PoolerReady"), ("Ready", "True", "Reconciled")]


def test_pooler_replicas_are_absent_without_a_pooler() -> None:
    name = _name()
    metrics.set_pooler_replicas(NS, name, 2, 1)
    assert _value("dbkeeper_pooler_replicas", namespace=NS, name=name) == 2
    assert _value("dbkeeper_pooler_ready_replicas", namespace=NS, name=name) == 1
    metrics.set_pooler_replicas(NS, name, None, None)
    assert _value("dbkeeper_pooler_replicas", namespace=NS, name=name) is None
    assert _value("dbkeeper_pooler_ready_replicas", namespace=NS, name=name) is None


def test_schema_state_starts_failure_counters_at_zero() -> None:
    name = _name()
    metrics.set_schema_state(NS, name, "healthcare", None, "head", 5, 0)
    for direction in metrics.MIGRATION_DIRECTIONS:
        labels = {"namespace": NS, "name": name, "direction": direction}
        assert _value("dbkeeper_migration_failures_total", **labels) == 0


def test_failed_migration_counts_and_flags_until_one_succeeds() -> None:
    name = _name()
    metrics.observe_migration(NS, name, "upgrade", "failure", 1.5)
    assert (
        _value("dbkeeper_migration_failures_total", namespace=NS, name=name, direction="upgrade")
        == 1
    )
    assert _value("dbkeeper_migration_last_failed", namespace=NS, name=name) == 1
    metrics.observe_migration(NS, name, "upgrade", "success", 2.0)
    assert _value("dbkeeper_migration_last_failed", namespace=NS, name=name) == 0
    count = _value(
        "dbkeeper_migration_duration_seconds_count",
        namespace=NS,
        name=name,
        direction="upgrade",
        outcome="success",
    )
    assert count == 1


def test_unknown_health_numbers_are_absent_not_zero() -> None:
    name = _name()
    healthy = DatabaseHealth(
        up=True,
        connections_used=4,
        max_connections=100,
        longest_transaction_seconds=0.0,
        cache_hit_ratio=0.98,
        replication_lag_seconds=1.5,
    )
    metrics.set_database_health(NS, name, healthy)
    metrics.set_database_health(NS, name, DatabaseHealth.down("connection refused"))
    assert _value("dbkeeper_database_up", namespace=NS, name=name) == 0
    for metric in (
        "dbkeeper_database_connections",
        "dbkeeper_database_cache_hit_ratio",
        "dbkeeper_database_replication_lag_seconds",
    ):
        assert _value(metric, namespace=NS, name=name) is None, metric


def test_top_queries_are_replaced_not_accumulated() -> None:
    name = _name()
    first = DatabaseHealth(up=True, top_queries=(TopQuery(11, 3, 0.2), TopQuery(-22, 5, 0.1)))
    second = DatabaseHealth(up=True, top_queries=(TopQuery(33, 1, 0.4),))
    metrics.set_database_health(NS, name, first)
    metrics.set_database_health(NS, name, second)
    ids = {s["queryid"] for s in _series("dbkeeper_database_top_query_mean_seconds", name)}
    assert ids == {"33"}


def test_pool_counts_are_summed_and_waits_are_the_worst() -> None:
    name = _name()
    pools = pools_from_rows(
        [
            {
                "database": "clinic",
                "user": "app",
                "cl_active": 3,
                "cl_waiting": 1,
                "sv_active": 3,
                "sv_idle": 2,
                "maxwait": 0,
                "maxwait_us": 200_000,
            },
            {
                "database": "clinic",
                "user": "ro",
                "cl_active": 5,
                "cl_waiting": 4,
                "sv_active": 5,
                "sv_idle": 0,
                "maxwait": 2,
                "maxwait_us": 0,
            },
        ]
    )
    traffic = stats_from_rows(
        [{"database": "clinic", "avg_wait_time": 300_000, "avg_query_time": 4_000}]
    )
    metrics.set_pool_stats(NS, name, pools, traffic)
    assert _value("dbkeeper_pooler_clients_waiting", namespace=NS, name=name) == 5
    assert _value("dbkeeper_pooler_servers_active", namespace=NS, name=name) == 8
    assert _value("dbkeeper_pooler_max_wait_seconds", namespace=NS, name=name) == 2.0
    assert _value("dbkeeper_pooler_average_wait_seconds", namespace=NS, name=name) == 0.3


def test_no_pooler_removes_the_pooler_series() -> None:
    name = _name()
    metrics.set_pool_stats(NS, name, [])
    assert _value("dbkeeper_pooler_clients_waiting", namespace=NS, name=name) == 0
    metrics.set_pool_stats(NS, name, None)
    assert _value("dbkeeper_pooler_clients_waiting", namespace=NS, name=name) is None


def test_backup_failure_sets_the_failure_time() -> None:
    name = _name()
    at = datetime(2026, 11, 3, 2, 0, tzinfo=UTC)
    metrics.set_backup_state(NS, name, metrics.BackupState(at - timedelta(days=3), 86400.0))
    metrics.count_backup_failure(NS, name, at)
    assert _value("dbkeeper_backup_failures_total", namespace=NS, name=name) == 1
    assert _value("dbkeeper_backup_last_failure_timestamp_seconds", namespace=NS, name=name) == (
        at.timestamp()
    )


def test_forget_resource_drops_every_series_of_it() -> None:
    name, other = _name(), _name()
    for each in (name, other):
        metrics.set_phase(NS, each, "Ready")
        metrics.set_schema_state(NS, each, "healthcare", "0005", "head", 0, 0)
        metrics.set_database_health(
            NS, each, DatabaseHealth(up=True, statement_calls=1, statement_exec_seconds=0.1)
        )
        metrics.set_pool_stats(NS, each, [])
    metrics.forget_resource(NS, name)
    text = metrics.render_latest().decode()
    assert f'name="{name}"' not in text
    assert f'name="{other}"' in text


@pytest.mark.parametrize(
    "call",
    [
        lambda: metrics.set_schema_state(NS, "Clinic DB", "healthcare", None, "head", 0, 0),
        lambda: metrics.set_schema_state(
            NS, "clinic", "healthcare", "password=hunter2", "head", 0, 0
        ),
        lambda: metrics.set_schema_state(
            NS, "clinic", "SELECT * FROM patients", None, "head", 0, 0
        ),
        lambda: metrics.set_schema_state("health ns", "clinic", "healthcare", None, "head", 0, 0),
        lambda: metrics.observe_migration(NS, "clinic", "sideways", "success", 1.0),
        lambda: metrics.observe_migration(NS, "clinic", "upgrade", "it broke: disk full", 1.0),
        lambda: metrics.record_reconcile("error: connection to postgres://u:pw@h failed", 0.1),
        lambda: metrics.set_phase(NS, "clinic", "Exploded"),
        lambda: metrics.set_conditions(
            NS, "clinic", [metrics.ConditionState("Ready", "False", "could not connect: pw")]
        ),
        lambda: metrics.set_conditions(
            NS, "clinic", [metrics.ConditionState("Ready", "Maybe", "Reconciled")]
        ),
    ],
)
def test_free_text_never_becomes_a_label(call: Callable[[], None]) -> None:
    before = _dbkeeper_series()
    with pytest.raises(ValueError, match=r"allowed|invalid"):
        call()
    assert _dbkeeper_series() == before


def test_naive_timestamps_are_refused() -> None:
    state = metrics.BackupState(enabled_since=datetime(2026, 1, 1), interval_seconds=3600.0)
    with pytest.raises(ValueError, match="timezone-aware"):
        metrics.set_backup_state(NS, _name(), state)


def test_error_names_what_is_allowed() -> None:
    with pytest.raises(ValueError, match="success, temporary_error, permanent_error"):
        metrics.record_reconcile("ok", 0.1)

"""Every Prometheus metric dbkeeper exports, and the typed calls that set them.

All metrics live on one dedicated registry (:data:`REGISTRY`) so the operator's
``/metrics`` shows dbkeeper's series and nothing a library registered by accident.
The operator never touches a metric object directly; it calls the ``record_*``,
``set_*``, ``observe_*`` and ``count_*`` functions below, which validate every label
value. Labels are the resource's namespace and name plus small closed sets (outcome,
direction, phase) and identifiers that match strict patterns (revisions, migration set,
query id): never free text, never a connection string, never a password.

The names, labels and meaning of each metric are listed in docs/metrics.md; the alert
rules and the Grafana dashboard in charts/dbkeeper/files use only these names.
"""

from __future__ import annotations

import platform
import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
    start_http_server,
)
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from dbkeeper import __version__
from dbkeeper.health.probe import DatabaseHealth

# `_created` series double the series count and nothing here reads them.
disable_created_metrics()  # type: ignore[no-untyped-call]
REGISTRY = CollectorRegistry()

RECONCILE_OUTCOMES = ("success", "temporary_error", "permanent_error", "error")
MIGRATION_DIRECTIONS = ("upgrade", "downgrade")
MIGRATION_OUTCOMES = ("success", "failure")
PHASES = ("Pending", "Migrating", "Ready", "Degraded", "Failed")

_RESOURCE = ("namespace", "name")

# Kubernetes names: a namespace is a DNS-1123 label, an object name a DNS-1123 subdomain.
_NAMESPACE = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_NAME = re.compile(r"[a-z0-9]([-.a-z0-9]{0,251}[a-z0-9])?")
_MIGRATION_SET = re.compile(r"[a-z0-9][-_.a-z0-9]{0,62}")
_REVISION = re.compile(r"[A-Za-z0-9][-_.+A-Za-z0-9]{0,127}")
# Condition types and reasons are CamelCase words from closed sets (dbkeeper.api).
_CAMEL = re.compile(r"[A-Z][A-Za-z0-9]{0,63}")
CONDITION_STATUSES = ("True", "False", "Unknown")

# Migrations range from sub-second DDL to long backfills; buckets cover both ends.
_MIGRATION_BUCKETS = (0.1, 0.5, 1, 5, 15, 30, 60, 120, 300, 900, 1800, 3600, 7200)
_RECONCILE_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)

# --- operator -----------------------------------------------------------------------

OPERATOR_INFO = Info(
    "dbkeeper_operator", "The running dbkeeper operator's build.", registry=REGISTRY
)
OPERATOR_INFO.info({"version": __version__, "python_version": platform.python_version()})
ProcessCollector(namespace="dbkeeper", registry=REGISTRY)

RECONCILES = Counter(
    "dbkeeper_reconcile_total",
    "Reconciliations of DatabaseSchema resources, by outcome.",
    ["outcome"],
    registry=REGISTRY,
)
RECONCILE_DURATION = Histogram(
    "dbkeeper_reconcile_duration_seconds",
    "Time one reconciliation took, by outcome.",
    ["outcome"],
    buckets=_RECONCILE_BUCKETS,
    registry=REGISTRY,
)
for _outcome in RECONCILE_OUTCOMES:
    # Present from the start so rate() and increase() see the first event too.
    RECONCILES.labels(_outcome)
    RECONCILE_DURATION.labels(_outcome)

RESOURCE_PHASE = Gauge(
    "dbkeeper_resource_phase",
    "1 for the phase the resource is in, 0 for the others.",
    [*_RESOURCE, "phase"],
    registry=REGISTRY,
)
RESOURCE_CONDITION = Gauge(
    "dbkeeper_resource_condition",
    "Always 1; one series per condition of the resource's status, its labels the"
    " condition type, its status (True, False, Unknown) and its reason.",
    [*_RESOURCE, "condition", "status", "reason"],
    registry=REGISTRY,
)

# --- audit trail ----------------------------------------------------------------------

AUDIT_SEALED_ROWS = Gauge(
    "dbkeeper_audit_sealed_rows",
    "Audit rows sealed into the chain so far.",
    _RESOURCE,
    registry=REGISTRY,
)
AUDIT_UNSEALED_ROWS = Gauge(
    "dbkeeper_audit_unsealed_rows",
    "Committed audit rows not sealed yet, as last observed.",
    _RESOURCE,
    registry=REGISTRY,
)
AUDIT_OLDEST_UNSEALED = Gauge(
    "dbkeeper_audit_oldest_unsealed_seconds",
    "Age of the oldest committed audit row not sealed yet (0 when all are sealed).",
    _RESOURCE,
    registry=REGISTRY,
)

# --- schema and migrations ----------------------------------------------------------

SCHEMA_REVISION_INFO = Gauge(
    "dbkeeper_schema_revision_info",
    "Always 1; the labels carry the migration set and the current and target revision."
    " One series per resource; current_revision is empty before the first migration;"
    " target_revision is the revision the spec resolves to (base: an empty schema), and"
    " empty while the spec names no revision of the set (dbkeeper_schema_target_resolved"
    " is 0 then).",
    [*_RESOURCE, "migration_set", "current_revision", "target_revision"],
    registry=REGISTRY,
)
SCHEMA_TARGET_RESOLVED = Gauge(
    "dbkeeper_schema_target_resolved",
    "1 when spec.migrations.targetRevision names a revision of the migration set, 0 when"
    " it does not (the resource is Failed with UnknownRevision until the spec is fixed).",
    _RESOURCE,
    registry=REGISTRY,
)
SCHEMA_PENDING = Gauge(
    "dbkeeper_schema_pending_revisions",
    "Revisions still to apply or revert to reach the target revision.",
    _RESOURCE,
    registry=REGISTRY,
)
SCHEMA_DRIFT = Gauge(
    "dbkeeper_schema_drift",
    "Differences found between the live schema and the migration set at the current"
    " revision; 0 means none.",
    _RESOURCE,
    registry=REGISTRY,
)
MIGRATION_DURATION = Histogram(
    "dbkeeper_migration_duration_seconds",
    "Time a migration run (one or more revisions) took, by direction and outcome.",
    [*_RESOURCE, "direction", "outcome"],
    buckets=_MIGRATION_BUCKETS,
    registry=REGISTRY,
)
MIGRATION_FAILURES = Counter(
    "dbkeeper_migration_failures_total",
    "Migration runs that failed, by direction.",
    [*_RESOURCE, "direction"],
    registry=REGISTRY,
)
MIGRATION_LAST_FAILED = Gauge(
    "dbkeeper_migration_last_failed",
    "1 when the latest migration run of the resource failed, 0 when it succeeded.",
    _RESOURCE,
    registry=REGISTRY,
)
MIGRATION_LAST_TIMESTAMP = Gauge(
    "dbkeeper_migration_last_timestamp_seconds",
    "When the latest migration run of the resource finished (Unix time).",
    _RESOURCE,
    registry=REGISTRY,
)

# --- database health ----------------------------------------------------------------

DATABASE_UP = Gauge(
    "dbkeeper_database_up",
    "1 when the last health probe reached the database and ran its queries, else 0.",
    _RESOURCE,
    registry=REGISTRY,
)
DATABASE_CONNECTIONS = Gauge(
    "dbkeeper_database_connections",
    "Client connections open on the database server.",
    _RESOURCE,
    registry=REGISTRY,
)
DATABASE_MAX_CONNECTIONS = Gauge(
    "dbkeeper_database_max_connections",
    "The server's max_connections setting.",
    _RESOURCE,
    registry=REGISTRY,
)
DATABASE_LONGEST_TRANSACTION = Gauge(
    "dbkeeper_database_longest_transaction_seconds",
    "Age of the oldest open transaction in the database; 0 when none is open.",
    _RESOURCE,
    registry=REGISTRY,
)
DATABASE_CACHE_HIT_RATIO = Gauge(
    "dbkeeper_database_cache_hit_ratio",
    "Share of block reads served from shared buffers since statistics were reset (0..1).",
    _RESOURCE,
    registry=REGISTRY,
)
DATABASE_REPLICATION_LAG = Gauge(
    "dbkeeper_database_replication_lag_seconds",
    "Replay lag of the furthest-behind replica; absent when there is no replica.",
    _RESOURCE,
    registry=REGISTRY,
)
TOP_QUERY_MEAN = Gauge(
    "dbkeeper_database_top_query_mean_seconds",
    "Mean execution time of the slowest statements by mean (pg_stat_statements),"
    " labelled by query id only.",
    [*_RESOURCE, "queryid"],
    registry=REGISTRY,
)
TOP_QUERY_CALLS = Gauge(
    "dbkeeper_database_top_query_calls",
    "Times each of the slowest statements ran since statistics were reset.",
    [*_RESOURCE, "queryid"],
    registry=REGISTRY,
)

# --- backups ------------------------------------------------------------------------

BACKUP_ENABLED_TIMESTAMP = Gauge(
    "dbkeeper_backup_enabled_timestamp_seconds",
    "Since when backups are configured for the resource (Unix time).",
    _RESOURCE,
    registry=REGISTRY,
)
BACKUP_INTERVAL = Gauge(
    "dbkeeper_backup_interval_seconds",
    "Expected time between two scheduled backups.",
    _RESOURCE,
    registry=REGISTRY,
)
BACKUP_LAST_SUCCESS = Gauge(
    "dbkeeper_backup_last_success_timestamp_seconds",
    "When the latest successful backup finished (Unix time); absent before the first.",
    _RESOURCE,
    registry=REGISTRY,
)
BACKUP_LAST_DURATION = Gauge(
    "dbkeeper_backup_last_duration_seconds",
    "How long the latest successful backup took.",
    _RESOURCE,
    registry=REGISTRY,
)
BACKUP_LAST_SIZE = Gauge(
    "dbkeeper_backup_last_size_bytes",
    "Size of the latest successful backup.",
    _RESOURCE,
    registry=REGISTRY,
)
BACKUP_FAILURES = Counter(
    "dbkeeper_backup_failures_total",
    "Backup runs that failed.",
    _RESOURCE,
    registry=REGISTRY,
)
BACKUP_LAST_FAILURE = Gauge(
    "dbkeeper_backup_last_failure_timestamp_seconds",
    "When the latest failed backup run ended (Unix time); absent if none failed.",
    _RESOURCE,
    registry=REGISTRY,
)
RESTORE_DRILL_INTERVAL = Gauge(
    "dbkeeper_backup_verify_interval_seconds",
    "Expected time between two restore drills; absent when drills are not scheduled.",
    _RESOURCE,
    registry=REGISTRY,
)
RESTORE_DRILL_LAST_SUCCESS = Gauge(
    "dbkeeper_backup_last_verified_timestamp_seconds",
    "When a backup was last restored successfully in a restore drill (Unix time).",
    _RESOURCE,
    registry=REGISTRY,
)
RESTORE_DRILL_LAST_OK = Gauge(
    "dbkeeper_backup_last_verify_success",
    "1 when the latest restore drill that ran to its end succeeded, 0 when it failed (a "
    "drill that could not run changes nothing); absent before the first.",
    _RESOURCE,
    registry=REGISTRY,
)

# --- pooler -------------------------------------------------------------------------

POOLER_CLIENTS_ACTIVE = Gauge(
    "dbkeeper_pooler_clients_active",
    "Client connections paired with a server connection, summed over the pools.",
    _RESOURCE,
    registry=REGISTRY,
)
POOLER_CLIENTS_WAITING = Gauge(
    "dbkeeper_pooler_clients_waiting",
    "Client connections waiting for a server connection, summed over the pools.",
    _RESOURCE,
    registry=REGISTRY,
)
POOLER_SERVERS_ACTIVE = Gauge(
    "dbkeeper_pooler_servers_active",
    "Server connections linked to a client, summed over the pools.",
    _RESOURCE,
    registry=REGISTRY,
)
POOLER_SERVERS_IDLE = Gauge(
    "dbkeeper_pooler_servers_idle",
    "Server connections idle and ready for a client, summed over the pools.",
    _RESOURCE,
    registry=REGISTRY,
)
POOLER_MAX_WAIT = Gauge(
    "dbkeeper_pooler_max_wait_seconds",
    "How long the oldest waiting client has waited for a server, worst pool.",
    _RESOURCE,
    registry=REGISTRY,
)
POOLER_WAIT = Gauge(
    "dbkeeper_pooler_average_wait_seconds",
    "Average time clients waited for a server recently, worst pooled database.",
    _RESOURCE,
    registry=REGISTRY,
)
POOLER_QUERY = Gauge(
    "dbkeeper_pooler_average_query_seconds",
    "Average query duration through the pooler recently, worst pooled database.",
    _RESOURCE,
    registry=REGISTRY,
)
POOLER_REPLICAS = Gauge(
    "dbkeeper_pooler_replicas",
    "Pooler replicas the spec asks for; absent when the resource has no pooler.",
    _RESOURCE,
    registry=REGISTRY,
)
POOLER_READY_REPLICAS = Gauge(
    "dbkeeper_pooler_ready_replicas",
    "Pooler replicas ready to accept connections, as the Deployment reports them.",
    _RESOURCE,
    registry=REGISTRY,
)


_POOLER_GAUGES = (
    POOLER_CLIENTS_ACTIVE,
    POOLER_CLIENTS_WAITING,
    POOLER_SERVERS_ACTIVE,
    POOLER_SERVERS_IDLE,
    POOLER_MAX_WAIT,
    POOLER_WAIT,
    POOLER_QUERY,
)


class _StatementTotals(Collector):
    """Counters mirrored from ``pg_stat_statements`` totals, which the probe reads whole.

    prometheus-client counters can only be incremented, and the source is already a
    running total (which PostgreSQL may reset, as counters do), so they are re-exported
    as counter families at scrape time.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._totals: dict[tuple[str, str], tuple[int, float]] = {}

    def set(self, namespace: str, name: str, calls: int | None, seconds: float | None) -> None:
        with self._lock:
            if calls is None or seconds is None:
                self._totals.pop((namespace, name), None)
            else:
                self._totals[(namespace, name)] = (calls, seconds)

    def forget(self, namespace: str, name: str) -> None:
        self.set(namespace, name, None, None)

    def collect(self) -> Iterable[Metric]:
        calls = CounterMetricFamily(
            "dbkeeper_database_statement_calls",
            "Statements executed in the database (pg_stat_statements total).",
            labels=_RESOURCE,
        )
        seconds = CounterMetricFamily(
            "dbkeeper_database_statement_exec_seconds",
            "Time spent executing statements in the database (pg_stat_statements total).",
            labels=_RESOURCE,
        )
        with self._lock:
            for (namespace, name), (n, s) in sorted(self._totals.items()):
                calls.add_metric([namespace, name], n)
                seconds.add_metric([namespace, name], s)
        yield calls
        yield seconds


_STATEMENT_TOTALS = _StatementTotals()
REGISTRY.register(_STATEMENT_TOTALS)

_PER_RESOURCE: tuple[Gauge | Counter | Histogram, ...] = (
    RESOURCE_PHASE,
    RESOURCE_CONDITION,
    SCHEMA_REVISION_INFO,
    SCHEMA_TARGET_RESOLVED,
    SCHEMA_PENDING,
    SCHEMA_DRIFT,
    MIGRATION_DURATION,
    MIGRATION_FAILURES,
    MIGRATION_LAST_FAILED,
    MIGRATION_LAST_TIMESTAMP,
    DATABASE_UP,
    DATABASE_CONNECTIONS,
    DATABASE_MAX_CONNECTIONS,
    DATABASE_LONGEST_TRANSACTION,
    DATABASE_CACHE_HIT_RATIO,
    DATABASE_REPLICATION_LAG,
    TOP_QUERY_MEAN,
    TOP_QUERY_CALLS,
    BACKUP_ENABLED_TIMESTAMP,
    BACKUP_INTERVAL,
    BACKUP_LAST_SUCCESS,
    BACKUP_LAST_DURATION,
    BACKUP_LAST_SIZE,
    BACKUP_FAILURES,
    BACKUP_LAST_FAILURE,
    RESTORE_DRILL_INTERVAL,
    RESTORE_DRILL_LAST_SUCCESS,
    RESTORE_DRILL_LAST_OK,
    *_POOLER_GAUGES,
    POOLER_REPLICAS,
    POOLER_READY_REPLICAS,
    AUDIT_SEALED_ROWS,
    AUDIT_UNSEALED_ROWS,
    AUDIT_OLDEST_UNSEALED,
)

# Replacing a resource's series (remove, then set) must not interleave with another
# thread doing the same for that resource.
_LOCK = threading.RLock()


# --- value types the operator passes in ---------------------------------------------


class PoolerPool(Protocol):
    """One PgBouncer pool, a ``SHOW POOLS`` row (``dbkeeper.pooler.stats.PoolStats`` fits)."""

    @property
    def clients_active(self) -> int: ...
    @property
    def clients_waiting(self) -> int: ...
    @property
    def servers_active(self) -> int: ...
    @property
    def servers_idle(self) -> int: ...
    @property
    def max_wait_seconds(self) -> float: ...


class PoolerTraffic(Protocol):
    """One pooled database's recent averages, a ``SHOW STATS`` row (``DatabaseStats`` fits)."""

    @property
    def avg_wait_seconds(self) -> float: ...
    @property
    def avg_query_seconds(self) -> float: ...


@dataclass(frozen=True)
class BackupState:
    """What the operator knows about one resource's backups and restore drills.

    ``enabled_since`` and ``interval_seconds`` let the alerts tell "not yet due" from
    "missing"; ``verify_interval_seconds`` is ``None`` when no restore drill is scheduled.
    """

    enabled_since: datetime
    interval_seconds: float
    last_success: datetime | None = None
    duration_seconds: float | None = None
    size_bytes: int | None = None
    verify_interval_seconds: float | None = None
    last_verified: datetime | None = None
    verify_ok: bool | None = None


# --- label checks -------------------------------------------------------------------


def _check(value: str, pattern: re.Pattern[str], what: str, allowed: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise ValueError(f"invalid {what} {value!r} for a metric label: {allowed}")
    return value


def _resource(namespace: str, name: str) -> tuple[str, str]:
    return (
        _check(namespace, _NAMESPACE, "namespace", "a Kubernetes namespace name"),
        _check(name, _NAME, "name", "a Kubernetes object name"),
    )


def _one_of(value: str, allowed: Sequence[str], what: str) -> str:
    if value not in allowed:
        raise ValueError(f"invalid {what} {value!r}: allowed are {', '.join(allowed)}")
    return value


def _non_negative(value: float, what: str) -> float:
    if value < 0:
        raise ValueError(f"{what} must be 0 or more, got {value}")
    return float(value)


def _unix(moment: datetime, what: str) -> float:
    if moment.tzinfo is None:
        raise ValueError(f"{what} must be timezone-aware (UTC), got naive {moment.isoformat()}")
    return moment.timestamp()


def _set_or_remove(gauge: Gauge, labels: tuple[str, ...], value: float | None) -> None:
    """Absent, not zero, when a value is unknown: zero would be a lie an alert believes."""
    if value is None:
        gauge.remove(*labels)
    else:
        gauge.labels(*labels).set(value)


# --- operator-level -----------------------------------------------------------------


def record_reconcile(outcome: str, seconds: float) -> None:
    """Count one reconciliation and how long it took (outcome: see RECONCILE_OUTCOMES)."""
    _one_of(outcome, RECONCILE_OUTCOMES, "reconcile outcome")
    RECONCILES.labels(outcome).inc()
    RECONCILE_DURATION.labels(outcome).observe(_non_negative(seconds, "reconcile duration"))


def set_phase(namespace: str, name: str, phase: str) -> None:
    """Mark the resource's current phase (see PHASES); the other phases read 0."""
    labels = _resource(namespace, name)
    _one_of(phase, PHASES, "phase")
    with _LOCK:
        for each in PHASES:
            RESOURCE_PHASE.labels(*labels, each).set(1 if each == phase else 0)


@dataclass(frozen=True)
class ConditionState:
    """One condition of a resource's status, as metrics publish it."""

    type: str
    status: str
    reason: str


def set_conditions(namespace: str, name: str, conditions: Iterable[ConditionState]) -> None:
    """Publish the resource's conditions, replacing the ones published before."""
    labels = _resource(namespace, name)
    rows = [
        (
            _check(c.type, _CAMEL, "condition type", "a CamelCase condition type"),
            _one_of(c.status, CONDITION_STATUSES, "condition status"),
            _check(c.reason, _CAMEL, "condition reason", "a CamelCase reason"),
        )
        for c in conditions
    ]
    with _LOCK:
        RESOURCE_CONDITION.remove_by_labels({"namespace": labels[0], "name": labels[1]})
        for row in rows:
            RESOURCE_CONDITION.labels(*labels, *row).set(1)


# --- schema and migrations ----------------------------------------------------------


def set_schema_state(
    namespace: str,
    name: str,
    migration_set: str,
    current_revision: str | None,
    target_revision: str,
    pending: int,
    drift: int,
    *,
    target_resolved: bool = True,
) -> None:
    """Publish where the schema is, where it should be, and how far apart they are.

    ``target_revision`` is the resolved target ("base" for an empty schema); with
    ``target_resolved`` False (the spec names no revision of the set) it is ignored and
    the label is empty, so an unresolvable target never reads as a downgrade to base.
    """
    labels = _resource(namespace, name)
    _check(migration_set, _MIGRATION_SET, "migration set", "lower-case letters, digits, -_.")
    current = (
        ""
        if current_revision is None
        else _check(current_revision, _REVISION, "current revision", "an Alembic revision id")
    )
    target = (
        _check(target_revision, _REVISION, "target revision", "an Alembic revision id or head")
        if target_resolved
        else ""
    )
    with _LOCK:
        SCHEMA_REVISION_INFO.remove_by_labels({"namespace": labels[0], "name": labels[1]})
        SCHEMA_REVISION_INFO.labels(*labels, migration_set, current, target).set(1)
        SCHEMA_TARGET_RESOLVED.labels(*labels).set(1 if target_resolved else 0)
        SCHEMA_PENDING.labels(*labels).set(_non_negative(pending, "pending revisions"))
        SCHEMA_DRIFT.labels(*labels).set(_non_negative(drift, "drift"))
        for direction in MIGRATION_DIRECTIONS:
            MIGRATION_FAILURES.labels(*labels, direction)


def observe_migration(
    namespace: str, name: str, direction: str, outcome: str, seconds: float
) -> None:
    """Record one finished migration run (see MIGRATION_DIRECTIONS, MIGRATION_OUTCOMES)."""
    labels = _resource(namespace, name)
    _one_of(direction, MIGRATION_DIRECTIONS, "migration direction")
    _one_of(outcome, MIGRATION_OUTCOMES, "migration outcome")
    duration = _non_negative(seconds, "migration duration")
    with _LOCK:
        MIGRATION_DURATION.labels(*labels, direction, outcome).observe(duration)
        failures = MIGRATION_FAILURES.labels(*labels, direction)
        if outcome == "failure":
            failures.inc()
        MIGRATION_LAST_FAILED.labels(*labels).set(1 if outcome == "failure" else 0)
        MIGRATION_LAST_TIMESTAMP.labels(*labels).set_to_current_time()


# --- database health ----------------------------------------------------------------


def set_database_health(namespace: str, name: str, health: DatabaseHealth) -> None:
    """Publish one probe's result; numbers the probe could not read become absent."""
    labels = _resource(namespace, name)
    with _LOCK:
        DATABASE_UP.labels(*labels).set(1 if health.up else 0)
        _set_or_remove(DATABASE_CONNECTIONS, labels, health.connections_used)
        _set_or_remove(DATABASE_MAX_CONNECTIONS, labels, health.max_connections)
        _set_or_remove(DATABASE_LONGEST_TRANSACTION, labels, health.longest_transaction_seconds)
        _set_or_remove(DATABASE_CACHE_HIT_RATIO, labels, health.cache_hit_ratio)
        _set_or_remove(DATABASE_REPLICATION_LAG, labels, health.replication_lag_seconds)
        # The top list changes between probes: drop the old ids so the series stay bounded.
        selector = {"namespace": labels[0], "name": labels[1]}
        TOP_QUERY_MEAN.remove_by_labels(selector)
        TOP_QUERY_CALLS.remove_by_labels(selector)
        for query in health.top_queries:
            queryid = str(int(query.queryid))
            TOP_QUERY_MEAN.labels(*labels, queryid).set(query.mean_seconds)
            TOP_QUERY_CALLS.labels(*labels, queryid).set(query.calls)
        _STATEMENT_TOTALS.set(*labels, health.statement_calls, health.statement_exec_seconds)


# --- backups ------------------------------------------------------------------------


def set_backup_state(namespace: str, name: str, state: BackupState) -> None:
    """Publish the backup schedule, the latest backup and the latest restore drill."""
    labels = _resource(namespace, name)
    interval = _non_negative(state.interval_seconds, "backup interval")
    if interval == 0:
        raise ValueError("backup interval must be more than 0 seconds")
    with _LOCK:
        BACKUP_ENABLED_TIMESTAMP.labels(*labels).set(_unix(state.enabled_since, "enabled_since"))
        BACKUP_INTERVAL.labels(*labels).set(interval)
        _set_or_remove(
            BACKUP_LAST_SUCCESS,
            labels,
            None if state.last_success is None else _unix(state.last_success, "last_success"),
        )
        _set_or_remove(
            BACKUP_LAST_DURATION,
            labels,
            None
            if state.duration_seconds is None
            else _non_negative(state.duration_seconds, "backup duration"),
        )
        _set_or_remove(
            BACKUP_LAST_SIZE,
            labels,
            None if state.size_bytes is None else _non_negative(state.size_bytes, "backup size"),
        )
        _set_or_remove(
            RESTORE_DRILL_INTERVAL,
            labels,
            None
            if state.verify_interval_seconds is None
            else _non_negative(state.verify_interval_seconds, "verify interval"),
        )
        _set_or_remove(
            RESTORE_DRILL_LAST_SUCCESS,
            labels,
            None if state.last_verified is None else _unix(state.last_verified, "last_verified"),
        )
        _set_or_remove(
            RESTORE_DRILL_LAST_OK,
            labels,
            None if state.verify_ok is None else (1 if state.verify_ok else 0),
        )
        BACKUP_FAILURES.labels(*labels)


def count_backup_failure(namespace: str, name: str, at: datetime) -> None:
    """Count one failed backup run that ended at ``at`` (timezone-aware)."""
    labels = _resource(namespace, name)
    moment = _unix(at, "at")
    with _LOCK:
        BACKUP_FAILURES.labels(*labels).inc()
        BACKUP_LAST_FAILURE.labels(*labels).set(moment)


# --- pooler -------------------------------------------------------------------------


def set_pool_stats(
    namespace: str,
    name: str,
    pools: Sequence[PoolerPool] | None,
    traffic: Sequence[PoolerTraffic] = (),
) -> None:
    """Publish the pooler's pools (counts summed, waits of the worst pool).

    ``pools=None`` means the resource has no pooler: its series are removed. An empty
    list is a pooler without clients: zeros. Without ``traffic`` rows the averages are
    absent.
    """
    labels = _resource(namespace, name)
    with _LOCK:
        if pools is None:
            for gauge in _POOLER_GAUGES:
                gauge.remove(*labels)
            return
        POOLER_CLIENTS_ACTIVE.labels(*labels).set(sum(p.clients_active for p in pools))
        POOLER_CLIENTS_WAITING.labels(*labels).set(sum(p.clients_waiting for p in pools))
        POOLER_SERVERS_ACTIVE.labels(*labels).set(sum(p.servers_active for p in pools))
        POOLER_SERVERS_IDLE.labels(*labels).set(sum(p.servers_idle for p in pools))
        POOLER_MAX_WAIT.labels(*labels).set(max((p.max_wait_seconds for p in pools), default=0.0))
        _set_or_remove(
            POOLER_WAIT, labels, max((t.avg_wait_seconds for t in traffic), default=None)
        )
        _set_or_remove(
            POOLER_QUERY, labels, max((t.avg_query_seconds for t in traffic), default=None)
        )


def set_pooler_replicas(namespace: str, name: str, wanted: int | None, ready: int | None) -> None:
    """Publish how many pooler replicas the spec asks for and how many are ready;
    ``wanted=None`` removes both (no pooler), ``ready=None`` only the ready count."""
    labels = _resource(namespace, name)
    with _LOCK:
        _set_or_remove(
            POOLER_REPLICAS, labels, None if wanted is None else _non_negative(wanted, "replicas")
        )
        _set_or_remove(
            POOLER_READY_REPLICAS,
            labels,
            None if wanted is None or ready is None else _non_negative(ready, "ready replicas"),
        )


def set_audit_state(
    namespace: str, name: str, sealed: int | None, unsealed: int | None, oldest_s: float | None
) -> None:
    """Publish how far the audit trail is sealed; ``sealed=None`` removes all three (the
    database has no sealed audit trail)."""
    labels = _resource(namespace, name)
    with _LOCK:
        present = sealed is not None
        _set_or_remove(AUDIT_SEALED_ROWS, labels, sealed)
        _set_or_remove(AUDIT_UNSEALED_ROWS, labels, unsealed if present else None)
        _set_or_remove(AUDIT_OLDEST_UNSEALED, labels, oldest_s if present else None)


# --- lifecycle ----------------------------------------------------------------------


def forget_resource(namespace: str, name: str) -> None:
    """Drop every series of a deleted resource, so its alerts resolve instead of sticking."""
    labels = _resource(namespace, name)
    selector = {"namespace": labels[0], "name": labels[1]}
    with _LOCK:
        for metric in _PER_RESOURCE:
            metric.remove_by_labels(selector)
        _STATEMENT_TOTALS.forget(*labels)


@dataclass(frozen=True)
class MetricsServer:
    """The running ``/metrics`` HTTP endpoint; ``stop()`` shuts it down."""

    server: WSGIServer
    thread: threading.Thread

    @property
    def port(self) -> int:
        return int(self.server.server_port)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def start_metrics_server(port: int, addr: str = "0.0.0.0") -> MetricsServer:  # noqa: S104
    """Serve :data:`REGISTRY` over HTTP in a daemon thread; port 0 picks a free port."""
    if not 0 <= port <= 65535:
        raise ValueError(f"metrics port must be 0..65535, got {port}")
    server, thread = start_http_server(port, addr=addr, registry=REGISTRY)
    return MetricsServer(server=server, thread=thread)


def render_latest() -> bytes:
    """The current exposition text, as a scrape would get it."""
    return generate_latest(REGISTRY)

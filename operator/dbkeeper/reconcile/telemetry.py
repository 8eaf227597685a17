"""Publish what the reconcilers found as Prometheus metrics (operator only).

Metrics follow the status: whatever is written to a resource's status is also
published, so the two never disagree. The database health probe runs at the end of
every pass that reached the database.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from dbkeeper import metrics
from dbkeeper.api import ConditionType, Reason
from dbkeeper.api.spec import DEFAULT_SET
from dbkeeper.conninfo import ConnInfo
from dbkeeper.health import DatabaseHealth, probe_database
from dbkeeper.reconcile.audit_trail import forget_audit
from dbkeeper.reconcile.backup_metrics import forget_backups
from dbkeeper.reconcile.runtime import ResourceView

log = logging.getLogger(__name__)


def _seconds_between(started: str | None, finished: str | None) -> float | None:
    if not started or not finished:
        return None
    try:
        start = datetime.fromisoformat(started.replace("Z", "+00:00"))
        end = datetime.fromisoformat(finished.replace("Z", "+00:00"))
    except ValueError:
        return None
    return max(0.0, (end - start).total_seconds())


def publish_status(view: ResourceView, status: Mapping[str, Any]) -> None:
    """Phase, revisions, drift, and a finished migration when this write finishes one."""
    try:
        _publish(view, status)
    except ValueError:
        # A label value metrics refuse (never expected from a valid status) must not
        # break reconciliation; it is logged instead.
        log.exception("metrics for %s not published", view.key)


def _conditions(status: Mapping[str, Any]) -> list[metrics.ConditionState]:
    return [
        metrics.ConditionState(str(c.get("type")), str(c.get("status")), str(c.get("reason")))
        for c in status.get("conditions") or []
        if isinstance(c, Mapping)
    ]


def _target_resolved(status: Mapping[str, Any]) -> bool:
    """False while the spec's target names no revision of the set (no targetRevision, and
    SchemaCurrent says UnknownRevision): a missing target then is not "base"."""
    if status.get("targetRevision"):
        return True
    schema = next(
        (
            c
            for c in status.get("conditions") or []
            if c.get("type") == ConditionType.SCHEMA_CURRENT
        ),
        None,
    )
    return schema is None or schema.get("reason") != Reason.UNKNOWN_REVISION


def _publish(view: ResourceView, status: Mapping[str, Any]) -> None:
    namespace, name = view.namespace, view.name
    phase = status.get("phase")
    if isinstance(phase, str):
        metrics.set_phase(namespace, name, phase)
    metrics.set_conditions(namespace, name, _conditions(status))
    migration_set = str((status.get("migrationSet") or {}).get("name") or DEFAULT_SET)
    resolved = _target_resolved(status)
    if "currentRevision" in status or "targetRevision" in status or not resolved:
        metrics.set_schema_state(
            namespace,
            name,
            migration_set,
            status.get("currentRevision"),
            status.get("targetRevision") or "base",
            len(status.get("pendingRevisions") or []),
            len(status.get("drift") or []),
            target_resolved=resolved,
        )
    pooler = status.get("pooler") or {}
    metrics.set_pooler_replicas(
        namespace, name, pooler.get("replicas"), pooler.get("readyReplicas")
    )
    last = status.get("lastMigration") or {}
    before = view.status.get("lastMigration") or {}
    finished_now = last.get("result") in {"Succeeded", "Failed"} and (
        before.get("result") == "Running" or before.get("startedAt") != last.get("startedAt")
    )
    if finished_now:
        seconds = _seconds_between(last.get("startedAt"), last.get("finishedAt")) or 0.0
        metrics.observe_migration(
            namespace,
            name,
            str(last.get("direction", "upgrade")),
            "success" if last.get("result") == "Succeeded" else "failure",
            seconds,
        )


def probe_health(view: ResourceView, conninfo: ConnInfo | None, problem: str) -> None:
    """Publish the database's health (up, connections, …): probed when the pass reached
    it, down (with ``problem``) when it did not, so ``database_up`` never lags behind."""
    health = probe_database(conninfo) if conninfo is not None else DatabaseHealth.down(problem)
    try:
        metrics.set_database_health(view.namespace, view.name, health)
    except ValueError:
        log.exception("health metrics for %s not published", view.key)


def forget(view: ResourceView) -> None:
    forget_audit(view)
    metrics.forget_resource(view.namespace, view.name)
    forget_backups(view)

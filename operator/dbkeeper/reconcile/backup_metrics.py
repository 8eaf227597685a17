"""Publish what the backup and drill Jobs showed as Prometheus metrics (operator only).

Like the status, the metrics follow the Jobs: the schedule's interval, the newest
successful backup and its duration, the newest drill that ran to its end (one that
could not run changes nothing). Each failed backup Job is counted
once: the Jobs already counted are remembered per resource, only as long as they are
still listed, so the memory stays bounded. Failures that ended before this process
started are not counted (a restarted operator must not count old Jobs again).
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime

from dbkeeper import metrics
from dbkeeper.api import LastBackup
from dbkeeper.api.spec import BackupSpec
from dbkeeper.reconcile.backup_jobs import (
    BACKUP_COMPONENT,
    JobRun,
    newest_completed_drill,
    newest_success,
    schedule_interval,
)
from dbkeeper.reconcile.runtime import ResourceView

log = logging.getLogger(__name__)

_STARTED = datetime.now(UTC)
_LOCK = threading.Lock()
_COUNTED: dict[tuple[str, str], set[str]] = {}


def publish_backups(
    view: ResourceView,
    backup: BackupSpec,
    runs: list[JobRun],
    latest: LastBackup | None,
    enabled_since: datetime,
    now: datetime,
) -> None:
    try:
        _count_failures(view, runs)
        if backup.schedule is None:
            return  # nothing is due without a schedule: no interval to alert on
        # A drill that could not run judged nothing: the last one that did stands.
        drill = newest_completed_drill(runs)
        newest = newest_success(runs, BACKUP_COMPONENT)
        same_backup = newest is not None and latest is not None and newest.name == latest.id
        metrics.set_backup_state(
            view.namespace,
            view.name,
            metrics.BackupState(
                enabled_since=enabled_since,
                interval_seconds=schedule_interval(backup.schedule, now).total_seconds(),
                last_success=None if latest is None else latest.finished_at,
                duration_seconds=newest.duration_seconds if newest and same_backup else None,
                verify_interval_seconds=None
                if backup.verify_schedule is None
                else schedule_interval(backup.verify_schedule, now).total_seconds(),
                last_verified=None if latest is None else latest.verified_at,
                verify_ok=None if drill is None else bool(drill.succeeded),
            ),
        )
    except ValueError:
        # A value metrics refuse must not break reconciliation; it is logged instead.
        log.exception("backup metrics for %s not published", view.key)


def _count_failures(view: ResourceView, runs: list[JobRun]) -> None:
    failed = {
        r.uid or r.name: r
        for r in runs
        if r.component == BACKUP_COMPONENT and r.succeeded is False and r.finished_at is not None
    }
    key = (view.namespace, view.name)
    with _LOCK:
        counted = _COUNTED.get(key, set())
        for ident, run in failed.items():
            assert run.finished_at is not None
            if ident not in counted and run.finished_at >= _STARTED:
                metrics.count_backup_failure(view.namespace, view.name, run.finished_at)
        _COUNTED[key] = set(failed)


def forget_backups(view: ResourceView) -> None:
    with _LOCK:
        _COUNTED.pop((view.namespace, view.name), None)

"""The workloads aspect of a pass: the pooler and the backups a DatabaseSchema runs.

Runs after the schema and roles aspects, in every pass: applies the pooler's objects
and the backup CronJobs, and adds their conditions and fields to the pass's status
without touching the phase: a pooler that is not ready yet or a failed backup is
reported in its own condition, not as a schema problem. Pool metrics are read from the
pooler's pods while at it.
"""

from __future__ import annotations

import logging

from dbkeeper.api import DatabaseSchemaSpec
from dbkeeper.conninfo import ConnInfo
from dbkeeper.kube import KubeError
from dbkeeper.reconcile.backup_workload import reconcile_backups
from dbkeeper.reconcile.kube_runtime import KubeRuntime
from dbkeeper.reconcile.pooler_metrics import record_pool_metrics
from dbkeeper.reconcile.pooler_workload import reconcile_pooler
from dbkeeper.reconcile.runtime import ResourceView
from dbkeeper.reconcile.status_report import StatusReport
from dbkeeper.settings import Settings

log = logging.getLogger(__name__)


def workloads_aspect(
    view: ResourceView,
    spec: DatabaseSchemaSpec,
    runtime: KubeRuntime,
    settings: Settings,
    report: StatusReport,
    server: ConnInfo | None,
    problem: str | None,
) -> bool:
    """Bring the pooler and the backup CronJobs in line with the spec; False when the
    pass should be tried again soon (a pooler not configurable yet, an API error)."""
    try:
        pooler_settled = reconcile_pooler(view, spec, runtime, settings, report, server, problem)
        reconcile_backups(view, spec, runtime, settings, report, server)
    except KubeError as exc:
        log.warning("workloads of %s not reconciled: %s", view.key, exc)
        return False
    owner = (server.user, server.password) if server and server.password else None
    record_pool_metrics(view.namespace, view.name, spec, runtime.kube, owner)
    return pooler_settled

"""Reconcile the workloads a DatabaseSchema runs in its cluster: the pooler and backups.

Runs after the schema reconciler, in the same kopf cycle and in the periodic re-check.
It re-reads the resource first (kopf's body predates the status the schema reconciler
just wrote), then applies the pooler's objects and the backup CronJobs, and adds its
conditions and fields to the status without touching the phase: a pooler that is not
ready yet or a failed backup is reported in its own condition, not as a schema problem.
An invalid spec is left to the schema reconciler, which reports it; nothing is created.
"""

from __future__ import annotations

import logging

from dbkeeper.api import SpecInvalid, parse_spec
from dbkeeper.kube import KubeError
from dbkeeper.reconcile.backup_workload import reconcile_backups
from dbkeeper.reconcile.kube_runtime import KubeRuntime
from dbkeeper.reconcile.pooler_metrics import recheck_pool_metrics
from dbkeeper.reconcile.pooler_workload import reconcile_pooler
from dbkeeper.reconcile.runtime import Outcome, ResourceView
from dbkeeper.reconcile.status_report import StatusReport
from dbkeeper.settings import Settings

log = logging.getLogger(__name__)


def reconcile_workloads(
    view: ResourceView, runtime: KubeRuntime, settings: Settings
) -> Outcome | None:
    """Bring the pooler and the backup CronJobs in line with the spec; report them."""
    if not settings.manage_workloads:
        return None
    current = runtime.refresh(view)
    if current is None or current.uid is None:
        return None
    try:
        spec = parse_spec(current.spec)
    except SpecInvalid:
        return None
    report = StatusReport(current, runtime)
    phase = str(current.status.get("phase") or "Pending")
    try:
        pooler_settled = reconcile_pooler(current, spec, runtime, settings, report)
        reconcile_backups(current, spec, runtime, settings, report)
    except KubeError as exc:
        report.write_aspects()
        log.warning("workloads of %s not reconciled: %s", current.key, exc)
        return Outcome(phase=phase, retry_after=settings.retry_delay.total_seconds())
    report.write_aspects()
    if not pooler_settled:
        return Outcome(phase=phase, retry_after=settings.retry_delay.total_seconds())
    return Outcome(phase=phase)


def recheck_workloads(
    view: ResourceView, runtime: KubeRuntime, settings: Settings
) -> Outcome | None:
    """The periodic pass: Deployment readiness, Job outcomes and pool metrics; never asks
    for a retry."""
    outcome = reconcile_workloads(view, runtime, settings)
    if outcome is None:
        return None
    recheck_pool_metrics(view, runtime)
    return Outcome(phase=outcome.phase)

"""What ``Ready`` means: the one rule that turns a serving resource Degraded.

The schema aspect decides the phase from the schema alone (at its target, reachable,
no drift). A resource is only Ready when everything else its spec asks for is healthy
too, so after the other aspects ran, :func:`degrade_unless_healthy` turns a Ready pass
Degraded when one of these conditions says otherwise:

- ``RolesInSync`` False: the declared roles could not be applied (drift that was found
  and repaired at once, ``RoleDrift``, is reported but does not degrade);
- ``PoolerReady`` False for longer than the grace period
  (:attr:`~dbkeeper.settings.Settings.pooler_ready_grace`): a rollout or a rescheduled
  pod is not an outage, a pooler that stays down is;
- ``BackupHealthy`` False: the latest scheduled backup failed or is overdue;
- ``RestoreVerified`` False: the latest restore drill found a backup that does not
  restore; or Unknown with ``MissingPrivilege``: drills are held because the role that
  runs them lacks a privilege, which no retry heals;
- ``AuditTrailIntact`` False: the audit chain does not verify, or no longer extends the
  last checkpoint: rows were changed, removed or added behind the trail's back;
- ``TypesPublished`` False: the TypeScript module ``spec.types`` asks for could not be
  published (the ConfigMap belongs to someone else, a column has no declaration, the
  module is too large).

Other ``Unknown`` conditions (no backup yet, a drill that could not run this time) do
not degrade: they say nothing is known yet. docs/architecture.md lists the same rule.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from dbkeeper.api import Condition, ConditionType, Phase, Reason
from dbkeeper.reconcile.runtime import Outcome
from dbkeeper.reconcile.status_report import StatusReport

# False at once degrades; the pooler only after its grace period.
_DEGRADING = (
    ConditionType.ROLES_IN_SYNC,
    ConditionType.POOLER_READY,
    ConditionType.BACKUP_HEALTHY,
    ConditionType.RESTORE_VERIFIED,
    ConditionType.AUDIT_TRAIL_INTACT,
    ConditionType.TYPES_PUBLISHED,
)
# Reported as False for people to read, but already dealt with.
_NOT_DEGRADING = frozenset({(ConditionType.ROLES_IN_SYNC, Reason.ROLE_DRIFT)})
# Unknown (nothing could be checked), for a reason that does not heal by itself.
_UNKNOWN_DEGRADING = frozenset({(ConditionType.RESTORE_VERIFIED, Reason.MISSING_PRIVILEGE)})


def degrading_condition(
    conditions: list[Condition], now: datetime, pooler_grace: timedelta
) -> Condition | None:
    """The first condition that keeps the resource from Ready, if any (see the module)."""
    for kind in _DEGRADING:
        found = next((c for c in conditions if c.type == kind), None)
        if found is None or found.status == "True":
            continue
        if found.status == "Unknown" and (found.type, found.reason) not in _UNKNOWN_DEGRADING:
            continue
        if (found.type, found.reason) in _NOT_DEGRADING:
            continue
        if kind == ConditionType.POOLER_READY and now - found.last_transition_time < pooler_grace:
            continue
        return found
    return None


def degrade_unless_healthy(
    report: StatusReport, outcome: Outcome, pooler_grace: timedelta
) -> Outcome:
    """``outcome`` as is, or Degraded when a condition says the resource is not healthy."""
    if outcome.phase != Phase.READY:
        return outcome
    found = degrading_condition(list(report.status.conditions), report.now, pooler_grace)
    if found is None:
        return outcome
    message = (
        f"{report.status.message or 'ready'}, but {found.type} is {found.status}: {found.message}"
    )
    return report.outcome(
        Phase.DEGRADED, message, retry_after=outcome.retry_after, reason=found.reason
    )

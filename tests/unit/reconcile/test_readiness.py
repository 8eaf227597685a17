"""What Ready means: the conditions that turn a serving resource Degraded, and when."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dbkeeper.api import Condition, ConditionType, Phase, Reason
from dbkeeper.reconcile.readiness import degrade_unless_healthy, degrading_condition
from dbkeeper.reconcile.runtime import Outcome
from dbkeeper.reconcile.status_report import StatusReport
from tests.unit.reconcile.fakes import NAME, NAMESPACE, FakeRuntime

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
GRACE = timedelta(minutes=5)


def _condition(
    kind: ConditionType, status: str, reason: Reason, since: timedelta = timedelta(hours=1)
) -> Condition:
    return Condition(
        type=kind,
        status=status,
        reason=reason,
        message=f"{kind} is {status}",
        last_transition_time=NOW - since,
    )


def test_a_pooler_unready_within_its_grace_does_not_degrade_and_after_it_does() -> None:
    fresh = _condition(
        ConditionType.POOLER_READY, "False", Reason.POOLER_NOT_READY, timedelta(minutes=4)
    )
    old = _condition(
        ConditionType.POOLER_READY, "False", Reason.POOLER_NOT_READY, timedelta(minutes=5)
    )
    assert degrading_condition([fresh], NOW, GRACE) is None
    assert degrading_condition([old], NOW, GRACE) == old


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        (ConditionType.ROLES_IN_SYNC, Reason.SECRET_MISSING),
        (ConditionType.BACKUP_HEALTHY, Reason.BACKUP_FAILED),
        (ConditionType.RESTORE_VERIFIED, Reason.DRILL_FAILED),
        (ConditionType.TYPES_PUBLISHED, Reason.CONFIG_MAP_NOT_OWNED),
        (ConditionType.TYPES_PUBLISHED, Reason.TYPES_UNMAPPABLE),
        (ConditionType.TYPES_PUBLISHED, Reason.TYPES_TOO_LARGE),
    ],
)
def test_a_false_serving_condition_degrades_at_once(kind: ConditionType, reason: Reason) -> None:
    found = _condition(kind, "False", reason, timedelta(seconds=1))
    assert degrading_condition([found], NOW, GRACE) == found


def test_drills_held_for_a_missing_privilege_degrade_though_unknown() -> None:
    found = _condition(
        ConditionType.RESTORE_VERIFIED, "Unknown", Reason.MISSING_PRIVILEGE, timedelta(seconds=1)
    )
    assert degrading_condition([found], NOW, GRACE) == found


@pytest.mark.parametrize(
    "condition",
    [
        # Drift found and repaired at once is reported, not a lasting problem.
        _condition(ConditionType.ROLES_IN_SYNC, "False", Reason.ROLE_DRIFT),
        # Unknown says nothing is known yet.
        _condition(ConditionType.BACKUP_HEALTHY, "Unknown", Reason.NO_BACKUP_YET),
        _condition(ConditionType.RESTORE_VERIFIED, "Unknown", Reason.DRILL_NOT_RUN),
        _condition(ConditionType.POOLER_READY, "True", Reason.POOLER_READY),
        _condition(ConditionType.TYPES_PUBLISHED, "True", Reason.PUBLISHED),
        # Aspects of the schema decide the phase themselves, before this rule runs.
        _condition(ConditionType.DATABASE_REACHABLE, "False", Reason.DATABASE_UNREACHABLE),
    ],
)
def test_conditions_that_do_not_degrade(condition: Condition) -> None:
    assert degrading_condition([condition], NOW, GRACE) is None


def _report(conditions: list[Condition]) -> StatusReport:
    runtime = FakeRuntime()
    view = runtime.read(NAMESPACE, NAME)
    assert view is not None
    report = StatusReport(view, runtime)
    report.update(conditions=conditions)
    return report


def test_a_ready_pass_with_a_failing_backup_is_degraded_with_its_reason() -> None:
    report = _report([_condition(ConditionType.BACKUP_HEALTHY, "False", Reason.BACKUP_FAILED)])
    ready = report.outcome(Phase.READY, "at revision 0003")

    outcome = degrade_unless_healthy(report, ready, GRACE)

    assert outcome.phase == Phase.DEGRADED
    assert report.status.phase == Phase.DEGRADED
    assert report.status.message == (
        "at revision 0003, but BackupHealthy is False: BackupHealthy is False"
    )
    ready_condition = report.status.condition(ConditionType.READY)
    assert ready_condition is not None
    assert (ready_condition.status, ready_condition.reason) == ("False", Reason.BACKUP_FAILED)


def test_a_pass_that_is_not_ready_keeps_its_own_phase() -> None:
    report = _report([_condition(ConditionType.BACKUP_HEALTHY, "False", Reason.BACKUP_FAILED)])
    failed = report.outcome(Phase.FAILED, "unknown revision 0042", permanent=True)

    assert degrade_unless_healthy(report, failed, GRACE) is failed
    assert report.status.phase == Phase.FAILED


def test_a_healthy_ready_pass_stays_ready() -> None:
    report = _report([_condition(ConditionType.POOLER_READY, "True", Reason.POOLER_READY)])
    ready = report.outcome(Phase.READY, "at revision 0003")
    assert degrade_unless_healthy(report, ready, GRACE) == Outcome(phase="Ready")
    assert report.status.phase == Phase.READY

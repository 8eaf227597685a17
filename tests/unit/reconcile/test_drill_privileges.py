"""RestoreVerified when the drill's role lacks a privilege the drill needs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dbkeeper.api import Condition, ConditionType, Reason
from dbkeeper.backup.errors import DRILL_NOT_RUN_EXIT_CODE
from dbkeeper.backup.privileges import Missing, describe
from dbkeeper.reconcile.backup_jobs import (
    VERIFY_COMPONENT,
    JobRun,
    drill_verdict,
    drills_held,
    held_refusal,
)

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
REFUSAL = describe(
    "app_owner", [Missing("CREATEDB", "a drill needs it", "ALTER ROLE app_owner CREATEDB")]
)


def _not_run(termination_message: str) -> JobRun:
    return JobRun(
        "clinic-backup-verify-1",
        VERIFY_COMPONENT,
        NOW - timedelta(minutes=6),
        NOW - timedelta(minutes=5),
        False,
        exit_code=DRILL_NOT_RUN_EXIT_CODE,
        termination_message=termination_message,
    )


def test_a_drill_job_stopped_by_a_missing_privilege_says_missing_privilege() -> None:
    line = f"dbkeeper: error: restore drill of backup 'b' could not run: {REFUSAL}"

    verdict = drill_verdict([_not_run(f"{line}\n")])

    assert (verdict.status, verdict.reason) == ("Unknown", Reason.MISSING_PRIVILEGE)
    assert "ALTER ROLE app_owner CREATEDB" in verdict.message
    assert "verdict is unchanged" in verdict.message


def test_a_drill_job_stopped_by_something_else_stays_drill_not_run() -> None:
    line = "dbkeeper: error: restore drill of backup 'b' could not run: too many connections"

    assert drill_verdict([_not_run(line)]).reason == Reason.DRILL_NOT_RUN


def test_drills_held_by_the_operator_say_so_with_the_fix() -> None:
    verdict = drills_held(REFUSAL)

    assert (verdict.status, verdict.reason) == ("Unknown", Reason.MISSING_PRIVILEGE)
    assert verdict.message.startswith("restore drills are suspended")
    assert verdict.message.endswith(REFUSAL)


def _condition(reason: Reason, message: str) -> Condition:
    return Condition(
        type=ConditionType.RESTORE_VERIFIED,
        status="Unknown",
        reason=reason,
        message=message,
        last_transition_time=NOW,
    )


def test_the_refusal_drills_are_held_for_is_read_back_from_the_condition() -> None:
    held = drills_held(REFUSAL)

    assert held_refusal(_condition(held.reason, held.message)) == REFUSAL
    assert held_refusal(_condition(Reason.DRILL_NOT_RUN, held.message)) is None
    assert held_refusal(_condition(Reason.MISSING_PRIVILEGE, "restore drill d ended …")) is None
    assert held_refusal(None) is None

"""What backup and drill Jobs say about a resource's backups: last backup and conditions."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from dbkeeper.api import LastBackup, Reason
from dbkeeper.backup.errors import DRILL_NOT_RUN_EXIT_CODE
from dbkeeper.reconcile.backup_jobs import (
    BACKUP_COMPONENT,
    JOB_NAME_LABEL,
    POD_FAILURE_POLICY,
    VERIFY_COMPONENT,
    JobRun,
    backup_verdict,
    command_error,
    drill_verdict,
    job_run,
    last_backup,
    newest_completed_drill,
    schedule_interval,
    with_pod_exit,
)

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
DAILY = "0 2 * * *"


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _job(name: str, component: str, **status: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "uid": f"uid-{name}",
            "labels": {"app.kubernetes.io/component": component},
            "creationTimestamp": _stamp(NOW - timedelta(days=10)),
        },
        "spec": {"backoffLimit": 1},
        "status": status,
    }


def _run(name: str, component: str, ago: timedelta, succeeded: bool | None) -> JobRun:
    finished = None if succeeded is None else NOW - ago
    return JobRun(name, component, NOW - ago - timedelta(minutes=5), finished, succeeded)


def test_a_complete_job_is_a_success_finished_at_its_completion_time() -> None:
    done = NOW - timedelta(hours=1)
    run = job_run(
        _job(
            "b1",
            BACKUP_COMPONENT,
            startTime=_stamp(done - timedelta(minutes=3)),
            completionTime=_stamp(done),
            succeeded=1,
            conditions=[{"type": "Complete", "status": "True"}],
        )
    )
    assert (run.succeeded, run.finished_at, run.component) == (True, done, BACKUP_COMPONENT)
    assert run.duration_seconds == 180


def test_a_job_failed_beyond_its_backoff_limit_is_a_failure() -> None:
    failed_at = NOW - timedelta(minutes=7)
    run = job_run(
        _job(
            "b2",
            BACKUP_COMPONENT,
            failed=2,
            conditions=[
                {"type": "Failed", "status": "True", "lastTransitionTime": _stamp(failed_at)}
            ],
        )
    )
    assert (run.succeeded, run.finished_at) == (False, failed_at)


def test_a_job_still_retrying_is_running() -> None:
    assert job_run(_job("b3", BACKUP_COMPONENT, failed=1, active=1)).succeeded is None


def test_last_backup_is_the_newest_success_verified_by_a_later_drill() -> None:
    runs = [
        _run("old", BACKUP_COMPONENT, timedelta(days=2), True),
        _run("new", BACKUP_COMPONENT, timedelta(hours=5), True),
        _run("broken", BACKUP_COMPONENT, timedelta(hours=1), False),
        _run("drill", VERIFY_COMPONENT, timedelta(hours=2), True),
    ]
    latest = last_backup(None, runs)
    assert latest is not None
    assert latest.id == "new"
    assert latest.verified_at == NOW - timedelta(hours=2)


def test_a_drill_older_than_the_backup_does_not_verify_it() -> None:
    runs = [
        _run("new", BACKUP_COMPONENT, timedelta(hours=1), True),
        _run("drill", VERIFY_COMPONENT, timedelta(hours=3), True),
    ]
    latest = last_backup(None, runs)
    assert latest is not None
    assert latest.verified_at is None


def test_last_backup_is_kept_when_its_jobs_were_cleaned_up() -> None:
    recorded = LastBackup(id="gone", finished_at=NOW - timedelta(hours=3))
    assert last_backup(recorded, []) == recorded


def _verdict(runs: list[JobRun], **overrides: Any) -> Any:
    arguments: dict[str, Any] = {
        "latest": last_backup(None, runs),
        "schedule": DAILY,
        "suspended": False,
        "enabled_since": NOW - timedelta(days=30),
        "now": NOW,
    }
    arguments.update(overrides)
    return backup_verdict(runs, **arguments)


def test_a_recent_success_is_healthy() -> None:
    verdict = _verdict([_run("b", BACKUP_COMPONENT, timedelta(hours=10), True)])
    assert (verdict.status, verdict.reason) == ("True", Reason.BACKUP_SUCCEEDED)


def test_a_success_older_than_two_intervals_is_overdue() -> None:
    verdict = _verdict([_run("b", BACKUP_COMPONENT, timedelta(hours=49), True)])
    assert (verdict.status, verdict.reason) == ("False", Reason.BACKUP_OVERDUE)


def test_the_newest_finished_job_failing_is_unhealthy_until_a_later_success() -> None:
    failed = _run("f", BACKUP_COMPONENT, timedelta(hours=1), False)
    earlier = _run("b", BACKUP_COMPONENT, timedelta(hours=3), True)
    later = _run("c", BACKUP_COMPONENT, timedelta(minutes=10), True)
    assert _verdict([earlier, failed]).reason == Reason.BACKUP_FAILED
    assert _verdict([earlier, failed, later]).reason == Reason.BACKUP_SUCCEEDED


def test_a_backup_job_failed_by_its_pod_failure_policy_has_a_client_too_old() -> None:
    failed = replace(
        _run("f", BACKUP_COMPONENT, timedelta(hours=1), False), failure_reason=POD_FAILURE_POLICY
    )
    earlier = _run("b", BACKUP_COMPONENT, timedelta(hours=3), True)
    later = _run("c", BACKUP_COMPONENT, timedelta(minutes=10), True)

    verdict = _verdict([earlier, failed])

    assert (verdict.status, verdict.reason) == ("False", Reason.CLIENT_TOO_OLD)
    assert verdict.message.startswith("backup job f failed at ")
    assert "the image's pg_dump is older than the PostgreSQL server" in verdict.message
    assert _verdict([earlier, failed, later]).reason == Reason.BACKUP_SUCCEEDED


def test_no_backup_yet_is_unknown_until_two_intervals_have_passed() -> None:
    fresh = _verdict([], enabled_since=NOW - timedelta(hours=1))
    assert (fresh.status, fresh.reason) == ("Unknown", Reason.NO_BACKUP_YET)
    stale = _verdict([], enabled_since=NOW - timedelta(days=3))
    assert (stale.status, stale.reason) == ("False", Reason.BACKUP_OVERDUE)


def test_suspended_backups_are_not_overdue() -> None:
    verdict = _verdict([_run("b", BACKUP_COMPONENT, timedelta(days=9), True)], suspended=True)
    assert (verdict.status, verdict.reason) == ("True", Reason.BACKUP_SUSPENDED)


def test_without_a_schedule_only_on_request_backups_count() -> None:
    verdict = _verdict([_run("b", BACKUP_COMPONENT, timedelta(days=90), True)], schedule=None)
    assert verdict.reason == Reason.BACKUP_SUCCEEDED


def test_the_newest_drill_decides_restore_verified() -> None:
    ok = _run("d1", VERIFY_COMPONENT, timedelta(days=2), True)
    broken = _run("d2", VERIFY_COMPONENT, timedelta(days=1), False)
    assert drill_verdict([ok]).reason == Reason.RESTORE_VERIFIED
    assert (drill_verdict([ok, broken]).status, drill_verdict([ok, broken]).reason) == (
        "False",
        Reason.DRILL_FAILED,
    )
    assert drill_verdict([]).reason == Reason.NO_DRILL_YET


def test_schedule_interval_is_the_gap_between_runs() -> None:
    assert schedule_interval(DAILY, NOW) == timedelta(days=1)
    assert schedule_interval("*/15 * * * *", NOW) == timedelta(minutes=15)


# --- a drill that could not run ------------------------------------------------------

NOT_RUN_LINE = (
    "dbkeeper: error: restore drill of backup '20261125T020000Z-1a2b3c' could not run: "
    "cannot create the scratch database: permission denied to create database; "
    "the backup's own verdict is unchanged (passed at 2026-11-24 04:00 UTC)"
)


def _failed_drill_job(name: str, reason: str, failed_at: datetime) -> dict[str, Any]:
    return _job(
        name,
        VERIFY_COMPONENT,
        failed=1,
        conditions=[
            {
                "type": "Failed",
                "status": "True",
                "reason": reason,
                "lastTransitionTime": _stamp(failed_at),
            }
        ],
    )


def _pod(job: str, exit_code: int, message: str, finished: datetime) -> dict[str, Any]:
    return {
        "metadata": {"name": f"{job}-x1", "labels": {JOB_NAME_LABEL: job}},
        "status": {
            "containerStatuses": [
                {
                    "name": VERIFY_COMPONENT,
                    "state": {
                        "terminated": {
                            "exitCode": exit_code,
                            "message": message,
                            "finishedAt": _stamp(finished),
                        }
                    },
                }
            ]
        },
    }


def test_a_drill_job_failed_by_its_pod_failure_policy_could_not_run() -> None:
    run = job_run(_failed_drill_job("d", POD_FAILURE_POLICY, NOW - timedelta(minutes=2)))

    assert (run.succeeded, run.failure_reason, run.drill_not_run) == (
        False,
        POD_FAILURE_POLICY,
        True,
    )


def test_a_drill_job_that_used_up_its_retries_is_a_failed_drill() -> None:
    run = job_run(_failed_drill_job("d", "BackoffLimitExceeded", NOW - timedelta(minutes=2)))

    assert run.drill_not_run is False


def test_a_backup_job_failed_by_a_pod_failure_policy_is_not_a_drill() -> None:
    run = replace(
        _run("b", BACKUP_COMPONENT, timedelta(hours=1), False), failure_reason=POD_FAILURE_POLICY
    )

    assert run.drill_not_run is False


def test_the_pod_s_exit_code_and_termination_message_are_taken_from_the_job_s_own_pod() -> None:
    run = _run("d", VERIFY_COMPONENT, timedelta(minutes=5), False)
    pods = [
        _pod("other", 1, "dbkeeper: error: something else", NOW),
        _pod("d", 1, "first try", NOW - timedelta(minutes=7)),
        _pod("d", DRILL_NOT_RUN_EXIT_CODE, NOT_RUN_LINE, NOW - timedelta(minutes=5)),
    ]

    read = with_pod_exit(run, pods)

    assert (read.exit_code, read.termination_message) == (DRILL_NOT_RUN_EXIT_CODE, NOT_RUN_LINE)
    assert read.drill_not_run


def test_the_exit_code_decides_over_the_job_s_condition() -> None:
    # A pod that exited 1 is a failed drill, whatever the Job's condition says.
    run = replace(
        _run("d", VERIFY_COMPONENT, timedelta(minutes=5), False), failure_reason=POD_FAILURE_POLICY
    )

    assert with_pod_exit(run, [_pod("d", 1, "", NOW)]).drill_not_run is False
    assert with_pod_exit(run, []).drill_not_run is True, "without pods, the condition decides"


def test_a_drill_that_could_not_run_leaves_restore_verified_unknown_with_why() -> None:
    passed = _run("d1", VERIFY_COMPONENT, timedelta(days=1), True)
    not_run = replace(
        _run("d2", VERIFY_COMPONENT, timedelta(minutes=5), False),
        exit_code=DRILL_NOT_RUN_EXIT_CODE,
        termination_message=f"restore drill of backup x: passed\n{NOT_RUN_LINE}\n",
    )

    verdict = drill_verdict([passed, not_run])

    assert (verdict.status, verdict.reason) == ("Unknown", Reason.DRILL_NOT_RUN)
    assert "d2" in verdict.message
    assert "verdict is unchanged" in verdict.message
    assert f"the last drill that ran, d1, succeeded at {_stamp(passed.finished_at or NOW)}" in (
        verdict.message
    )
    assert verdict.message.endswith(NOT_RUN_LINE.removeprefix("dbkeeper: error: "))


def test_a_drill_that_could_not_run_without_a_message_points_to_the_log() -> None:
    not_run = replace(
        _run("d", VERIFY_COMPONENT, timedelta(minutes=5), False), failure_reason=POD_FAILURE_POLICY
    )

    verdict = drill_verdict([not_run])

    assert verdict.reason == Reason.DRILL_NOT_RUN
    assert "no earlier drill ran to its end" in verdict.message
    assert verdict.message.endswith("see its pod's log for why")


def test_a_drill_that_ran_and_failed_is_still_a_failed_drill() -> None:
    failed = replace(_run("d", VERIFY_COMPONENT, timedelta(minutes=5), False), exit_code=1)

    assert (drill_verdict([failed]).status, drill_verdict([failed]).reason) == (
        "False",
        Reason.DRILL_FAILED,
    )


def test_the_last_completed_drill_passes_over_those_that_could_not_run() -> None:
    failed = _run("d1", VERIFY_COMPONENT, timedelta(days=1), False)
    not_run = replace(
        _run("d2", VERIFY_COMPONENT, timedelta(hours=1), False), failure_reason=POD_FAILURE_POLICY
    )

    completed = newest_completed_drill([failed, not_run])

    assert completed is not None
    assert completed.name == "d1"


def test_the_command_s_error_line_is_found_at_the_end_of_a_log() -> None:
    log = "restore drill of backup b: passed in 0.5 s\n  ok  restore\n" + NOT_RUN_LINE + "\n"

    assert command_error(log) == NOT_RUN_LINE.removeprefix("dbkeeper: error: ")
    assert command_error("Traceback (most recent call last):\n  ...") is None
    assert command_error("") is None
    long_line = command_error("dbkeeper: error: " + "x" * 5000)
    assert long_line is not None
    assert len(long_line) == 1000

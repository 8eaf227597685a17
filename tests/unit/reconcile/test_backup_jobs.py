"""What backup and drill Jobs say about a resource's backups: last backup and conditions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from dbkeeper.api import LastBackup, Reason
from dbkeeper.reconcile.backup_jobs import (
    BACKUP_COMPONENT,
    VERIFY_COMPONENT,
    JobRun,
    backup_verdict,
    drill_verdict,
    job_run,
    last_backup,
    schedule_interval,
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

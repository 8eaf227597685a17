"""The drill metric follows the last drill that ran to its end."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from dbkeeper import metrics
from dbkeeper.api.spec import BackupSpec
from dbkeeper.reconcile.backup_jobs import POD_FAILURE_POLICY, VERIFY_COMPONENT, JobRun
from dbkeeper.reconcile.backup_metrics import publish_backups
from dbkeeper.reconcile.runtime import ResourceView

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
SPEC = BackupSpec.model_validate(
    {
        "schedule": "0 2 * * *",
        "verifySchedule": "0 4 * * *",
        "destination": {"persistentVolumeClaim": {"claimName": "backups"}},
    }
)


def _drill(name: str, ago: timedelta, succeeded: bool) -> JobRun:
    return JobRun(name, VERIFY_COMPONENT, NOW - ago - timedelta(minutes=5), NOW - ago, succeeded)


def _verify_success(name: str, runs: list[JobRun]) -> float | None:
    view = ResourceView.from_body({"metadata": {"namespace": "metrics-test", "name": name}})
    publish_backups(view, SPEC, runs, None, NOW - timedelta(days=30), NOW)
    return metrics.REGISTRY.get_sample_value(
        "dbkeeper_backup_last_verify_success", {"namespace": "metrics-test", "name": name}
    )


def _not_run(name: str, ago: timedelta) -> JobRun:
    return replace(_drill(name, ago, False), failure_reason=POD_FAILURE_POLICY)


def test_a_drill_that_could_not_run_keeps_a_passed_drill_s_success() -> None:
    runs = [_drill("d1", timedelta(days=1), True), _not_run("d2", timedelta(hours=1))]

    assert _verify_success("kept-passed", runs) == 1


def test_a_drill_that_could_not_run_keeps_a_failed_drill_s_failure() -> None:
    runs = [_drill("d1", timedelta(days=1), False), _not_run("d2", timedelta(hours=1))]

    assert _verify_success("kept-failed", runs) == 0


def test_only_drills_that_could_not_run_publish_no_outcome() -> None:
    assert _verify_success("never-ran", [_not_run("d1", timedelta(hours=1))]) is None

"""What a resource's backup and restore-drill Jobs say about its backups (pure).

The Jobs (scheduled by the CronJobs, or created on request) are the cluster's record of
backups: the newest finished backup Job decides ``BackupHealthy``, the newest finished
drill decides ``RestoreVerified``, and the newest successful backup is ``lastBackup``.
Nothing here talks to the API; the reconciler hands in the Jobs it listed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from croniter import croniter

from dbkeeper.api import LastBackup, Reason

BACKUP_COMPONENT = "backup"
VERIFY_COMPONENT = "backup-verify"
COMPONENT_LABEL = "app.kubernetes.io/component"
OVERDUE_INTERVALS = 2
"""A backup older than this many schedule intervals is overdue."""

ConditionValue = Literal["True", "False", "Unknown"]


@dataclass(frozen=True)
class JobRun:
    """One backup or drill Job: what it is and how it ended (``succeeded`` None: running)."""

    name: str
    component: str
    started_at: datetime | None
    finished_at: datetime | None
    succeeded: bool | None
    uid: str = ""

    @property
    def finished(self) -> bool:
        return self.succeeded is not None

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return max(0.0, (self.finished_at - self.started_at).total_seconds())


@dataclass(frozen=True)
class Verdict:
    """One condition's value as the Jobs show it."""

    status: ConditionValue
    reason: Reason
    message: str


def _time(raw: object) -> datetime | None:
    if not isinstance(raw, str) or not raw:
        return None
    try:
        return datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None


def job_run(job: Mapping[str, Any]) -> JobRun:
    """Read one Job object: Complete/Failed conditions, else the succeeded/failed counts."""
    metadata = job.get("metadata") or {}
    status = job.get("status") or {}
    succeeded: bool | None = None
    finished_at = None
    for condition in status.get("conditions") or []:
        if condition.get("status") != "True":
            continue
        if condition.get("type") == "Complete":
            succeeded, finished_at = True, _time(condition.get("lastTransitionTime"))
        elif condition.get("type") == "Failed":
            succeeded, finished_at = False, _time(condition.get("lastTransitionTime"))
    if succeeded is None and status.get("succeeded"):
        succeeded = True
    if succeeded is None and status.get("failed"):
        backoff_limit = int((job.get("spec") or {}).get("backoffLimit", 6))
        if int(status["failed"]) > backoff_limit:
            succeeded = False
    if succeeded:
        finished_at = _time(status.get("completionTime")) or finished_at
    if succeeded is not None and finished_at is None:
        finished_at = _time(metadata.get("creationTimestamp"))
    return JobRun(
        name=str(metadata.get("name", "")),
        component=str((metadata.get("labels") or {}).get(COMPONENT_LABEL, "")),
        started_at=_time(status.get("startTime")),
        finished_at=finished_at,
        succeeded=succeeded,
        uid=str(metadata.get("uid", "")),
    )


def newest_finished(runs: Iterable[JobRun], component: str) -> JobRun | None:
    finished = [r for r in runs if r.component == component and r.finished_at is not None]
    return max(finished, key=lambda r: (r.finished_at, r.name), default=None)


def newest_success(runs: Iterable[JobRun], component: str) -> JobRun | None:
    return newest_finished((r for r in runs if r.succeeded), component)


def schedule_interval(schedule: str, now: datetime) -> timedelta:
    """The time between the schedule's next two runs after ``now``."""
    cron = croniter(schedule, now)
    first = cron.get_next(datetime)
    second = cron.get_next(datetime)
    return second - first


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def last_backup(previous: LastBackup | None, runs: Iterable[JobRun]) -> LastBackup | None:
    """The newest successful backup: from the Jobs, or the one recorded before when the
    Jobs that proved it have since been cleaned up. ``verifiedAt`` is the newest
    successful drill that finished after it."""
    runs = list(runs)
    newest = newest_success(runs, BACKUP_COMPONENT)
    current = previous
    if (
        newest is not None
        and newest.finished_at is not None
        and (previous is None or previous.finished_at < newest.finished_at)
    ):
        current = LastBackup(id=newest.name, finished_at=newest.finished_at)
    if current is None:
        return None
    drill = newest_success(runs, VERIFY_COMPONENT)
    if (
        drill is not None
        and drill.finished_at is not None
        and drill.finished_at >= current.finished_at
        and (current.verified_at is None or drill.finished_at > current.verified_at)
    ):
        current = current.model_copy(update={"verified_at": drill.finished_at})
    return current


def backup_verdict(
    runs: Iterable[JobRun],
    latest: LastBackup | None,
    schedule: str | None,
    suspended: bool,
    enabled_since: datetime,
    now: datetime,
) -> Verdict:
    """BackupHealthy: the newest finished backup Job, weighed against the schedule."""
    newest = newest_finished(runs, BACKUP_COMPONENT)
    if newest is not None and newest.succeeded is False:
        failed_at = newest.finished_at or now
        if latest is None or latest.finished_at <= failed_at:
            return Verdict(
                "False",
                Reason.BACKUP_FAILED,
                f"backup job {newest.name} failed at {_stamp(failed_at)}; see its pod's log",
            )
    if suspended:
        if latest is None:
            return Verdict("Unknown", Reason.BACKUP_SUSPENDED, "scheduled backups are suspended")
        return Verdict(
            "True",
            Reason.BACKUP_SUSPENDED,
            f"scheduled backups are suspended; last backup {latest.id} at "
            f"{_stamp(latest.finished_at)}",
        )
    allowed = None
    if schedule is not None:
        allowed = OVERDUE_INTERVALS * schedule_interval(schedule, now)
    if latest is None:
        if allowed is not None and now - enabled_since > allowed:
            return Verdict(
                "False",
                Reason.BACKUP_OVERDUE,
                f"no backup since backups were enabled at {_stamp(enabled_since)} "
                f"(schedule {schedule!r})",
            )
        return Verdict("Unknown", Reason.NO_BACKUP_YET, "no backup has finished yet")
    if allowed is not None and now - latest.finished_at > allowed:
        return Verdict(
            "False",
            Reason.BACKUP_OVERDUE,
            f"last backup {latest.id} finished at {_stamp(latest.finished_at)}, more than "
            f"{OVERDUE_INTERVALS} intervals of schedule {schedule!r} ago",
        )
    return Verdict(
        "True",
        Reason.BACKUP_SUCCEEDED,
        f"last backup {latest.id} finished at {_stamp(latest.finished_at)}",
    )


def drill_verdict(runs: Iterable[JobRun]) -> Verdict:
    """RestoreVerified: the newest finished restore drill."""
    newest = newest_finished(runs, VERIFY_COMPONENT)
    if newest is None or newest.finished_at is None:
        return Verdict("Unknown", Reason.NO_DRILL_YET, "no restore drill has finished yet")
    if newest.succeeded:
        return Verdict(
            "True",
            Reason.RESTORE_VERIFIED,
            f"restore drill {newest.name} succeeded at {_stamp(newest.finished_at)}",
        )
    return Verdict(
        "False",
        Reason.DRILL_FAILED,
        f"restore drill {newest.name} failed at {_stamp(newest.finished_at)}; see its pod's log",
    )

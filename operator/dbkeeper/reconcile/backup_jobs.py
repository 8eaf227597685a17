"""What a resource's backup and restore-drill Jobs say about its backups (pure).

The Jobs (scheduled by the CronJobs, or created on request) are the cluster's record of
backups: the newest finished backup Job decides ``BackupHealthy``, the newest finished
drill decides ``RestoreVerified``, and the newest successful backup is ``lastBackup``.
Nothing here talks to the API; the reconciler hands in the Jobs it listed, and the pods
of a drill Job that failed.

A drill Job that failed is a failed drill (the backup did not restore or verify:
``DrillFailed``) unless its drill could not run: ``backup verify`` exited
DRILL_NOT_RUN_EXIT_CODE, seen on the pod's container, or in the Job's ``Failed``
condition of reason ``PodFailurePolicy`` when the pods are gone (see
``manifests.backup``). Such a drill judged nothing: ``RestoreVerified`` turns Unknown
with reason ``DrillNotRun`` (``MissingPrivilege`` when the line names a privilege the
drill's role lacks) and the command's own line on why, and the metric of the last
drill's outcome keeps the outcome of the last drill that ran to its end.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from croniter import croniter

from dbkeeper.api import Condition, LastBackup, Reason
from dbkeeper.backup.errors import DRILL_NOT_RUN_EXIT_CODE
from dbkeeper.backup.privileges import names_missing_privilege

# Re-exported: the components are defined with the objects that carry them.
from dbkeeper.manifests.backup import BACKUP_COMPONENT as BACKUP_COMPONENT
from dbkeeper.manifests.backup import VERIFY_COMPONENT as VERIFY_COMPONENT

COMPONENT_LABEL = "app.kubernetes.io/component"
JOB_NAME_LABEL = "job-name"
"""The label the Job controller puts on a Job's pods."""
POD_FAILURE_POLICY = "PodFailurePolicy"
"""The reason of a Job's Failed condition when a FailJob rule of its policy matched."""
_ERROR_PREFIX = "dbkeeper: error: "
_MESSAGE_LIMIT = 1000
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
    failure_reason: str = ""
    """The reason of the Job's Failed condition (``BackoffLimitExceeded``,
    ``PodFailurePolicy``, ``DeadlineExceeded``…); empty unless it failed."""
    exit_code: int | None = None
    """The exit code of the container of the Job's last pod, when its pods were read."""
    termination_message: str = ""

    @property
    def finished(self) -> bool:
        return self.succeeded is not None

    @property
    def drill_not_run(self) -> bool:
        """A drill Job whose drill judged nothing: it could not run, or could not record
        its passing outcome (``backup verify`` exited DRILL_NOT_RUN_EXIT_CODE)."""
        if self.component != VERIFY_COMPONENT or self.succeeded is not False:
            return False
        if self.exit_code is not None:
            return self.exit_code == DRILL_NOT_RUN_EXIT_CODE
        return self.failure_reason == POD_FAILURE_POLICY

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
    failure_reason = ""
    for condition in status.get("conditions") or []:
        if condition.get("status") != "True":
            continue
        if condition.get("type") == "Complete":
            succeeded, finished_at = True, _time(condition.get("lastTransitionTime"))
        elif condition.get("type") == "Failed":
            succeeded, finished_at = False, _time(condition.get("lastTransitionTime"))
            failure_reason = str(condition.get("reason") or "")
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
        failure_reason=failure_reason,
    )


def with_pod_exit(run: JobRun, pods: Iterable[Mapping[str, Any]]) -> JobRun:
    """``run`` with the exit code and termination message of its container in the
    newest of ``pods`` that ended (the Job's pods); unchanged when none did."""
    ended: list[tuple[datetime, str, Mapping[str, Any]]] = []
    for pod in pods:
        labels = (pod.get("metadata") or {}).get("labels") or {}
        if labels.get(JOB_NAME_LABEL) != run.name:
            continue
        for container in (pod.get("status") or {}).get("containerStatuses") or []:
            if container.get("name") != run.component:
                continue
            for state in (container.get("state"), container.get("lastState")):
                terminated = (state or {}).get("terminated")
                if terminated and isinstance(terminated.get("exitCode"), int):
                    at = _time(terminated.get("finishedAt")) or datetime.min.replace(tzinfo=UTC)
                    ended.append((at, str(terminated.get("containerID", "")), terminated))
    if not ended:
        return run
    _, _, newest = max(ended, key=lambda item: (item[0], item[1]))
    return replace(
        run,
        exit_code=int(newest["exitCode"]),
        termination_message=str(newest.get("message") or ""),
    )


def command_error(termination_message: str) -> str | None:
    """The one error line of a dbkeeper command in a termination message (the end of
    its log), without its ``dbkeeper: error:`` prefix and cut to a readable length."""
    lines = [line.strip() for line in termination_message.splitlines()]
    errors = [line[len(_ERROR_PREFIX) :] for line in lines if line.startswith(_ERROR_PREFIX)]
    if not errors or not errors[-1]:
        return None
    line = errors[-1]
    return line if len(line) <= _MESSAGE_LIMIT else f"{line[: _MESSAGE_LIMIT - 1]}…"


def newest_finished(runs: Iterable[JobRun], component: str) -> JobRun | None:
    finished = [r for r in runs if r.component == component and r.finished_at is not None]
    return max(finished, key=lambda r: (r.finished_at, r.name), default=None)


def newest_success(runs: Iterable[JobRun], component: str) -> JobRun | None:
    return newest_finished((r for r in runs if r.succeeded), component)


def newest_completed_drill(runs: Iterable[JobRun]) -> JobRun | None:
    """The newest drill that judged the backup, passed or failed (not one that could
    not run)."""
    return newest_finished((r for r in runs if not r.drill_not_run), VERIFY_COMPONENT)


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
        if (latest is None or latest.finished_at <= failed_at) and (
            newest.failure_reason == POD_FAILURE_POLICY
        ):
            # The backup Job's only FailJob rule: `backup create` exited
            # CLIENT_TOO_OLD_EXIT_CODE (see manifests.backup); no backup can be taken.
            return Verdict(
                "False",
                Reason.CLIENT_TOO_OLD,
                f"backup job {newest.name} failed at {_stamp(failed_at)}: the image's pg_dump "
                "is older than the PostgreSQL server, so no backup can be taken; use a "
                "dbkeeper image whose pg_dump is at least the server's major (its pod's log "
                "names both)",
            )
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
    """RestoreVerified: the newest finished restore drill; one that could not run says
    so, with the last drill that did."""
    runs = list(runs)
    newest = newest_finished(runs, VERIFY_COMPONENT)
    if newest is None or newest.finished_at is None:
        return Verdict("Unknown", Reason.NO_DRILL_YET, "no restore drill has finished yet")
    if newest.succeeded:
        return Verdict(
            "True",
            Reason.RESTORE_VERIFIED,
            f"restore drill {newest.name} succeeded at {_stamp(newest.finished_at)}",
        )
    if newest.drill_not_run:
        why = command_error(newest.termination_message) or ""
        reason = Reason.MISSING_PRIVILEGE if names_missing_privilege(why) else Reason.DRILL_NOT_RUN
        return Verdict("Unknown", reason, _not_run_message(newest, runs))
    return Verdict(
        "False",
        Reason.DRILL_FAILED,
        f"restore drill {newest.name} failed at {_stamp(newest.finished_at)}; see its pod's log",
    )


DRILLS_HELD = "restore drills are suspended until the database role has what they need: "


def drills_held(refusal: str) -> Verdict:
    """RestoreVerified while the drill's role lacks a privilege the operator found
    missing itself: the drill CronJob is suspended, so no drill runs to fail on it."""
    return Verdict("Unknown", Reason.MISSING_PRIVILEGE, DRILLS_HELD + refusal)


def held_refusal(previous: Condition | None) -> str | None:
    """The refusal a RestoreVerified condition holds drills for, if it does: what a pass
    that cannot ask the server keeps (rather than resuming drills that would stop)."""
    if previous is None or previous.reason != Reason.MISSING_PRIVILEGE:
        return None
    if not previous.message.startswith(DRILLS_HELD):
        return None
    return previous.message.removeprefix(DRILLS_HELD)


def _not_run_message(newest: JobRun, runs: list[JobRun]) -> str:
    assert newest.finished_at is not None
    why = command_error(newest.termination_message)
    completed = newest_completed_drill(runs)
    last = (
        "no earlier drill ran to its end"
        if completed is None or completed.finished_at is None
        else f"the last drill that ran, {completed.name}, "
        f"{'succeeded' if completed.succeeded else 'failed'} at {_stamp(completed.finished_at)}"
    )
    return (
        f"restore drill {newest.name} ended at {_stamp(newest.finished_at)} without judging "
        f"the backup, whose verdict is unchanged ({last}): "
        + (why if why is not None else "see its pod's log for why")
    )

"""The backups of one DatabaseSchema in a cluster: CronJobs, on-demand Jobs, their outcome.

``spec.backup`` becomes a backup CronJob (``schedule``) and a restore-drill CronJob
(``verifySchedule``), both owned by the resource; removing either from the spec deletes
its CronJob. The annotation ``dbkeeper.dev/backup-now`` asks for one backup: a Job is
created once per annotation value, and the value is recorded in
``status.lastBackupRequest``. The Jobs' outcome becomes ``status.lastBackup`` and the
conditions ``BackupHealthy`` and ``RestoreVerified``; the pods of a drill Job that
failed tell a drill that could not run from a failed one (see ``backup_jobs``). When
drills are scheduled and the pass reached the database, the owner role is checked for
what a drill needs (CREATEDB): while it lacks it, the drill CronJob is suspended and
``RestoreVerified`` says ``MissingPrivilege`` with the statement that grants it.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import psycopg

from dbkeeper.api import (
    ANNOTATION_BACKUP_NOW,
    ConditionType,
    DatabaseSchemaSpec,
    Reason,
)
from dbkeeper.api.spec import BackupSpec
from dbkeeper.backup.privileges import drill_refusal
from dbkeeper.conninfo import ConnInfo
from dbkeeper.kube import KubeError
from dbkeeper.manifests.backup import (
    BackupJobSettings,
    backup_cronjob_name,
    build_backup_cronjob,
    build_backup_job,
    build_verify_cronjob,
    verify_cronjob_name,
)
from dbkeeper.reconcile.backup_input import job_selector, job_settings, on_demand_job_name
from dbkeeper.reconcile.backup_jobs import (
    JOB_NAME_LABEL,
    VERIFY_COMPONENT,
    JobRun,
    backup_verdict,
    drill_verdict,
    drills_held,
    held_refusal,
    job_run,
    last_backup,
    newest_finished,
    with_pod_exit,
)
from dbkeeper.reconcile.backup_metrics import publish_backups
from dbkeeper.reconcile.kube_runtime import KubeRuntime
from dbkeeper.reconcile.runtime import ResourceView
from dbkeeper.reconcile.status_report import StatusReport
from dbkeeper.settings import Settings

_CONFLICT = 409


def _endpoint(spec: DatabaseSchemaSpec, primary: ConnInfo | None) -> tuple[str, int]:
    """Where the backup pods connect: the primary the pass found, else the first host
    (pg_dump also works against a standby; a later pass repoints the CronJobs)."""
    if primary is not None:
        return primary.host, primary.port
    endpoints = spec.database.endpoints()
    return endpoints[0].host, endpoints[0].port


def reconcile_backups(
    view: ResourceView,
    spec: DatabaseSchemaSpec,
    runtime: KubeRuntime,
    settings: Settings,
    report: StatusReport,
    primary: ConnInfo | None,
) -> None:
    """Apply or remove the CronJobs, act on a backup request, report the Jobs' outcome.

    ``primary`` is the database as the pass observed it, when it could."""
    backup = spec.backup
    claim = backup.destination.persistent_volume_claim if backup is not None else None
    in_cluster = backup is not None and (claim is not None or backup.destination.s3 is not None)
    if backup is None or not in_cluster:
        if _had_backups(report):
            for name in (backup_cronjob_name(view.name), verify_cronjob_name(view.name)):
                runtime.delete_owned(view, "CronJob", name)
        if backup is None:
            report.drop_condition(ConditionType.BACKUP_HEALTHY)
            report.drop_condition(ConditionType.RESTORE_VERIFIED)
            return
        report.condition(
            ConditionType.BACKUP_HEALTHY,
            "False",
            Reason.INVALID_SPEC,
            "spec.backup.destination.directory is for runs outside a cluster; backup pods "
            "need spec.backup.destination.persistentVolumeClaim or s3",
            event="Warning",
        )
        return
    host, port = _endpoint(spec, primary)
    job = job_settings(
        view, spec, backup, claim.claim_name if claim else None, host, port, settings
    )
    if report.status.condition(ConditionType.BACKUP_HEALTHY) is None:
        # Recorded before the CronJobs exist, so removing backups later finds them even
        # if creating them fails half-way.
        report.condition(
            ConditionType.BACKUP_HEALTHY,
            "Unknown",
            Reason.NO_BACKUP_YET,
            "creating the backup CronJobs",
        )
    refusal = _drill_refusal(backup, primary, report)
    _apply_cronjobs(view, runtime, job, backup, drills_suspended=refusal is not None)
    _act_on_request(view, runtime, job, report)
    jobs = runtime.kube.list("Job", view.namespace, job_selector(view.name))
    runs = _with_drill_exit(view, runtime, [job_run(j) for j in jobs])
    _report_runs(view, runtime, backup, runs, report, refusal)


def _drill_refusal(
    backup: BackupSpec, primary: ConnInfo | None, report: StatusReport
) -> str | None:
    """Why drills must wait for a privilege of the owner role, when they must: asked of
    the server when the pass reached it, else as the last pass found it."""
    if backup.verify_schedule is None:
        return None
    if primary is not None:
        try:
            return drill_refusal(primary)
        except psycopg.Error:
            pass
    return held_refusal(report.status.condition(ConditionType.RESTORE_VERIFIED))


def _with_drill_exit(view: ResourceView, runtime: KubeRuntime, runs: list[JobRun]) -> list[JobRun]:
    """The runs, the newest drill's with how its container ended when it failed: only
    its exit code tells a drill that could not run from one that failed, and only its
    termination message says why. One list of pods, and only in that case."""
    newest = newest_finished(runs, VERIFY_COMPONENT)
    if newest is None or newest.succeeded is not False:
        return runs
    pods = runtime.kube.list("Pod", view.namespace, f"{JOB_NAME_LABEL}={newest.name}")
    return [with_pod_exit(run, pods) if run is newest else run for run in runs]


def destination_of(backup: BackupSpec) -> str | None:
    """The destination in words, as status shows it."""
    s3, claim = backup.destination.s3, backup.destination.persistent_volume_claim
    if s3 is not None:
        return s3.url
    return f"pvc/{claim.claim_name}" if claim is not None else None


def _had_backups(report: StatusReport) -> bool:
    """Whether backups were set up before: only then is there anything to delete."""
    return any(
        report.status.condition(kind) is not None
        for kind in (ConditionType.BACKUP_HEALTHY, ConditionType.RESTORE_VERIFIED)
    )


def _apply_cronjobs(
    view: ResourceView,
    runtime: KubeRuntime,
    job: BackupJobSettings,
    backup: BackupSpec,
    *,
    drills_suspended: bool,
) -> None:
    """The CronJobs the spec asks for; the drill's is suspended while its role lacks a
    privilege the drill needs (a drill Job would only stop on it)."""
    drill_job = replace(job, suspend=True) if drills_suspended else job
    scheduled = (
        (backup_cronjob_name(view.name), backup.schedule, build_backup_cronjob, job),
        (verify_cronjob_name(view.name), backup.verify_schedule, build_verify_cronjob, drill_job),
    )
    for name, schedule, build, settings in scheduled:
        if schedule is None:
            runtime.delete_owned(view, "CronJob", name)
        else:
            runtime.apply(view, build(settings, schedule))


def _act_on_request(
    view: ResourceView, runtime: KubeRuntime, job: BackupJobSettings, report: StatusReport
) -> None:
    request = view.annotations.get(ANNOTATION_BACKUP_NOW, "").strip()
    if not request or request == report.status.last_backup_request:
        return
    name = on_demand_job_name(view.name, request)
    try:
        runtime.kube.create(build_backup_job(job, name))
    except KubeError as exc:
        # Created by an earlier pass that could not record the request: same Job.
        if exc.status != _CONFLICT:
            raise
    report.update(last_backup_request=request)
    report.event("Normal", "BackupRequested", f"backup requested ({request}): job {name}")


def _creation_time(runtime: KubeRuntime, view: ResourceView, name: str) -> datetime | None:
    found = runtime.kube.get("CronJob", view.namespace, name)
    raw = ((found or {}).get("metadata") or {}).get("creationTimestamp")
    if not isinstance(raw, str):
        return None
    try:
        return datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None


def _report_runs(
    view: ResourceView,
    runtime: KubeRuntime,
    backup: BackupSpec,
    runs: list[JobRun],
    report: StatusReport,
    refusal: str | None,
) -> None:
    now = report.now
    previous = report.status.last_backup
    latest = last_backup(previous, runs)
    if latest is not None and (previous is None or previous.id != latest.id):
        # Where it went when it was taken, not where the spec points now.
        latest = latest.model_copy(update={"destination": destination_of(backup)})
    report.update(last_backup=latest)
    enabled_since = _creation_time(runtime, view, backup_cronjob_name(view.name)) or now
    verdict = backup_verdict(runs, latest, backup.schedule, backup.suspend, enabled_since, now)
    report.condition(
        ConditionType.BACKUP_HEALTHY,
        verdict.status,
        verdict.reason,
        verdict.message,
        event="Warning" if verdict.status == "False" else None,
    )
    if backup.verify_schedule is not None or any(r.component == VERIFY_COMPONENT for r in runs):
        drill = drills_held(refusal) if refusal is not None else drill_verdict(runs)
        report.condition(
            ConditionType.RESTORE_VERIFIED,
            drill.status,
            drill.reason,
            drill.message,
            event="Warning"
            if drill.status == "False"
            or drill.reason in (Reason.DRILL_NOT_RUN, Reason.MISSING_PRIVILEGE)
            else None,
        )
    else:
        report.drop_condition(ConditionType.RESTORE_VERIFIED)
    publish_backups(view, backup, runs, latest, enabled_since, now)

"""Pure builders of the backup CronJobs and the on-demand backup Job.

Two CronJobs per resource: ``schedule`` runs ``dbkeeper backup create`` (which also
prunes by the retention settings), ``verifySchedule`` runs ``dbkeeper backup verify``
(a restore drill). Both run the operator's own image with the credentials from the
resource's Secret as environment variables (never literal values), the destination
PersistentVolumeClaim mounted, or, for a bucket, the standard ``AWS_*`` variables (keys
as Secret references only) and a staging emptyDir for the one dump on its way, and a
restricted security context. The connection
string holds no password: libpq reads it from ``PGPASSWORD``. The verify job's user
needs CREATEDB, since a drill restores into a scratch database.

A drill that could not run (``backup verify`` exits DRILL_NOT_RUN_EXIT_CODE) is not a
failed drill: the verify Job's pod failure policy fails the Job at once on that exit
code (its only FailJob rule, so the Job's ``Failed`` condition has reason
``PodFailurePolicy``), and the container's termination message is the end of its log,
where the command's one error line says why. ``reconcile.backup_jobs`` reads both.
Likewise a backup whose pg_dump is older than the server (``backup create`` exits
CLIENT_TOO_OLD_EXIT_CODE) fails its Job at once: a retry cannot help.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from croniter import croniter

from dbkeeper.api.spec import S3Destination
from dbkeeper.audit.checkpoint import CHECKPOINT_ENV
from dbkeeper.backup.errors import CLIENT_TOO_OLD_EXIT_CODE, DRILL_NOT_RUN_EXIT_CODE
from dbkeeper.backup.s3.location import SSE_KMS_KEY_VARIABLE, SSE_VARIABLE
from dbkeeper.backup.staging import STAGING_VARIABLE
from dbkeeper.backup.store import DESTINATION_VARIABLE
from dbkeeper.manifests import HASH_ANNOTATION, database_env

SPEC_HASH_ANNOTATION = HASH_ANNOTATION
BACKUP_COMPONENT = "backup"
VERIFY_COMPONENT = "backup-verify"
"""The ``app.kubernetes.io/component`` of the backup and of the drill objects, and the
name of their container."""
_CRONJOB_NAME_MAX = 52  # the controller appends an 11-character suffix to Job names
_JOB_NAME_MAX = 63
# A writable emptyDir: the root filesystem is read-only.
SCRATCH_DIR = "/tmp"  # noqa: S108 - a private emptyDir inside the pod, not a shared /tmp
STAGING_DIR = "/staging"
"""An emptyDir where a backup to object storage is dumped before its upload."""
WEB_IDENTITY_DIR = "/var/run/secrets/dbkeeper/web-identity"

Manifest = dict[str, Any]


@dataclass(frozen=True)
class BackupJobSettings:
    """What the backup jobs of one DatabaseSchema need to know."""

    resource_name: str
    namespace: str
    image: str
    database_host: str
    database_port: int
    database_name: str
    credentials_secret: str
    claim_name: str | None
    owner_reference: Mapping[str, Any]
    s3: S3Destination | None = None
    """The bucket, when backups go to object storage instead of the claim."""
    service_account_name: str | None = None
    keep_last: int | None = None
    max_age: str | None = None
    jobs: int = 2
    sslmode: str | None = None
    image_pull_policy: str = "IfNotPresent"
    run_as_user: int = 65532
    mount_path: str = "/backups"
    active_deadline_seconds: int = 6 * 3600
    history_limit_successful: int = 3
    history_limit_failed: int = 3
    suspend: bool = False
    """Scheduled runs paused (``spec.backup.suspend``); on-demand Jobs still run."""
    audit_checkpoint: str | None = None
    """The newest audit checkpoint (one JSON line) the backups record in their manifest."""
    resources: Mapping[str, Any] = field(
        default_factory=lambda: {
            "requests": {"cpu": "100m", "memory": "128Mi"},
            "limits": {"memory": "1Gi"},
        }
    )


def backup_cronjob_name(resource_name: str) -> str:
    return _bounded_name(f"{resource_name}-backup", _CRONJOB_NAME_MAX)


def verify_cronjob_name(resource_name: str) -> str:
    return _bounded_name(f"{resource_name}-backup-verify", _CRONJOB_NAME_MAX)


def build_backup_cronjob(settings: BackupJobSettings, schedule: str) -> Manifest:
    """The CronJob that takes (and prunes) backups on ``schedule``."""
    return _cronjob(
        settings,
        backup_cronjob_name(settings.resource_name),
        schedule,
        BACKUP_COMPONENT,
        _create_args(settings),
    )


def build_verify_cronjob(settings: BackupJobSettings, verify_schedule: str) -> Manifest:
    """The CronJob that runs a restore drill of the newest backup on ``verify_schedule``."""
    return _cronjob(
        settings,
        verify_cronjob_name(settings.resource_name),
        verify_schedule,
        VERIFY_COMPONENT,
        ["backup", "verify"],
    )


def build_backup_job(settings: BackupJobSettings, job_name: str) -> Manifest:
    """A Job for one on-demand backup (same pod as the scheduled one)."""
    name = _bounded_name(job_name, _JOB_NAME_MAX)
    job: Manifest = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": _metadata(settings, name, BACKUP_COMPONENT),
        "spec": {
            **_job_spec(settings, BACKUP_COMPONENT, _create_args(settings)),
            "ttlSecondsAfterFinished": 86400,
        },
    }
    return _with_spec_hash(job)


def _create_args(settings: BackupJobSettings) -> list[str]:
    args = ["backup", "create", "--jobs", str(settings.jobs)]
    if settings.keep_last is not None:
        args += ["--keep-last", str(settings.keep_last)]
    if settings.max_age is not None:
        args += ["--max-age", settings.max_age]
    return args


def _cronjob(
    settings: BackupJobSettings, name: str, schedule: str, component: str, args: list[str]
) -> Manifest:
    if not croniter.is_valid(schedule):
        raise ValueError(
            f"schedule {schedule!r} is not a valid cron expression "
            "(five fields: minute hour day-of-month month day-of-week)"
        )
    labels = _labels(settings, component)
    cronjob: Manifest = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": _metadata(settings, name, component),
        "spec": {
            "schedule": schedule,
            "suspend": settings.suspend,
            "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": 600,
            "successfulJobsHistoryLimit": settings.history_limit_successful,
            "failedJobsHistoryLimit": settings.history_limit_failed,
            "jobTemplate": {
                "metadata": {"labels": labels},
                "spec": _job_spec(settings, component, args),
            },
        },
    }
    return _with_spec_hash(cronjob)


def _labels(settings: BackupJobSettings, component: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "dbkeeper",
        "app.kubernetes.io/instance": settings.resource_name,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/managed-by": "dbkeeper",
    }


def _metadata(settings: BackupJobSettings, name: str, component: str) -> Manifest:
    return {
        "name": name,
        "namespace": settings.namespace,
        "labels": _labels(settings, component),
        "ownerReferences": [dict(settings.owner_reference)],
    }


def _env(settings: BackupJobSettings) -> list[Manifest]:
    return [
        *database_env(
            settings.database_host,
            settings.database_port,
            settings.database_name,
            settings.sslmode,
            settings.credentials_secret,
        ),
        *(_s3_env(settings.s3) if settings.s3 is not None else _claim_env(settings)),
        *(
            [{"name": CHECKPOINT_ENV, "value": settings.audit_checkpoint}]
            if settings.audit_checkpoint
            else []
        ),
        {"name": "HOME", "value": SCRATCH_DIR},
    ]


def _claim_env(settings: BackupJobSettings) -> list[Manifest]:
    return [{"name": "DBKEEPER_BACKUP_DIR", "value": settings.mount_path}]


def _s3_env(s3: S3Destination) -> list[Manifest]:
    """Where and how the pod reaches the bucket: the standard AWS variables, the keys
    only as references to their Secret, never values."""
    url = s3.url
    env: list[Manifest] = [
        {"name": DESTINATION_VARIABLE, "value": url},
        {"name": STAGING_VARIABLE, "value": STAGING_DIR},
    ]
    if s3.endpoint is not None:
        env.append({"name": "AWS_ENDPOINT_URL", "value": s3.endpoint})
    if s3.region is not None:
        env.append({"name": "AWS_REGION", "value": s3.region})
    if s3.credentials_secret is not None:
        for key, optional in (
            ("AWS_ACCESS_KEY_ID", False),
            ("AWS_SECRET_ACCESS_KEY", False),
            ("AWS_SESSION_TOKEN", True),
        ):
            ref: Manifest = {"name": s3.credentials_secret, "key": key}
            if optional:
                ref["optional"] = True
            env.append({"name": key, "valueFrom": {"secretKeyRef": ref}})
    if s3.web_identity is not None:
        env += [
            {"name": "AWS_ROLE_ARN", "value": s3.web_identity.role_arn},
            {"name": "AWS_WEB_IDENTITY_TOKEN_FILE", "value": f"{WEB_IDENTITY_DIR}/token"},
        ]
    sse = s3.server_side_encryption
    if sse is not None:
        env.append({"name": SSE_VARIABLE, "value": sse.type})
        if sse.kms_key_id is not None:
            env.append({"name": SSE_KMS_KEY_VARIABLE, "value": sse.kms_key_id})
    return env


def _volumes(settings: BackupJobSettings) -> tuple[list[Manifest], list[Manifest]]:
    """The pod's volumes and the container's mounts: the claim, or the staging folder
    (and the web identity's token) of an object-storage destination."""
    mounts: list[Manifest] = [{"name": "tmp", "mountPath": SCRATCH_DIR}]
    volumes: list[Manifest] = [{"name": "tmp", "emptyDir": {}}]
    s3 = settings.s3
    if s3 is None:
        mounts.insert(0, {"name": "backups", "mountPath": settings.mount_path})
        volumes.insert(
            0, {"name": "backups", "persistentVolumeClaim": {"claimName": settings.claim_name}}
        )
        return volumes, mounts
    staging: Manifest = {}
    if s3.staging_size_limit is not None:
        staging["sizeLimit"] = s3.staging_size_limit
    mounts.append({"name": "staging", "mountPath": STAGING_DIR})
    volumes.append({"name": "staging", "emptyDir": staging})
    if s3.web_identity is not None:
        mounts.append({"name": "web-identity", "mountPath": WEB_IDENTITY_DIR, "readOnly": True})
        volumes.append(
            {
                "name": "web-identity",
                "projected": {
                    "sources": [
                        {
                            "serviceAccountToken": {
                                "audience": s3.web_identity.audience,
                                "expirationSeconds": 3600,
                                "path": "token",
                            }
                        }
                    ]
                },
            }
        )
    return volumes, mounts


def _fail_at_once_policy(container: str, exit_code: int) -> Manifest:
    """Fail the Job at once on ``exit_code``: no retry, and a Failed condition of reason
    PodFailurePolicy that tells this ending from the others. For a drill Job: its drill
    could not run; for a backup Job: its pg_dump is older than the server."""
    return {
        "rules": [
            {
                "action": "FailJob",
                "onExitCodes": {
                    "containerName": container,
                    "operator": "In",
                    "values": [exit_code],
                },
            }
        ]
    }


def _job_spec(settings: BackupJobSettings, component: str, args: list[str]) -> Manifest:
    seccomp = {"type": "RuntimeDefault"}
    exit_code = (
        DRILL_NOT_RUN_EXIT_CODE if component == VERIFY_COMPONENT else CLIENT_TOO_OLD_EXIT_CODE
    )
    policy = {"podFailurePolicy": _fail_at_once_policy(component, exit_code)}
    volumes, mounts = _volumes(settings)
    account = (
        {"serviceAccountName": settings.service_account_name}
        if settings.service_account_name is not None
        else {}
    )
    return {
        "backoffLimit": 1,
        **policy,
        "activeDeadlineSeconds": settings.active_deadline_seconds,
        "template": {
            "metadata": {"labels": _labels(settings, component)},
            "spec": {
                "restartPolicy": "Never",
                **account,
                "automountServiceAccountToken": False,
                "securityContext": {
                    "runAsNonRoot": True,
                    "runAsUser": settings.run_as_user,
                    "runAsGroup": settings.run_as_user,
                    "fsGroup": settings.run_as_user,
                    "seccompProfile": seccomp,
                },
                "containers": [
                    {
                        "name": component,
                        "image": settings.image,
                        "imagePullPolicy": settings.image_pull_policy,
                        "command": ["dbkeeper"],
                        "args": args,
                        # The last lines of the log (the one error line) when it fails.
                        "terminationMessagePolicy": "FallbackToLogsOnError",
                        "env": _env(settings),
                        "resources": copy.deepcopy(dict(settings.resources)),
                        "volumeMounts": mounts,
                        "securityContext": {
                            "runAsNonRoot": True,
                            "allowPrivilegeEscalation": False,
                            "readOnlyRootFilesystem": True,
                            "capabilities": {"drop": ["ALL"]},
                            "seccompProfile": seccomp,
                        },
                    }
                ],
                "volumes": volumes,
            },
        },
    }


def _bounded_name(name: str, limit: int) -> str:
    if len(name) <= limit:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[: limit - 9].rstrip('-')}-{digest}"


def _with_spec_hash(obj: Manifest) -> Manifest:
    digest = hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]
    obj["metadata"]["annotations"] = {SPEC_HASH_ANNOTATION: digest}
    return obj

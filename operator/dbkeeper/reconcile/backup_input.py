"""From a DatabaseSchema to the input of its backup CronJobs and Jobs: pure, no I/O."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from dbkeeper.api import DatabaseSchemaSpec
from dbkeeper.api.spec import BackupSpec, S3Destination
from dbkeeper.audit.checkpoint import line_from_fields
from dbkeeper.backup.s3.location import S3Location
from dbkeeper.manifests.backup import BackupJobSettings
from dbkeeper.reconcile.backup_jobs import BACKUP_COMPONENT, VERIFY_COMPONENT
from dbkeeper.reconcile.pooler_input import owner_reference
from dbkeeper.reconcile.runtime import ResourceView
from dbkeeper.settings import Settings


def job_selector(resource_name: str) -> str:
    """Labels of every backup and drill Job of one resource (scheduled or on request)."""
    return (
        "app.kubernetes.io/name=dbkeeper,"
        f"app.kubernetes.io/instance={resource_name},"
        f"app.kubernetes.io/component in ({BACKUP_COMPONENT},{VERIFY_COMPONENT})"
    )


def on_demand_job_name(resource_name: str, request: str) -> str:
    """One Job name per request value, so asking twice with one value makes one Job."""
    digest = hashlib.sha256(request.encode()).hexdigest()[:10]
    return f"{resource_name}-backup-now-{digest}"


def job_settings(
    view: ResourceView,
    spec: DatabaseSchemaSpec,
    backup: BackupSpec,
    claim_name: str | None,
    host: str,
    port: int,
    settings: Settings,
) -> BackupJobSettings:
    """What the backup pods are built from (pure)."""
    max_age = backup.retention.max_age
    return BackupJobSettings(
        resource_name=view.name,
        namespace=view.namespace,
        image=settings.image,
        database_host=host,
        database_port=port,
        database_name=spec.database.name,
        credentials_secret=spec.database.credentials_secret,
        claim_name=claim_name,
        s3=backup.destination.s3,
        service_account_name=backup.service_account_name,
        owner_reference=owner_reference(view),
        keep_last=backup.retention.keep_last,
        max_age=None if max_age is None else f"{int(max_age.total_seconds())}s",
        jobs=backup.jobs,
        sslmode=spec.database.ssl_mode,
        suspend=backup.suspend,
        audit_checkpoint=_audit_checkpoint(view.status),
    )


def _audit_checkpoint(status: Mapping[str, Any]) -> str | None:
    """The checkpoint last written to status: every later dump extends it."""
    checkpoint = (status.get("audit") or {}).get("checkpoint")
    return line_from_fields(dict(checkpoint)) if checkpoint else None


CREDENTIAL_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


def s3_location(s3: S3Destination) -> S3Location:
    """The bucket of ``spec.backup.destination.s3`` as the backup layer names it."""
    sse = s3.server_side_encryption
    return S3Location(
        bucket=s3.bucket,
        prefix=s3.prefix,
        endpoint=s3.endpoint,
        region=s3.region,
        sse=sse.type if sse is not None else None,
        kms_key_id=sse.kms_key_id if sse is not None else None,
    )


def bucket_credentials(secret: Mapping[str, str] | None) -> tuple[tuple[str, str], ...] | None:
    """The ``AWS_*`` keys of a bucket's credentials Secret; None when it lacks the two
    that are required (or does not exist)."""
    if secret is None:
        return None
    keys = tuple((k, secret[k]) for k in CREDENTIAL_KEYS if (secret.get(k) or "").strip())
    names = {k for k, _ in keys}
    if not {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} <= names:
        return None
    return keys

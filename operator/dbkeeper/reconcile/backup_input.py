"""From a DatabaseSchema to the input of its backup CronJobs and Jobs: pure, no I/O."""

from __future__ import annotations

import hashlib

from dbkeeper.api import DatabaseSchemaSpec
from dbkeeper.api.spec import BackupSpec
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
    claim_name: str,
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
        owner_reference=owner_reference(view),
        keep_last=backup.retention.keep_last,
        max_age=None if max_age is None else f"{int(max_age.total_seconds())}s",
        jobs=backup.jobs,
        sslmode=spec.database.ssl_mode,
        suspend=backup.suspend,
    )

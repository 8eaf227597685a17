"""The typed ``status`` of a DatabaseSchema: what the operator observed and did.

Phases, condition types and reasons are closed sets, so dashboards, alerts and people can
rely on them. Status is built as these models and written with
:meth:`DatabaseSchemaStatus.to_patch`; conditions change only through
:func:`set_condition`, which keeps ``lastTransitionTime`` meaningful.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from dbkeeper.api.scalars import Timestamp


class Phase(StrEnum):
    """One word for the state of the whole resource (the Phase column)."""

    PENDING = "Pending"
    MIGRATING = "Migrating"
    READY = "Ready"
    DEGRADED = "Degraded"
    FAILED = "Failed"


class ConditionType(StrEnum):
    """The aspects of a database the operator reports on, one condition each."""

    READY = "Ready"
    SCHEMA_CURRENT = "SchemaCurrent"
    DATABASE_REACHABLE = "DatabaseReachable"
    DRIFT_FREE = "DriftFree"
    POOLER_READY = "PoolerReady"
    BACKUP_HEALTHY = "BackupHealthy"
    RESTORE_VERIFIED = "RestoreVerified"
    ROLES_IN_SYNC = "RolesInSync"
    READ_AUDIT_ACTIVE = "ReadAuditActive"
    AUDIT_TRAIL_INTACT = "AuditTrailIntact"
    TYPES_PUBLISHED = "TypesPublished"


class Reason(StrEnum):
    """Why a condition has its status: a closed set, CamelCase as Kubernetes expects."""

    # General
    RECONCILED = "Reconciled"
    INVALID_SPEC = "InvalidSpec"
    DELETING = "Deleting"
    NOT_CONFIGURED = "NotConfigured"
    # Connection and credentials
    DATABASE_REACHABLE = "DatabaseReachable"
    DATABASE_UNREACHABLE = "DatabaseUnreachable"
    SECRET_MISSING = "SecretMissing"  # noqa: S105 (a reason, not a secret)
    SECRET_INVALID = "SecretInvalid"  # noqa: S105
    AUTHENTICATION_FAILED = "AuthenticationFailed"
    TLS_FAILED = "TlsFailed"
    NO_PRIMARY = "NoPrimary"
    # Schema
    AT_TARGET = "AtTarget"
    MIGRATION_PENDING = "MigrationPending"
    MIGRATING = "Migrating"
    MIGRATION_SUCCEEDED = "MigrationSucceeded"
    MIGRATION_FAILED = "MigrationFailed"
    DOWNGRADE_NOT_ALLOWED = "DowngradeNotAllowed"
    UNKNOWN_REVISION = "UnknownRevision"
    UNKNOWN_MIGRATION_SET = "UnknownMigrationSet"
    LINT_BLOCKED = "LintBlocked"
    LOCK_BUSY = "LockBusy"
    LOCK_TIMEOUT = "LockTimeout"
    BACKUP_BEFORE_MIGRATE_FAILED = "BackupBeforeMigrateFailed"
    MIGRATION_SOURCE_UNAVAILABLE = "MigrationSourceUnavailable"
    MIGRATION_JOB_FAILED = "MigrationJobFailed"
    # Drift
    NO_DRIFT = "NoDrift"
    DRIFT_DETECTED = "DriftDetected"
    CHECKSUM_MISMATCH = "ChecksumMismatch"
    OUT_OF_BAND_CHANGE = "OutOfBandChange"
    # Pooler
    POOLER_READY = "PoolerReady"
    POOLER_NOT_READY = "PoolerNotReady"
    POOLER_DISABLED = "PoolerDisabled"
    POOLER_PAUSED = "PoolerPaused"
    POOLER_CONFIG_INVALID = "PoolerConfigInvalid"
    # Backups and restore drills
    BACKUP_SUCCEEDED = "BackupSucceeded"
    BACKUP_FAILED = "BackupFailed"
    BACKUP_RUNNING = "BackupRunning"
    BACKUP_SUSPENDED = "BackupSuspended"
    BACKUP_OVERDUE = "BackupOverdue"
    NO_BACKUP_YET = "NoBackupYet"
    CLIENT_TOO_OLD = "ClientTooOld"
    RESTORE_VERIFIED = "RestoreVerified"
    DRILL_FAILED = "DrillFailed"
    DRILL_NOT_RUN = "DrillNotRun"
    MISSING_PRIVILEGE = "MissingPrivilege"
    NO_DRILL_YET = "NoDrillYet"
    # Roles and auditing
    ROLES_IN_SYNC = "RolesInSync"
    ROLE_DRIFT = "RoleDrift"
    ROLE_SECRET_CHANGED = "RoleSecretChanged"  # noqa: S105
    READ_AUDIT_ACTIVE = "ReadAuditActive"
    PGAUDIT_MISSING = "PgauditMissing"
    # Audit trail (v2: sealed and checkpointed)
    AUDIT_TRAIL_INTACT = "AuditTrailIntact"
    AUDIT_TRAIL_BROKEN = "AuditTrailBroken"
    AUDIT_NOT_CHECKPOINTED = "NotCheckpointed"
    # TypeScript types published into a ConfigMap
    PUBLISHED = "Published"
    CONFIG_MAP_NOT_OWNED = "ConfigMapNotOwned"
    TYPES_UNMAPPABLE = "TypesUnmappable"
    TYPES_TOO_LARGE = "TypesTooLarge"
    NOT_MIGRATED = "NotMigrated"


ConditionStatus = Literal["True", "False", "Unknown"]


class StatusModel(BaseModel):
    """Shared configuration of status models.

    Unknown fields are ignored rather than refused: status is read back from the cluster,
    where the framework (kopf) may keep its own bookkeeping next to ours.
    """

    model_config = ConfigDict(
        extra="ignore",
        frozen=True,
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
    )


class Condition(StatusModel):
    """One observed aspect of the resource, in the Kubernetes condition convention."""

    type: ConditionType = Field(description="Which aspect this condition is about.")
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: Reason = Field(description="Why, as one CamelCase word from a fixed set.")
    message: str = Field(
        default="", max_length=32768, description="What a person should know, in words."
    )
    last_transition_time: Timestamp = Field(
        description="When status last changed (not when it was last checked)."
    )
    observed_generation: int | None = Field(
        default=None, ge=0, description="The spec generation this condition was computed from."
    )


class LastMigration(StatusModel):
    """The most recent schema move."""

    from_revision: str | None = Field(
        default=None, alias="from", description="Revision before the move (absent: empty)."
    )
    to_revision: str | None = Field(
        default=None, alias="to", description="Revision the move aimed at."
    )
    direction: Literal["upgrade", "downgrade"] = Field(description="upgrade or downgrade.")
    started_at: Timestamp = Field(description="When the move started.")
    finished_at: Timestamp | None = Field(
        default=None, description="When it ended; absent while it runs."
    )
    result: Literal["Running", "Succeeded", "Failed"] = Field(
        description="Running, Succeeded or Failed."
    )
    backup_id: str | None = Field(
        default=None, description="Backup taken just before the move, if any."
    )
    message: str | None = Field(default=None, description="Error or summary, in words.")


class LastBackup(StatusModel):
    """The most recent successful backup."""

    id: str = Field(description="Backup id in the destination's catalog.")
    finished_at: Timestamp = Field(description="When the backup completed.")
    size_bytes: int | None = Field(default=None, ge=0, description="Size on disk in bytes.")
    verified_at: Timestamp | None = Field(
        default=None, description="When a restore drill last proved this backup."
    )
    destination: str | None = Field(
        default=None,
        description="Where it was written: s3://BUCKET/PREFIX, or pvc/CLAIM.",
    )


class MigrationSetStatus(StatusModel):
    """Where the migration set's files came from, so that a changed bundle is visible."""

    source: Literal["bundled", "configMap", "image"] = Field(
        description="bundled (inside the operator's image), configMap or image."
    )
    name: str = Field(description="The set's name in the history table.")
    identity: str | None = Field(
        default=None,
        description="The exact files: a ConfigMap's resourceVersion and content hash, or "
        "the image's digest.",
    )
    job: str | None = Field(
        default=None, description="The last Job that described or migrated the set."
    )


class PoolerStatus(StatusModel):
    """The pooler as last observed."""

    endpoint: str | None = Field(default=None, description="host:port applications connect to.")
    config_hash: str | None = Field(
        default=None, description="Hash of the configuration the pooler runs with."
    )
    replicas: int | None = Field(default=None, description="Replicas the spec asks for.")
    ready_replicas: int | None = Field(
        default=None, description="Replicas ready to accept connections, as last observed."
    )


class AuditCheckpointStatus(StatusModel):
    """A signed checkpoint of the audit chain (see docs/security.md#the-audit-trail)."""

    batch: int = Field(ge=0, description="The sealed batch the checkpoint ends at.")
    rows: int = Field(ge=0, description="Rows sealed up to and including that batch.")
    head: str = Field(description="The hash of that batch.")
    time: str = Field(description="When it was signed (UTC).")
    key_id: str = Field(description="The signing key's id (first 16 hex of its SHA-256).")
    signature: str = Field(description="Ed25519 signature, base64.")


class AuditStatus(StatusModel):
    """The audit trail as last observed: how far it is sealed, and its last checkpoint."""

    sealed_batch: int | None = Field(default=None, description="The newest sealed batch.")
    sealed_rows: int | None = Field(default=None, description="Rows sealed in all.")
    unsealed_rows: int | None = Field(
        default=None, description="Committed rows not sealed yet, as last observed."
    )
    last_sealed_at: Timestamp | None = Field(
        default=None, description="When the newest batch was sealed."
    )
    checkpoint: AuditCheckpointStatus | None = Field(
        default=None, description="The newest signed checkpoint (append it to your record)."
    )


class TypesStatus(StatusModel):
    """The TypeScript module last published into a ConfigMap (spec.types)."""

    config_map: str = Field(description="The ConfigMap holding the module.")
    key: str = Field(description="The module's key in the ConfigMap's data.")
    migration_set: str = Field(description="The migration set the module was read from.")
    revision: str | None = Field(
        default=None, description="The revision the module declares (absent: base)."
    )


class DatabaseSchemaStatus(StatusModel):
    """What the operator observed about the database and what it did last."""

    phase: Phase | None = Field(
        default=None, description="Pending, Migrating, Ready, Degraded or Failed."
    )
    observed_generation: int | None = Field(
        default=None, ge=0, description="The spec generation the status describes."
    )
    current_revision: str | None = Field(
        default=None, description="Schema revision the database is at."
    )
    target_revision: str | None = Field(
        default=None, description="Revision the spec's target resolves to."
    )
    head_revision: str | None = Field(
        default=None, description="Newest revision of the migration set."
    )
    pending_revisions: list[str] = Field(
        default_factory=list,
        max_length=1000,
        description="Revisions still to apply (or revert) to reach the target, in order.",
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        max_length=32,
        description="Observed aspects, one per type.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    last_migration: LastMigration | None = Field(
        default=None, description="The most recent schema move."
    )
    last_backup: LastBackup | None = Field(
        default=None, description="The most recent successful backup."
    )
    last_backup_request: str | None = Field(
        default=None,
        description="Value of the dbkeeper.dev/backup-now annotation last acted on.",
    )
    migration_set: MigrationSetStatus | None = Field(
        default=None, description="The migration set in use and where it came from."
    )
    pooler: PoolerStatus | None = Field(default=None, description="The pooler, when enabled.")
    audit: AuditStatus | None = Field(
        default=None, description="The audit trail, when the migration set has a sealed one."
    )
    types: TypesStatus | None = Field(
        default=None, description="The TypeScript module last published, when spec.types is set."
    )
    drift: list[str] = Field(
        default_factory=list,
        max_length=1000,
        description="Differences between the database and its migration history.",
    )
    message: str | None = Field(default=None, description="Summary for people.")

    @classmethod
    def from_raw(cls, raw: Mapping[str, Any] | None) -> DatabaseSchemaStatus:
        """The status as stored in the cluster (``None`` or ``{}`` for a new resource)."""
        return cls.model_validate(dict(raw or {}))

    def to_patch(self) -> dict[str, Any]:
        """camelCase, JSON-ready, without the fields that are ``None``."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)

    def condition(self, type: ConditionType) -> Condition | None:
        """The condition of ``type``, if there is one."""
        return find_condition(self.conditions, type)


def find_condition(conditions: Sequence[Condition], type: ConditionType) -> Condition | None:
    """The condition of ``type`` in ``conditions``, if there is one."""
    return next((c for c in conditions if c.type == type), None)


def set_condition(
    conditions: Sequence[Condition],
    type: ConditionType,
    status: ConditionStatus,
    reason: Reason,
    message: str,
    now: datetime,
    generation: int | None,
) -> list[Condition]:
    """``conditions`` with the one of ``type`` set; a new list, the input is untouched.

    ``lastTransitionTime`` moves to ``now`` only when ``status`` changes, so it tells
    when the aspect last flipped, not when it was last checked. The order of existing
    conditions is kept; a new type is appended.
    """
    existing = find_condition(conditions, type)
    transition = (
        existing.last_transition_time if existing is not None and existing.status == status else now
    )
    updated = Condition(
        type=type,
        status=status,
        reason=reason,
        message=message,
        last_transition_time=transition,
        observed_generation=generation,
    )
    if existing is None:
        return [*conditions, updated]
    return [updated if c.type == type else c for c in conditions]

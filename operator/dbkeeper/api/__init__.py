"""The DatabaseSchema resource as typed models: spec, status, conditions, and its CRD.

Everything other layers need is re-exported here; import from ``dbkeeper.api``. The
exports are imported on first use (dbkeeper/lazy.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dbkeeper.lazy import lazy_exports

if TYPE_CHECKING:
    from dbkeeper.api.constants import (
        ANNOTATION_APPROVED_REVISIONS,
        ANNOTATION_BACKUP_NOW,
        API_VERSION,
        CRD_NAME,
        GROUP,
        KIND,
        PLURAL,
        SHORT_NAMES,
        SINGULAR,
        USER_ANNOTATIONS,
        VERSION,
    )
    from dbkeeper.api.crd import CRD_FILE_NAME, build_crd, render_crd_yaml
    from dbkeeper.api.durations import DurationError, format_duration, parse_duration
    from dbkeeper.api.manifest import (
        DatabaseSchemaManifest,
        approved_revisions,
        backup_request,
        parse_manifest,
    )
    from dbkeeper.api.scalars import relative_steps, split_host_and_port
    from dbkeeper.api.spec import (
        BackupDestination,
        BackupSpec,
        DatabaseSchemaSpec,
        DatabaseSpec,
        DeletionPolicy,
        Endpoint,
        MigrationsSpec,
        PersistentVolumeClaimRef,
        PoolerClientTls,
        PoolerServerTls,
        PoolerSpec,
        PoolMode,
        ResourceList,
        ResourceRequirements,
        RetentionSpec,
        RoleSpec,
        RolesSpec,
        SslMode,
        TypesSpec,
    )
    from dbkeeper.api.status import (
        AuditCheckpointStatus,
        AuditStatus,
        Condition,
        ConditionStatus,
        ConditionType,
        DatabaseSchemaStatus,
        LastBackup,
        LastMigration,
        MigrationSetStatus,
        Phase,
        PoolerStatus,
        Reason,
        TypesStatus,
        find_condition,
        set_condition,
    )
    from dbkeeper.api.validation import FieldError, SpecInvalid, parse_spec
    from dbkeeper.vocabulary import LintMode

__all__ = [
    "ANNOTATION_APPROVED_REVISIONS",
    "ANNOTATION_BACKUP_NOW",
    "API_VERSION",
    "CRD_FILE_NAME",
    "CRD_NAME",
    "GROUP",
    "KIND",
    "PLURAL",
    "SHORT_NAMES",
    "SINGULAR",
    "USER_ANNOTATIONS",
    "VERSION",
    "AuditCheckpointStatus",
    "AuditStatus",
    "BackupDestination",
    "BackupSpec",
    "Condition",
    "ConditionStatus",
    "ConditionType",
    "DatabaseSchemaManifest",
    "DatabaseSchemaSpec",
    "DatabaseSchemaStatus",
    "DatabaseSpec",
    "DeletionPolicy",
    "DurationError",
    "Endpoint",
    "FieldError",
    "LastBackup",
    "LastMigration",
    "LintMode",
    "MigrationSetStatus",
    "MigrationsSpec",
    "PersistentVolumeClaimRef",
    "Phase",
    "PoolMode",
    "PoolerClientTls",
    "PoolerServerTls",
    "PoolerSpec",
    "PoolerStatus",
    "Reason",
    "ResourceList",
    "ResourceRequirements",
    "RetentionSpec",
    "RoleSpec",
    "RolesSpec",
    "SpecInvalid",
    "SslMode",
    "TypesSpec",
    "TypesStatus",
    "approved_revisions",
    "backup_request",
    "build_crd",
    "find_condition",
    "format_duration",
    "parse_duration",
    "parse_manifest",
    "parse_spec",
    "relative_steps",
    "render_crd_yaml",
    "set_condition",
    "split_host_and_port",
]

__getattr__ = lazy_exports(__name__, __file__)

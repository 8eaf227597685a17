"""The JSON of ``dbkeeper backup create|list|restore|verify|prune``."""

from typing import Annotated, Literal, TypedDict

from dbkeeper.json_shapes.audit import CheckpointJson
from dbkeeper.vocabulary import DumpFormat, VerifyResult


class BackupManifestJson(TypedDict):
    """A backup's manifest, as stored in its manifest.json."""

    manifest_version: Annotated[int, "the version of the manifest's format"]
    id: Annotated[str, "the backup's id (its folder or prefix in the destination)"]
    created_at: Annotated[str, "when the dump started (ISO 8601)"]
    finished_at: Annotated[str, "when the backup was complete (ISO 8601)"]
    database: Annotated[str, "the database dumped"]
    schema_revision: Annotated[str | None, "its migration revision then; null: none"]
    server_version: Annotated[str, "the PostgreSQL server's version"]
    encoding: Annotated[str | None, "the database's encoding"]
    format: Annotated[DumpFormat, "pg_dump's format"]
    size_bytes: Annotated[int, "the size of the backup's files"]
    duration_s: Annotated[float, "how long the backup took, in seconds"]
    files: Annotated[dict[str, str], "each file of the dump (relative path) and its sha256"]
    row_counts: Annotated[dict[str, int], "each user table and its rows at the dump"]
    verified_at: Annotated[str | None, "when the last completed restore drill ran"]
    verify_duration_s: Annotated[float | None, "how long that drill took, in seconds"]
    verify_result: Annotated[VerifyResult | None, "its verdict; null: never drilled"]
    verify_message: Annotated[str | None, "what that drill found"]
    drill_error: Annotated[str | None, "why the last drill could not run, until one completes"]
    drill_error_at: Annotated[str | None, "when that drill could not run"]
    audit_checkpoint: Annotated[
        CheckpointJson | None, "the audit chain's signed checkpoint the dumped log extends"
    ]


class UnreadableBackupJson(TypedDict):
    """A folder that cannot be read as a backup; it is kept."""

    id: Annotated[str, "the folder's name"]
    problem: Annotated[str, "why it cannot be read"]


class PruneJson(TypedDict):
    """What pruning removed and what it left alone."""

    removed: Annotated[list[str], "the backups removed"]
    removed_incomplete: Annotated[list[str], "unfinished backups a dead writer left, removed"]
    skipped_in_use: Annotated[list[str], "backups a restore or drill is reading, kept"]
    kept_unreadable: Annotated[list[UnreadableBackupJson], "folders that are not backups, kept"]
    aborted_uploads: Annotated[int, "unfinished uploads to object storage, aborted"]


class BackupCreatedJson(TypedDict):
    """The new backup and what the retention limits then removed (--keep-last, --max-age)."""

    backup: Annotated[BackupManifestJson, "the new backup's manifest"]
    prune: Annotated[PruneJson, "what pruning did"]


class BackupListJson(TypedDict):
    """The backups in the destination, by state."""

    backups: Annotated[list[BackupManifestJson], "the complete backups, oldest first"]
    incomplete: Annotated[list[str], "backups marked in progress without a manifest"]
    unreadable: Annotated[list[UnreadableBackupJson], "folders that cannot be read as backups"]


class RestoreJson(TypedDict):
    """The backup restored and where."""

    backup_id: Annotated[str, "the backup restored"]
    target_database: Annotated[str, "the database it was restored into"]
    in_place: Annotated[bool, "it replaced the backed-up database (--in-place)"]
    duration_s: Annotated[float, "how long the restore took, in seconds"]


class DrillCheckJson(TypedDict):
    """One check of the restored scratch database."""

    name: Annotated[str, "what was checked"]
    passed: Annotated[bool | None, "the outcome; null: it does not apply to this database"]
    detail: Annotated[str, "what was found"]


class DrillJson(TypedDict):
    """The restore drill ran to its end: it passed or it failed."""

    backup_id: Annotated[str, "the backup drilled"]
    outcome: Annotated[VerifyResult, "the verdict"]
    passed: Annotated[bool, "the verdict is passed"]
    verified_at: Annotated[str, "when the drill ran (ISO 8601)"]
    duration_s: Annotated[float, "how long it took, in seconds"]
    recorded: Annotated[bool, "the verdict was written into the backup's manifest"]
    not_recorded: Annotated[str | None, "why the destination refused that write"]
    message: Annotated[str, "the failed checks, or that all passed"]
    checks: Annotated[list[DrillCheckJson], "each check of the restored database"]


class DrillNotRunJson(TypedDict):
    """The drill could not run: the backup's recorded verdict is unchanged."""

    backup_id: Annotated[str, "the backup to drill"]
    outcome: Annotated[Literal["error"], "always error: the drill could not run"]
    passed: Annotated[None, "always null: there is no new verdict"]
    error: Annotated[str, "why the drill could not run"]
    error_at: Annotated[str, "when (ISO 8601)"]
    recorded: Annotated[bool, "the error was written into the manifest's drill_error"]
    verify_result: Annotated[VerifyResult | None, "the backup's recorded verdict, unchanged"]
    verified_at: Annotated[str | None, "when that verdict was reached (ISO 8601)"]

"""Restore drills: prove a backup by restoring it into a scratch database and checking it.

A drill restores the backup (the newest when none is named) into a scratch database,
then checks the schema revision and every table's row count against the manifest, and
the audit hash chain with ``audit.verify_chain()`` when the restored database has that
function (zero rows means the chain is intact). The outcome, the time and the duration
are written into the manifest, the scratch database is dropped, and the result is
returned. A failed drill is recorded and reported like a passed one: it is never
swallowed.

A drill judges the backup only on what the backup can be blamed for: its files failing
their checksums, pg_restore failing on the dump's content, or the restored data not
matching the manifest (revision, row counts, audit chain). A drill stopped by its
surroundings (server unreachable, login refused, a privilege or resource missing, the
server shutting down; see ``environment_faults``) is an error of the drill. Before
anything is created, the drill's role is checked for CREATEDB (see ``privileges``); a
role without it is such an error too, named in one line with the statement that grants
it: the verdict
of the last completed drill stays as it was, the error goes into ``drill_error`` and
``drill_error_at``, and DrillNotRun is raised. Retention protects the newest backup whose
last completed drill passed, so a broken drill environment cannot cost that protection.
The drill holds the backup for reading throughout, so pruning cannot remove it between
the drill's restore and the recording of its outcome. A destination that refuses the
manifest's rewrite (full, read-only) leaves the manifest as it was; the result says so
(``not_recorded``), and so does DrillNotRun's message.
"""

from __future__ import annotations

import contextlib
import secrets
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import psycopg
from psycopg import sql

from dbkeeper.audit import chain
from dbkeeper.audit.backups import restored_chain
from dbkeeper.backup import database_facts
from dbkeeper.backup.create import Clock, utc_now
from dbkeeper.backup.destination_faults import unwritable
from dbkeeper.backup.environment_faults import is_environment_error
from dbkeeper.backup.errors import (
    BackupFailedChecks,
    BackupIncomplete,
    BackupNotFound,
    BackupUnreadable,
    DestinationUnavailable,
    DrillNotRun,
    RestoreFailed,
    RestoreRefused,
    RestoreUnavailable,
)
from dbkeeper.backup.manifest import BackupManifest
from dbkeeper.backup.privileges import missing_for_drill, refuse_if_missing
from dbkeeper.backup.restore import restore_backup
from dbkeeper.backup.store import BackupStore
from dbkeeper.conninfo import ConnInfo, redact
from dbkeeper.work_progress import WorkProgress

AUDIT_CHAIN_FUNCTION = "audit.verify_chain()"
_AGAIN = "run the drill again"


@dataclass(frozen=True)
class DrillCheck:
    name: str
    passed: bool | None  # None: not applicable to this database
    detail: str


@dataclass(frozen=True)
class DrillResult:
    backup_id: str
    passed: bool
    verified_at: datetime
    duration_s: float
    checks: list[DrillCheck] = field(default_factory=list)
    recorded: bool = True
    not_recorded: str | None = None
    """Why the outcome could not be written into the manifest, when the destination
    refused it (the manifest, and the verdict in it, are then as they were)."""

    @property
    def message(self) -> str:
        failed = [f"{c.name}: {c.detail}" for c in self.checks if c.passed is False]
        return "; ".join(failed) if failed else "all checks passed"


def verify_backup(
    catalog: BackupStore,
    backup_id: str | None,
    admin_conninfo: ConnInfo,
    *,
    clock: Clock = utc_now,
    jobs: int = 2,
    shown: WorkProgress | None = None,
) -> DrillResult:
    """Run a restore drill of ``backup_id`` (or the newest backup) and record the outcome.
    ``shown`` follows the drill's restore, table by table.

    Returns the result of a drill that ran to its end, passed or failed. Raises
    DrillNotRun, after recording the error, when the drill's surroundings stopped it.
    """
    try:
        if backup_id is None:
            newest = catalog.newest()
            if newest is None:
                raise BackupNotFound(f"no complete backup in {catalog.location} to verify")
            backup_id = newest.id
        with catalog.reading(backup_id):
            return _drill(catalog, backup_id, admin_conninfo, clock, jobs, shown)
    except DestinationUnavailable as exc:
        # The destination itself could not be read: not the backup's fault, and there
        # is nowhere to record the error.
        reason = str(exc)
        raise DrillNotRun(
            f"restore drill of backup {backup_id or '(the newest)'!r} could not run: {reason}; "
            "the backup's own verdict is unchanged",
            backup_id=backup_id or "",
            reason=reason,
            at=clock(),
            recorded=False,
        ) from None


def _drill(
    catalog: BackupStore,
    backup_id: str,
    admin: ConnInfo,
    clock: Clock,
    jobs: int,
    shown: WorkProgress | None,
) -> DrillResult:
    started = time.monotonic()
    manifest: BackupManifest | None
    try:
        manifest = catalog.read(backup_id)
    except (BackupIncomplete, BackupUnreadable):
        manifest = None  # the restore refuses it, and there is nothing to record into
    scratch = f"dbkeeper_drill_{secrets.token_hex(6)}"
    checks: list[DrillCheck] = []
    try:
        _check_privileges(admin)
        try:
            restored = _restore_check(
                catalog, backup_id, admin, scratch, checks, jobs=jobs, shown=shown
            )
            if restored and manifest is not None:
                _content_checks(admin.with_database(scratch), manifest, checks)
        finally:
            _drop_scratch(admin, scratch)
    except (RestoreUnavailable, RestoreRefused) as exc:
        # Not the backup's fault (its own failures became checks in _restore_check).
        raise _not_run(catalog, backup_id, manifest, str(exc), clock()) from None
    passed = all(check.passed is not False for check in checks)
    result = DrillResult(
        backup_id=backup_id,
        passed=passed,
        verified_at=clock(),
        duration_s=round(time.monotonic() - started, 3),
        checks=checks,
        recorded=manifest is not None,
    )
    if manifest is not None:
        try:
            catalog.write(
                manifest.model_copy(
                    update={
                        "verified_at": result.verified_at,
                        "verify_duration_s": result.duration_s,
                        "verify_result": "passed" if passed else "failed",
                        "verify_message": result.message,
                        "drill_error": None,
                        "drill_error_at": None,
                    }
                )
            )
        except OSError as exc:
            return replace(
                result,
                recorded=False,
                not_recorded=unwritable(catalog.location, exc, _AGAIN),
            )
    return result


def _not_run(
    catalog: BackupStore,
    backup_id: str,
    manifest: BackupManifest | None,
    reason: str,
    at: datetime,
) -> DrillNotRun:
    """Record a drill error in the manifest, leaving the verdict alone, and describe it."""
    not_recorded = ""
    if manifest is not None:
        try:
            catalog.write(manifest.model_copy(update={"drill_error": reason, "drill_error_at": at}))
        except OSError as exc:
            not_recorded = "; the error is not recorded either: " + unwritable(
                catalog.location, exc, _AGAIN
            )
    return DrillNotRun(
        f"restore drill of backup {backup_id!r} could not run: {reason}; "
        f"the backup's own verdict is unchanged ({verdict_of(manifest)}){not_recorded}",
        backup_id=backup_id,
        reason=reason,
        at=at,
        recorded=manifest is not None and not not_recorded,
    )


def verdict_of(manifest: BackupManifest | None) -> str:
    """The verdict of the last completed drill, in words: ``passed at 2026-11-02 04:00 UTC``."""
    if manifest is None:
        return "its manifest cannot be read"
    if manifest.verify_result is None or manifest.verified_at is None:
        return "never verified by a completed drill"
    return f"{manifest.verify_result} at {manifest.verified_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def _check_privileges(admin: ConnInfo) -> None:
    """Refuse, before anything is created, a role that cannot create the scratch database."""
    try:
        with psycopg.connect(admin.dsn(), autocommit=True) as conn:
            role, missing = missing_for_drill(conn)
    except psycopg.Error as exc:
        detail = redact("; ".join(line.strip() for line in str(exc).splitlines() if line.strip()))
        raise RestoreUnavailable(f"cannot connect to {admin.describe()}: {detail}") from None
    refuse_if_missing(role, missing)


def _restore_check(
    catalog: BackupStore,
    backup_id: str,
    admin: ConnInfo,
    scratch: str,
    checks: list[DrillCheck],
    *,
    jobs: int,
    shown: WorkProgress | None,
) -> bool:
    """Restore into the scratch database; the backup's own failures become a failed
    check, the others (RestoreUnavailable, a refused target) propagate."""
    try:
        restore = restore_backup(
            catalog, backup_id, admin, target_database=scratch, jobs=jobs, shown=shown
        )
    except (BackupFailedChecks, RestoreFailed) as exc:
        checks.append(DrillCheck("restore", False, str(exc)))
        return False
    checks.append(DrillCheck("restore", True, f"restored in {restore.duration_s:.1f} s"))
    return True


def _content_checks(scratch: ConnInfo, manifest: BackupManifest, checks: list[DrillCheck]) -> None:
    try:
        with psycopg.connect(scratch.dsn(), autocommit=True) as conn:
            revision = database_facts.schema_revision(conn)
            checks.append(
                DrillCheck(
                    "schema revision",
                    revision == manifest.schema_revision,
                    f"restored {revision!r}, manifest {manifest.schema_revision!r}",
                )
            )
            checks.append(_row_count_check(database_facts.row_counts(conn), manifest))
            checks.append(_audit_chain_check(conn, manifest))
    except psycopg.Error as exc:
        detail = redact("; ".join(line.strip() for line in str(exc).splitlines() if line.strip()))
        if is_environment_error(exc):
            raise RestoreUnavailable(
                f"cannot inspect the restored copy in {scratch.describe()}: {detail}"
            ) from None
        checks.append(DrillCheck("inspect", False, detail))


def _row_count_check(restored: dict[str, int], manifest: BackupManifest) -> DrillCheck:
    expected = manifest.row_counts
    differences = [
        f"{table}: restored {restored.get(table)}, manifest {expected.get(table)}"
        for table in sorted(set(restored) | set(expected))
        if restored.get(table) != expected.get(table)
    ]
    if differences:
        shown = "; ".join(differences[:5])
        return DrillCheck("row counts", False, f"{len(differences)} table(s) differ: {shown}")
    return DrillCheck("row counts", True, f"{len(expected)} tables match the manifest")


def _audit_chain_check(
    conn: psycopg.Connection[tuple[object, ...]], manifest: BackupManifest
) -> DrillCheck:
    row = conn.execute("SELECT to_regprocedure(%s) IS NOT NULL", (AUDIT_CHAIN_FUNCTION,)).fetchone()
    if not row or not row[0]:
        return DrillCheck("audit chain", None, f"no {AUDIT_CHAIN_FUNCTION} in this database")
    if chain.has_sealed_chain(conn):
        passed, detail = restored_chain(conn, manifest.audit_checkpoint)
        return DrillCheck("audit chain", passed, detail)
    broken = conn.execute(sql.SQL("SELECT * FROM audit.verify_chain()")).fetchall()
    if not broken:
        return DrillCheck("audit chain", True, "intact")
    shown = "; ".join(f"row {r[0]}: {r[1]}" for r in broken[:3])
    return DrillCheck("audit chain", False, f"{len(broken)} break(s): {shown}")


def _drop_scratch(admin: ConnInfo, scratch: str) -> None:
    maintenance = admin if admin.dbname != scratch else admin.with_database("postgres")
    with (
        contextlib.suppress(psycopg.Error),
        psycopg.connect(maintenance.dsn(), autocommit=True) as conn,
    ):
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(scratch))
        )

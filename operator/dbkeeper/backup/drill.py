"""Restore drills: prove a backup by restoring it into a scratch database and checking it.

A drill restores the backup (the newest when none is named) into a scratch database,
then checks the schema revision and every table's row count against the manifest, and
the audit hash chain with ``audit.verify_chain()`` when the restored database has that
function (zero rows means the chain is intact). The outcome, the time and the duration
are written into the manifest, the scratch database is dropped, and the result is
returned. A failed drill is recorded and reported like a passed one: it is never
swallowed.
"""

from __future__ import annotations

import contextlib
import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime

import psycopg
from psycopg import sql

from dbkeeper.backup import database_facts
from dbkeeper.backup.catalog import BackupCatalog
from dbkeeper.backup.create import Clock, utc_now
from dbkeeper.backup.errors import (
    BackupIncomplete,
    BackupNotFound,
    RestoreFailed,
    RestoreRefused,
)
from dbkeeper.backup.manifest import BackupManifest
from dbkeeper.backup.restore import restore_backup
from dbkeeper.conninfo import ConnInfo, redact

AUDIT_CHAIN_FUNCTION = "audit.verify_chain()"


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

    @property
    def message(self) -> str:
        failed = [f"{c.name}: {c.detail}" for c in self.checks if c.passed is False]
        return "; ".join(failed) if failed else "all checks passed"


def verify_backup(
    catalog: BackupCatalog,
    backup_id: str | None,
    admin_conninfo: ConnInfo,
    *,
    clock: Clock = utc_now,
    jobs: int = 2,
) -> DrillResult:
    """Run a restore drill of ``backup_id`` (or the newest backup) and record the outcome."""
    if backup_id is None:
        newest = catalog.newest()
        if newest is None:
            raise BackupNotFound(f"no complete backup in {catalog.destination} to verify")
        backup_id = newest.id
    started = time.monotonic()
    manifest: BackupManifest | None
    try:
        manifest = catalog.read(backup_id)
    except BackupIncomplete:
        manifest = None
    scratch = f"dbkeeper_drill_{secrets.token_hex(6)}"
    checks: list[DrillCheck] = []
    try:
        restored = _restore_check(catalog, backup_id, admin_conninfo, scratch, jobs, checks)
        if restored and manifest is not None:
            _content_checks(admin_conninfo.with_database(scratch), manifest, checks)
    finally:
        _drop_scratch(admin_conninfo, scratch)
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
        catalog.write(
            manifest.model_copy(
                update={
                    "verified_at": result.verified_at,
                    "verify_duration_s": result.duration_s,
                    "verify_result": "passed" if passed else "failed",
                    "verify_message": result.message,
                }
            )
        )
    return result


def _restore_check(
    catalog: BackupCatalog,
    backup_id: str,
    admin: ConnInfo,
    scratch: str,
    jobs: int,
    checks: list[DrillCheck],
) -> bool:
    try:
        restore = restore_backup(catalog, backup_id, admin, target_database=scratch, jobs=jobs)
    except (RestoreRefused, RestoreFailed) as exc:
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
            checks.append(_audit_chain_check(conn))
    except psycopg.Error as exc:
        checks.append(DrillCheck("inspect", False, redact(str(exc).strip())))


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


def _audit_chain_check(conn: psycopg.Connection[tuple[object, ...]]) -> DrillCheck:
    row = conn.execute("SELECT to_regprocedure(%s) IS NOT NULL", (AUDIT_CHAIN_FUNCTION,)).fetchone()
    if not row or not row[0]:
        return DrillCheck("audit chain", None, f"no {AUDIT_CHAIN_FUNCTION} in this database")
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

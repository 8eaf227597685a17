"""Restoring a backup, only after every file has been proven whole.

Before anything is created or changed, the backup must have its manifest, every file
the manifest lists with the recorded sha256, and no file it does not list. A backup
that fails these checks raises RestoreRefused and the target is not touched.

Into a new database (the default): the database is created from ``template0`` and
pg_restore fills it; if pg_restore fails the new database is dropped again.

In place (explicit): dbkeeper never restores over the live database. It restores into
a temporary database next to it, and only when that succeeded swaps the two by
renaming them in one transaction (after ending the sessions connected to the target),
then drops the old one. Until the swap the target is untouched; if the swap cannot
happen the temporary database is dropped and the target stays as it was. Database-level
settings (``ALTER DATABASE … SET``) and grants on the database itself are not part of
a dump and are not carried over; the owner is.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import errors as pg_errors
from psycopg import sql

from dbkeeper.backup.catalog import BackupCatalog
from dbkeeper.backup.create import DUMP_DIR, DUMP_FILE, file_checksums, sha256_of
from dbkeeper.backup.errors import BackupIncomplete, RestoreFailed, RestoreRefused
from dbkeeper.backup.manifest import BackupManifest
from dbkeeper.backup.pg_tools import ToolFailed, pg_tool, run_tool
from dbkeeper.conninfo import ConnInfo, redact

_MAX_IDENTIFIER = 63
_SWAP_ATTEMPTS = 5


@dataclass(frozen=True)
class RestoreResult:
    backup_id: str
    target_database: str
    in_place: bool
    duration_s: float


def check_backup_files(folder: Path, manifest: BackupManifest) -> list[str]:
    """Every problem with the backup's files; empty when all are present and whole."""
    if not manifest.files:
        return ["the manifest lists no files"]
    problems = []
    for name, expected in sorted(manifest.files.items()):
        path = folder / name
        if not path.is_file():
            problems.append(f"{name}: missing")
        elif sha256_of(path) != expected:
            problems.append(f"{name}: sha256 does not match the manifest (corrupted or truncated)")
    unexpected = sorted(set(file_checksums(folder)) - set(manifest.files))
    problems += [f"{name}: not listed in the manifest" for name in unexpected]
    return problems


def default_target_database(backup_id: str) -> str:
    return f"restore_{backup_id.lower().replace('-', '_').replace('.', '_')}"[:_MAX_IDENTIFIER]


def restore_backup(
    catalog: BackupCatalog,
    backup_id: str,
    conninfo_admin: ConnInfo,
    *,
    target_database: str | None = None,
    in_place: bool = False,
    jobs: int = 2,
) -> RestoreResult:
    """Restore ``backup_id`` into a new database, or over an existing one with ``in_place``.

    ``conninfo_admin`` must be allowed to create and drop databases; its database is used
    to run CREATE/DROP/ALTER DATABASE unless it is the one being replaced.
    """
    started = time.monotonic()
    with catalog.reading(backup_id):
        try:
            manifest = catalog.read(backup_id)
        except BackupIncomplete as exc:
            raise RestoreRefused(f"{exc}; nothing was restored") from None
        problems = check_backup_files(catalog.backup_dir(backup_id), manifest)
        if problems:
            shown = "; ".join(problems[:5])
            more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
            raise RestoreRefused(
                f"backup {backup_id!r} failed its checks, nothing was restored: {shown}{more}"
            )
        target = target_database or (
            manifest.database if in_place else default_target_database(backup_id)
        )
        _check_database_name(target)
        dump_path = catalog.backup_dir(backup_id) / (
            DUMP_DIR if manifest.format == "directory" else DUMP_FILE
        )
        if in_place:
            _restore_in_place(manifest, dump_path, conninfo_admin, target, jobs)
        else:
            _restore_new(manifest, dump_path, conninfo_admin, target, jobs)
    return RestoreResult(
        backup_id=backup_id,
        target_database=target,
        in_place=in_place,
        duration_s=round(time.monotonic() - started, 3),
    )


def _check_database_name(name: str) -> None:
    if not name or len(name.encode()) > _MAX_IDENTIFIER or "\x00" in name:
        raise RestoreRefused(
            f"{name!r} is not a usable database name: 1 to {_MAX_IDENTIFIER} bytes"
        )


def _maintenance(conninfo_admin: ConnInfo, *avoid: str) -> ConnInfo:
    if conninfo_admin.dbname not in avoid:
        return conninfo_admin
    return conninfo_admin.with_database("postgres")


def _connect(conninfo: ConnInfo) -> psycopg.Connection[tuple[object, ...]]:
    try:
        return psycopg.connect(conninfo.dsn(), autocommit=True)
    except psycopg.Error as exc:
        raise RestoreRefused(
            redact(f"cannot connect to {conninfo.describe()}: {str(exc).strip()}")
        ) from None


def _database_owner(conn: psycopg.Connection[tuple[object, ...]], name: str) -> str | None:
    row = conn.execute(
        "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s", (name,)
    ).fetchone()
    return str(row[0]) if row else None


def _create_database(
    conn: psycopg.Connection[tuple[object, ...]],
    name: str,
    manifest: BackupManifest,
    owner: str | None = None,
) -> None:
    query = sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name))
    if manifest.encoding:
        query += sql.SQL(" ENCODING {}").format(sql.Literal(manifest.encoding))
    if owner:
        query += sql.SQL(" OWNER {}").format(sql.Identifier(owner))
    conn.execute(query)


def _drop_database(conn: psycopg.Connection[tuple[object, ...]], name: str) -> None:
    conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _pg_restore(dump_path: Path, conninfo: ConnInfo, jobs: int) -> None:
    run_tool(
        [pg_tool("pg_restore"), f"--jobs={max(1, jobs)}", "--exit-on-error", str(dump_path)],
        conninfo,
    )


def _restore_new(
    manifest: BackupManifest, dump_path: Path, admin: ConnInfo, target: str, jobs: int
) -> None:
    with _connect(_maintenance(admin, target)) as conn:
        if _database_owner(conn, target) is not None:
            raise RestoreRefused(
                f"database {target!r} already exists; nothing was restored: choose another "
                "target database, or restore in place explicitly"
            )
        try:
            _create_database(conn, target, manifest)
        except psycopg.Error as exc:
            raise RestoreRefused(
                redact(f"cannot create database {target!r}: {str(exc).strip()}")
            ) from None
        try:
            _pg_restore(dump_path, admin.with_database(target), jobs)
        except ToolFailed as exc:
            _drop_database(conn, target)
            raise RestoreFailed(
                f"restore of backup {manifest.id!r} into {target!r} failed and the new "
                f"database was dropped: {exc}"
            ) from None
        except BaseException:
            _drop_database(conn, target)
            raise


def _restore_in_place(
    manifest: BackupManifest, dump_path: Path, admin: ConnInfo, target: str, jobs: int
) -> None:
    suffix = secrets.token_hex(4)
    staging = f"{target[:40]}_dbk_restore_{suffix}"
    retired = f"{target[:40]}_dbk_old_{suffix}"
    with _connect(_maintenance(admin, target, staging, retired)) as conn:
        owner = _database_owner(conn, target)
        if owner is None:
            raise RestoreRefused(
                f"database {target!r} does not exist, so it cannot be restored in place; "
                "restore into a new database instead"
            )
        try:
            _create_database(conn, staging, manifest, owner)
        except psycopg.Error as exc:
            raise RestoreRefused(
                redact(f"cannot create the staging database {staging!r}: {str(exc).strip()}")
            ) from None
        try:
            _pg_restore(dump_path, admin.with_database(staging), jobs)
            _swap(conn, target, staging, retired)
        except ToolFailed as exc:
            _drop_database(conn, staging)
            raise RestoreFailed(
                f"restore of backup {manifest.id!r} failed; {target!r} was not changed: {exc}"
            ) from None
        except BaseException:
            _drop_database(conn, staging)
            raise
        _drop_database(conn, retired)


def _swap(
    conn: psycopg.Connection[tuple[object, ...]], target: str, staging: str, retired: str
) -> None:
    """Rename target -> retired and staging -> target in one transaction."""
    for attempt in range(_SWAP_ATTEMPTS):
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (target,),
        )
        try:
            with conn.transaction():
                conn.execute(
                    sql.SQL("ALTER DATABASE {} RENAME TO {}").format(
                        sql.Identifier(target), sql.Identifier(retired)
                    )
                )
                conn.execute(
                    sql.SQL("ALTER DATABASE {} RENAME TO {}").format(
                        sql.Identifier(staging), sql.Identifier(target)
                    )
                )
            return
        except pg_errors.ObjectInUse:
            # A client reconnected between the terminate and the rename; try again.
            time.sleep(0.2 * (attempt + 1))
    raise RestoreFailed(
        f"database {target!r} kept getting new connections, so it could not be replaced; "
        "it was not changed"
    )

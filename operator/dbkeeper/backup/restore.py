"""Restoring a backup, only after every file has been proven whole.

Before anything is created or changed, the backup must have its manifest, every file
the manifest lists with the recorded sha256, and no file it does not list. A backup
that fails these checks raises BackupFailedChecks and the target is not touched.

Who is to blame is part of every failure: BackupFailedChecks and RestoreFailed (pg_restore
failed on the dump's content) are the backup's; RestoreUnavailable (the server, the
login, a privilege, a resource, a missing tool; see ``environment_faults``) and a plain
RestoreRefused (the target is not acceptable) are not. Restore drills rely on this.

Before the files are checked or anything is created, the role is checked for what the
restore needs (CREATEDB; in place also the target's ownership and, when other roles are
connected to it, ``pg_signal_backend``; see ``privileges``): a role that lacks one gets
MissingPrivilege, a RestoreUnavailable naming the privilege and the statement that
grants it.

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

import contextlib
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import errors as pg_errors
from psycopg import sql

from dbkeeper.backup.create import DUMP_DIR, DUMP_FILE, file_checksums, sha256_of
from dbkeeper.backup.destination_faults import ObjectStoreError
from dbkeeper.backup.environment_faults import is_environment_error, is_environment_tool_output
from dbkeeper.backup.errors import (
    BackupFailedChecks,
    BackupIncomplete,
    BackupUnreadable,
    RestoreClientTooOld,
    RestoreFailed,
    RestoreRefused,
    RestoreUnavailable,
)
from dbkeeper.backup.manifest import BackupManifest
from dbkeeper.backup.pg_tools import ToolFailed, pg_tool, run_tool, server_major, tool_major
from dbkeeper.backup.privileges import missing_for_restore, refuse_if_missing
from dbkeeper.backup.restore_compat import (
    only_unknown_timeout,
    pg_restore_args,
    tolerates_unknown_timeout,
)
from dbkeeper.backup.store import BackupStore
from dbkeeper.backup.tool_progress import table_counter
from dbkeeper.conninfo import ConnInfo, redact
from dbkeeper.work_progress import WorkProgress

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
    catalog: BackupStore,
    backup_id: str,
    conninfo_admin: ConnInfo,
    *,
    target_database: str | None = None,
    in_place: bool = False,
    jobs: int = 2,
    shown: WorkProgress | None = None,
) -> RestoreResult:
    """Restore ``backup_id`` into a new database, or over an existing one with ``in_place``.

    ``conninfo_admin`` must be allowed to create and drop databases; its database is used
    to run CREATE/DROP/ALTER DATABASE unless it is the one being replaced. ``shown`` is
    told how many tables the backup holds and of each one pg_restore starts on.
    """
    started = time.monotonic()
    run = _ToolRun(jobs, shown)
    with catalog.reading(backup_id):
        try:
            manifest = catalog.read(backup_id)
        except (BackupIncomplete, BackupUnreadable) as exc:
            raise BackupFailedChecks(f"{exc}; nothing was restored") from None
        target = target_database or (
            manifest.database if in_place else default_target_database(backup_id)
        )
        _check_database_name(target)
        _check_privileges(conninfo_admin, target, in_place)
        with _checked_files(catalog, backup_id, manifest) as folder:
            dump_path = folder / (DUMP_DIR if manifest.format == "directory" else DUMP_FILE)
            if in_place:
                _restore_in_place(manifest, dump_path, conninfo_admin, target, run)
            else:
                _restore_new(manifest, dump_path, conninfo_admin, target, run)
    return RestoreResult(
        backup_id=backup_id,
        target_database=target,
        in_place=in_place,
        duration_s=round(time.monotonic() - started, 3),
    )


@contextlib.contextmanager
def _checked_files(store: BackupStore, backup_id: str, manifest: BackupManifest) -> Iterator[Path]:
    """The folder of the backup's files once every one has passed its checks (from an
    object store: downloaded first); BackupFailedChecks when one does not."""
    with contextlib.ExitStack() as stack:
        try:
            folder = stack.enter_context(store.files(backup_id, manifest))
            problems = check_backup_files(folder, manifest)
        except OSError as exc:
            raise RestoreUnavailable(
                f"the files of backup {backup_id!r} cannot be read, nothing was restored: "
                f"{_os_reason(exc)}"
            ) from None
        if problems:
            shown = "; ".join(problems[:5])
            more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
            raise BackupFailedChecks(
                f"backup {backup_id!r} failed its checks, nothing was restored: {shown}{more}"
            )
        yield folder


def _os_reason(exc: OSError) -> str:
    if isinstance(exc, ObjectStoreError):
        return f"{exc.reason}; {exc.advice}"
    return f"{exc.filename}: {exc.strerror or exc}"


def _check_database_name(name: str) -> None:
    if not name or len(name.encode()) > _MAX_IDENTIFIER or "\x00" in name:
        raise RestoreRefused(
            f"{name!r} is not a usable database name: 1 to {_MAX_IDENTIFIER} bytes"
        )


def _check_privileges(admin: ConnInfo, target: str, in_place: bool) -> None:
    """Refuse, before anything is created, a role that lacks what this restore needs."""
    with _connect(_maintenance(admin, target)) as conn:
        try:
            role, missing = missing_for_restore(conn, target, in_place=in_place)
        except psycopg.Error as exc:
            raise RestoreUnavailable(
                f"cannot check the privileges of {admin.user!r}, nothing was restored: "
                f"{_one_line(exc)}"
            ) from None
    refuse_if_missing(role, missing)


def _maintenance(conninfo_admin: ConnInfo, *avoid: str) -> ConnInfo:
    if conninfo_admin.dbname not in avoid:
        return conninfo_admin
    return conninfo_admin.with_database("postgres")


def _connect(conninfo: ConnInfo) -> psycopg.Connection[tuple[object, ...]]:
    try:
        return psycopg.connect(conninfo.dsn(), autocommit=True)
    except psycopg.Error as exc:
        raise RestoreUnavailable(
            f"cannot connect to {conninfo.describe()}: {_one_line(exc)}"
        ) from None


def _one_line(exc: BaseException) -> str:
    return redact("; ".join(line.strip() for line in str(exc).splitlines() if line.strip()))


def _cannot_create(what: str, exc: psycopg.Error) -> Exception:
    message = f"cannot create {what}, nothing was restored: {_one_line(exc)}"
    return RestoreUnavailable(message) if is_environment_error(exc) else RestoreRefused(message)


def _restore_tool(manifest: BackupManifest) -> tuple[str, int]:
    """pg_restore, once it is known to read what a pg_dump of the backup's server wrote:
    a pg_dump is at least as new as the server it dumps, and an older pg_restore may
    not read its archive."""
    try:
        tool = pg_tool("pg_restore")
        client = tool_major(tool)
    except ToolFailed as exc:
        raise RestoreUnavailable(f"{exc}; nothing was restored") from None
    server = server_major(manifest.server_version)
    if server is not None and client < server:
        raise RestoreClientTooOld(
            f"pg_restore {client} cannot restore backup {manifest.id!r}, taken from "
            f"PostgreSQL {server}: the client tools are too old; use a dbkeeper image whose "
            f"pg_restore is {server} or newer; nothing was restored"
        )
    return tool, client


def _restore_failure(exc: ToolFailed, message: str) -> Exception:
    """RestoreUnavailable when pg_restore was stopped by its surroundings, RestoreFailed
    when it failed on the dump's content."""
    if is_environment_tool_output(exc.output):
        return RestoreUnavailable(message)
    return RestoreFailed(message)


def _drop_after_failure(conn: psycopg.Connection[tuple[object, ...]], name: str) -> str:
    """Drop a database a failed restore created; say whether that worked."""
    try:
        _drop_database(conn, name)
    except psycopg.Error as exc:
        return f"database {name!r} could not be dropped ({_one_line(exc)}): drop it by hand"
    return f"database {name!r} was dropped"


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


@dataclass(frozen=True)
class _ToolRun:
    """How pg_restore runs: its parallel jobs, and who is shown its progress."""

    jobs: int
    shown: WorkProgress | None


def _pg_restore(
    tool: tuple[str, int],
    dump_path: Path,
    conninfo: ConnInfo,
    run: _ToolRun,
    conn: psycopg.Connection[tuple[object, ...]],
    tables: int,
) -> None:
    """pg_restore into ``conninfo``'s database; ``conn`` is a connection to its server."""
    path, client = tool
    tolerant = tolerates_unknown_timeout(client, conn.info.server_version // 10000)
    args = pg_restore_args(path, dump_path, run.jobs, tolerant=tolerant)
    if run.shown is not None:
        args.append("--verbose")
    try:
        run_tool(args, conninfo, on_line=table_counter(run.shown, tables))
    except ToolFailed as exc:
        if not (tolerant and only_unknown_timeout(exc.output)):
            raise


def _restore_new(
    manifest: BackupManifest, dump_path: Path, admin: ConnInfo, target: str, run: _ToolRun
) -> None:
    tool = _restore_tool(manifest)
    with _connect(_maintenance(admin, target)) as conn:
        try:
            exists = _database_owner(conn, target) is not None
        except psycopg.Error as exc:
            raise RestoreUnavailable(
                f"cannot look up database {target!r}, nothing was restored: {_one_line(exc)}"
            ) from None
        if exists:
            raise RestoreRefused(
                f"database {target!r} already exists; nothing was restored: choose another "
                "target database, or restore in place explicitly"
            )
        try:
            _create_database(conn, target, manifest)
        except psycopg.Error as exc:
            raise _cannot_create(f"database {target!r}", exc) from None
        try:
            _pg_restore(
                tool, dump_path, admin.with_database(target), run, conn, len(manifest.row_counts)
            )
        except ToolFailed as exc:
            dropped = _drop_after_failure(conn, target)
            raise _restore_failure(
                exc, f"restore of backup {manifest.id!r} into {target!r} failed, {dropped}: {exc}"
            ) from None
        except BaseException:
            _drop_after_failure(conn, target)
            raise


def _restore_in_place(
    manifest: BackupManifest, dump_path: Path, admin: ConnInfo, target: str, run: _ToolRun
) -> None:
    suffix = secrets.token_hex(4)
    staging = f"{target[:40]}_dbk_restore_{suffix}"
    retired = f"{target[:40]}_dbk_old_{suffix}"
    tool = _restore_tool(manifest)
    with _connect(_maintenance(admin, target, staging, retired)) as conn:
        try:
            owner = _database_owner(conn, target)
        except psycopg.Error as exc:
            raise RestoreUnavailable(
                f"cannot look up database {target!r}, nothing was restored: {_one_line(exc)}"
            ) from None
        if owner is None:
            raise RestoreRefused(
                f"database {target!r} does not exist, so it cannot be restored in place; "
                "restore into a new database instead"
            )
        try:
            _create_database(conn, staging, manifest, owner)
        except psycopg.Error as exc:
            raise _cannot_create(f"the staging database {staging!r}", exc) from None
        try:
            _pg_restore(
                tool, dump_path, admin.with_database(staging), run, conn, len(manifest.row_counts)
            )
            _swap(conn, target, staging, retired)
        except ToolFailed as exc:
            _drop_after_failure(conn, staging)
            raise _restore_failure(
                exc, f"restore of backup {manifest.id!r} failed; {target!r} was not changed: {exc}"
            ) from None
        except psycopg.Error as exc:
            _drop_after_failure(conn, staging)
            raise RestoreUnavailable(
                f"database {target!r} could not be swapped with the restored copy; it was "
                f"not changed: {_one_line(exc)}"
            ) from None
        except BaseException:
            _drop_after_failure(conn, staging)
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
    raise RestoreUnavailable(
        f"database {target!r} kept getting new connections, so it could not be replaced; "
        "it was not changed"
    )

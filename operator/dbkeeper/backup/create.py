"""Taking a backup: pg_dump in one snapshot, checksums of every file, then the manifest.

The dump and the manifest's row counts come from the same snapshot: dbkeeper opens a
REPEATABLE READ, READ ONLY transaction, exports its snapshot, counts every user table
in it, and runs ``pg_dump --snapshot`` against that exported snapshot while the
transaction stays open. The counts therefore match the dump row for row, even while
the application keeps writing.

Format: directory format (``pg_dump -Fd``) with parallel jobs, always. Measured with
``benchmarks/backup_format.py`` on 2 shared cores (four tables, 2 jobs; seconds for
backup / restore): 1 000 rows per table (0.1 MB) custom 0.13 / 0.22 vs directory
0.24 / 0.24; 100 000 rows (9 MB) 0.95 / 1.05 vs 1.07 / 0.82; 400 000 rows (37 MB)
3.95 / 3.51 vs 2.42 / 2.56. The custom format wins only on tiny databases, by about
0.1 s; the directory format is 1.4-1.6 times faster from a few tens of megabytes, and
gives one checksummed file per table, so a damaged file is named precisely. The custom
format stays available (``dump_format="custom"``) for comparison. See docs/backups.md.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

from dbkeeper.audit.backups import checkpoint_for_backup
from dbkeeper.backup import DEFAULT_LOCK_WAIT, database_facts
from dbkeeper.backup.catalog import BackupCatalog
from dbkeeper.backup.destination_faults import ObjectStoreError, tool_write_error, unwritable
from dbkeeper.backup.errors import BackupError, BackupFailed, DestinationFull, DumpClientTooOld
from dbkeeper.backup.manifest import MANIFEST_FILE, BackupManifest, DumpFormat
from dbkeeper.backup.pg_tools import ToolFailed, pg_tool, run_tool, server_major, tool_major
from dbkeeper.backup.staging import STAGING_VARIABLE, staging_folder
from dbkeeper.backup.store import BackupStore
from dbkeeper.backup.tool_progress import table_counter
from dbkeeper.conninfo import ConnInfo, redact
from dbkeeper.work_progress import WorkProgress

Clock = Callable[[], datetime]

DUMP_DIR = "dump"
DUMP_FILE = "dump.pgdump"
_AGAIN = "take the backup again"
# How long the dump waits for a table another session keeps locked (a long DDL, an
# explicit LOCK TABLE): a backup must not hang behind it for ever.
_LOCK_NOT_AVAILABLE = "55P03"
# pg_dump bounds its lock phase with a statement timeout: "ERROR:  canceling statement
# due to statement timeout" then "Query was: LOCK TABLE … IN ACCESS SHARE MODE".
_TOOL_CANCELLED = "canceling statement due to"
_TOOL_LOCKING = "Query was: LOCK TABLE"


def utc_now() -> datetime:
    return datetime.now(UTC)


def new_backup_id(created_at: datetime) -> str:
    """Sortable by time, unique by a random suffix: ``20261101T020000Z-1a2b3c``."""
    stamp = created_at.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{secrets.token_hex(3)}"


def file_checksums(folder: Path) -> dict[str, str]:
    """sha256 of every file under ``folder`` except the manifest, by relative path."""
    sums: dict[str, str] = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.name != MANIFEST_FILE and not path.name.startswith("."):
            sums[path.relative_to(folder).as_posix()] = sha256_of(path)
    return sums


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def create_backup(
    conninfo: ConnInfo,
    destination: Path,
    *,
    jobs: int = 2,
    clock: Clock = utc_now,
    dump_format: DumpFormat = "directory",
    lock_wait: timedelta = DEFAULT_LOCK_WAIT,
    staging_for: str | None = None,
    shown: WorkProgress | None = None,
) -> BackupManifest:
    """Dump the database of ``conninfo`` into a new folder of ``destination``.

    ``staging_for`` names the object store the folder stages for (see
    ``take_backup``): its refusals are then the staging folder's, never "full".
    ``shown`` is told how many tables there are and of each one pg_dump starts on.

    The folder is marked in progress before anything is written into it, and the mark
    goes once the manifest is written, last. Returns the manifest; on any failure the
    partial folder is removed (or, when the destination will not let it go, left marked
    in progress for the next prune) and BackupFailed says why. A destination that
    refuses writes (full, read-only, another user's) is named with the reason and what
    to do; a complete backup already in it is not touched.
    """
    if jobs < 1:
        raise BackupFailed(f"jobs must be at least 1, got {jobs}")

    def unwritable(destination: Path, exc: OSError, then: str) -> str:
        return _unwritable(destination, exc, then, staging_for)

    def _refused(message: str, exc: OSError) -> BackupFailed:
        return _refusal(message, exc, staging=staging_for is not None)

    pg_dump = _dump_tool()
    # Before the destination is touched: a pg_dump older than the server refuses it.
    _check_dump_client(pg_dump, conninfo)
    destination = Path(destination)
    try:
        destination.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _refused(unwritable(destination, exc, _AGAIN), exc) from None
    catalog = BackupCatalog(destination)
    created_at = clock()
    backup_id = new_backup_id(created_at)
    started = time.monotonic()
    try:
        with catalog.writing(backup_id):
            try:
                # Marked in progress first: if this process dies, pruning can tell the
                # folder from a finished backup whose manifest was damaged.
                catalog.start(backup_id)
            except OSError as exc:
                raise _refused(unwritable(destination, exc, _AGAIN), exc) from None
            try:
                return _dump(
                    pg_dump,
                    conninfo,
                    catalog,
                    backup_id,
                    created_at,
                    started,
                    _DumpOptions(jobs, clock, dump_format, lock_wait, shown),
                )
            except OSError as exc:
                raise _refused(
                    f"backup of {conninfo.describe()} failed: "
                    f"{unwritable(destination, exc, _AGAIN)}; {_discard(catalog, backup_id)}",
                    exc,
                ) from None
            except BaseException:
                catalog.discard(backup_id)
                raise
    except OSError as exc:
        # The lock: the destination refused even the lock file.
        raise _refused(unwritable(destination, exc, _AGAIN), exc) from None


def _refusal(message: str, exc: OSError, *, staging: bool) -> BackupFailed:
    """The failure of a destination that refused a write; DestinationFull when it is
    out of space, so that the caller may apply the retention limits to make room (not
    for a staging folder: pruning the bucket frees nothing in it)."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT) and not staging:
        return DestinationFull(message)
    return BackupFailed(message)


def _unwritable(destination: Path, exc: OSError, then: str, staging_for: str | None) -> str:
    if staging_for is None:
        return unwritable(destination, exc, then)
    return (
        f"cannot write to the staging folder {destination}, where the backup for "
        f"{staging_for} is dumped before its upload: {exc.strerror or exc}; give it room "
        f"for one dump (${STAGING_VARIABLE}, or spec.backup.destination.s3."
        f"stagingSizeLimit in a cluster), then {then}"
    )


def take_backup(
    conninfo: ConnInfo,
    store: BackupStore,
    *,
    jobs: int = 2,
    clock: Clock = utc_now,
    dump_format: DumpFormat = "directory",
    lock_wait: timedelta = DEFAULT_LOCK_WAIT,
    shown: WorkProgress | None = None,
    uploading: Callable[[], contextlib.AbstractContextManager[WorkProgress]] | None = None,
) -> BackupManifest:
    """A new backup of ``conninfo``'s database in ``store`` (``shown``: see
    ``create_backup``; ``uploading``: opens what shows an upload's MiB, when there is
    one).

    Into a folder, pg_dump writes in place (``create_backup``). Into an object store the
    backup is staged: dumped into a private local folder (``s3.store.staging_folder``;
    local disk use is one dump, released whatever happens), checksummed, then uploaded
    file by file in parts, the manifest last; the folder is removed afterwards.
    """
    if isinstance(store, BackupCatalog):
        return create_backup(
            conninfo,
            store.destination,
            jobs=jobs,
            clock=clock,
            dump_format=dump_format,
            lock_wait=lock_wait,
            shown=shown,
        )
    from dbkeeper.backup.s3.store import S3Store  # the client library only when needed

    if not isinstance(store, S3Store):
        raise BackupFailed(f"backups cannot be written to {store.location}")
    # Before the dump: a missing bucket, refused keys or an unreachable store fail at
    # once instead of after the whole dump.
    store.probe()
    with staging_folder() as staging:
        manifest = create_backup(
            conninfo,
            staging,
            jobs=jobs,
            clock=clock,
            dump_format=dump_format,
            lock_wait=lock_wait,
            staging_for=store.location,
            shown=shown,
        )
        try:
            with uploading() if uploading is not None else contextlib.nullcontext() as sent:
                store.publish(staging / manifest.id, manifest, jobs=jobs, shown=sent)
        except ObjectStoreError as exc:
            raise BackupFailed(
                f"backup of {conninfo.describe()} could not be stored in {store.location}: "
                f"{exc.reason}; {exc.advice}, then {_AGAIN}"
            ) from None
    return manifest


def _discard(catalog: BackupCatalog, backup_id: str) -> str:
    """Remove the folder of a backup that failed; what became of it, in words."""
    if catalog.discard(backup_id):
        with contextlib.suppress(OSError):
            catalog.forget_lock(backup_id)
        return "nothing of this backup was kept"
    return (
        f"its unfinished folder {backup_id} could not be removed and is left marked in "
        "progress, for the next `dbkeeper backup prune` to remove"
    )


@dataclass(frozen=True)
class _DumpOptions:
    jobs: int
    clock: Clock
    dump_format: DumpFormat
    lock_wait: timedelta
    shown: WorkProgress | None = None


def _lock_waited_too_long(conninfo: ConnInfo, lock_wait: timedelta) -> BackupFailed:
    return BackupFailed(
        f"backup of {conninfo.describe()} failed: a table stayed locked by another session "
        f"for longer than the lock wait ({lock_wait.total_seconds():g}s); nothing of this "
        "backup was kept; take it again when the lock is gone (pg_locks shows who holds "
        "it) or give it a longer --lock-wait"
    )


def _dump_tool() -> str:
    try:
        return pg_tool("pg_dump")
    except ToolFailed as exc:
        raise BackupFailed(str(exc)) from None


def _check_dump_client(pg_dump: str, conninfo: ConnInfo) -> None:
    """DumpClientTooOld when ``pg_dump`` is of an older major than the server."""
    try:
        client = tool_major(pg_dump)
    except ToolFailed as exc:
        raise BackupFailed(f"backup of {conninfo.describe()} not taken: {exc}") from None
    try:
        with psycopg.connect(conninfo.dsn()) as conn:
            version = database_facts.server_version(conn)
    except psycopg.Error as exc:
        raise BackupFailed(
            redact(f"backup of {conninfo.describe()} failed: {str(exc).strip()}")
        ) from None
    server = server_major(version)
    if server is not None and client < server:
        raise DumpClientTooOld(
            f"pg_dump {client} cannot dump PostgreSQL {server} ({conninfo.describe()}): "
            f"the client tools are too old; use a dbkeeper image whose pg_dump is {server} "
            "or newer; no backup was taken"
        )


def _dump(
    pg_dump: str,
    conninfo: ConnInfo,
    catalog: BackupCatalog,
    backup_id: str,
    created_at: datetime,
    started: float,
    options: _DumpOptions,
) -> BackupManifest:
    jobs, clock, dump_format = options.jobs, options.clock, options.dump_format
    wait_ms = max(1, round(options.lock_wait.total_seconds() * 1000))
    folder = catalog.backup_dir(backup_id)
    if dump_format == "directory":
        args = [
            pg_dump,
            "--format=directory",
            f"--jobs={jobs}",
            f"--file={folder / DUMP_DIR}",
        ]
    else:
        args = [pg_dump, "--format=custom", f"--file={folder / DUMP_FILE}"]
    args.append(f"--lock-wait-timeout={wait_ms}")
    if options.shown is not None:
        args.append("--verbose")
    # Before the dump's snapshot, so the dumped audit log extends this checkpoint.
    audit_checkpoint = checkpoint_for_backup(conninfo)
    try:
        with psycopg.connect(conninfo.dsn()) as conn:
            conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            conn.read_only = True
            row = conn.execute("SELECT pg_export_snapshot()").fetchone()
            # The counts below lock each table like pg_dump does; bounded alike.
            conn.execute(f"SET LOCAL lock_timeout = {wait_ms}")
            snapshot = str(row[0]) if row else ""
            counts = database_facts.row_counts(conn)
            revision = database_facts.schema_revision(conn)
            version = database_facts.server_version(conn)
            encoding = database_facts.database_encoding(conn)
            # The transaction must stay open until pg_dump has attached to the snapshot.
            run_tool(
                [*args, f"--snapshot={snapshot}"],
                conninfo,
                on_line=table_counter(options.shown, len(counts)),
            )
            conn.rollback()
    except psycopg.Error as exc:
        if exc.sqlstate == _LOCK_NOT_AVAILABLE:
            raise _lock_waited_too_long(conninfo, options.lock_wait) from None
        raise BackupFailed(
            redact(f"backup of {conninfo.describe()} failed: {str(exc).strip()}")
        ) from None
    except ToolFailed as exc:
        if _TOOL_CANCELLED in exc.output and _TOOL_LOCKING in exc.output:
            raise _lock_waited_too_long(conninfo, options.lock_wait) from None
        write_error = tool_write_error(exc.output)
        if write_error is not None:
            raise write_error from None
        raise BackupFailed(f"backup of {conninfo.describe()} failed: {exc}") from None
    except BackupError:
        raise
    files = file_checksums(folder)
    size = sum((folder / name).stat().st_size for name in files)
    manifest = BackupManifest(
        id=backup_id,
        created_at=created_at,
        finished_at=clock(),
        database=conninfo.dbname,
        schema_revision=revision,
        server_version=version,
        encoding=encoding,
        format=dump_format,
        size_bytes=size,
        duration_s=round(time.monotonic() - started, 3),
        files=files,
        row_counts=counts,
        audit_checkpoint=audit_checkpoint,
    )
    catalog.write(manifest)
    return manifest

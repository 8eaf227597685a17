"""``dbkeeper backup create | list | restore | verify | prune``.

The destination is a folder or ``s3://BUCKET/PREFIX`` (``--destination``, else
``$DBKEEPER_BACKUP_DESTINATION``, else ``$DBKEEPER_BACKUP_DIR``); in a pod it is the
mounted PersistentVolumeClaim or the bucket of ``spec.backup.destination.s3``. Any other
``scheme://`` is a usage error (exit 2), never a folder of that name. Object storage is
reached with the standard ``AWS_*`` variables (see ``backup.s3.location``).
``list`` and ``prune`` name every folder that cannot be read as a backup, with its
problem; such folders are never removed.
``verify`` exits 1 when the drill failed (the backup's verdict is now ``failed``), and
3 (``DRILL_NOT_RUN_EXIT_CODE``) when the backup's recorded verdict is unchanged and the
drill found nothing wrong with it: the drill could not run, or it passed but the
destination refused the record. One line on stderr says which, and why.
``create`` and ``restore`` exit 4 (``CLIENT_TOO_OLD_EXIT_CODE``) when pg_dump is older
than the server, or pg_restore older than the backup's server: nothing was done.
"""

from __future__ import annotations

import argparse
import contextlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import cast

from dbkeeper.backup.catalog import UnreadableBackup
from dbkeeper.backup.create import take_backup
from dbkeeper.backup.drill import DrillResult, verdict_of, verify_backup
from dbkeeper.backup.errors import (
    CLIENT_TOO_OLD_EXIT_CODE,
    DRILL_NOT_RUN_EXIT_CODE,
    BackupError,
    ClientTooOld,
    DestinationFull,
    DrillNotRun,
)
from dbkeeper.backup.manifest import BackupManifest
from dbkeeper.backup.restore import restore_backup
from dbkeeper.backup.retention import PruneResult, parse_max_age, prune
from dbkeeper.backup.s3.upload_progress import UNIT as UPLOAD_UNIT
from dbkeeper.backup.store import (
    BackupStore,
    DestinationInvalid,
    destination_from_env,
    parse_destination,
)
from dbkeeper.backup.stores import open_store
from dbkeeper.cli.common import (
    CommandError,
    connection_from_args,
    emit,
)
from dbkeeper.cli.progress import Progress, progress
from dbkeeper.json_shapes.backup import (
    BackupCreatedJson,
    BackupListJson,
    BackupManifestJson,
    DrillJson,
    DrillNotRunJson,
    PruneJson,
    RestoreJson,
    UnreadableBackupJson,
)


def _store(args: argparse.Namespace, *, existing: bool = True) -> BackupStore:
    """The destination's store; with ``existing``, a folder that is not there is a
    mistake to name (only ``create`` makes one)."""
    value = args.destination or destination_from_env()
    if not value:
        raise CommandError(
            "no backup destination: pass --destination (a folder or s3://BUCKET/PREFIX) "
            "or set DBKEEPER_BACKUP_DESTINATION",
            2,
        )
    try:
        destination = parse_destination(value)
    except DestinationInvalid as exc:
        raise CommandError(str(exc), 2) from None
    if existing and isinstance(destination, Path) and not destination.is_dir():
        what = "is not a folder" if destination.exists() else "does not exist"
        raise CommandError(
            f"backup destination {destination} {what}: check --destination (or "
            "DBKEEPER_BACKUP_DESTINATION / DBKEEPER_BACKUP_DIR)",
            2,
        )
    return open_store(destination)


def _check_jobs(args: argparse.Namespace) -> int:
    jobs: int = args.jobs
    if jobs < 1:
        raise CommandError(f"--jobs must be at least 1, got {jobs}", 2)
    return jobs


def _limits(args: argparse.Namespace) -> tuple[int | None, timedelta | None]:
    keep_last: int | None = args.keep_last
    if keep_last is not None and keep_last < 1:
        raise CommandError(f"--keep-last must be at least 1, got {keep_last}", 2)
    try:
        max_age = parse_max_age(args.max_age) if args.max_age is not None else None
    except ValueError as exc:
        raise CommandError(str(exc), 2) from None
    return keep_last, max_age


def _manifest_json(manifest: BackupManifest) -> BackupManifestJson:
    # pydantic writes the dates as the manifest file has them; the unit tests hold the
    # model's fields to the shape's keys.
    return cast(BackupManifestJson, manifest.model_dump(mode="json"))


def _unreadable_json(unreadable: list[UnreadableBackup]) -> list[UnreadableBackupJson]:
    return [{"id": u.id, "problem": u.problem} for u in unreadable]


def _prune_json(result: PruneResult) -> PruneJson:
    return {
        "removed": result.removed,
        "removed_incomplete": result.removed_incomplete,
        "skipped_in_use": result.skipped_in_use,
        "kept_unreadable": _unreadable_json(result.kept_unreadable),
        "aborted_uploads": result.aborted_uploads,
    }


def _prune_text(result: PruneResult) -> str:
    lines = [
        f"pruned {len(result.removed)} backup(s)"
        + (f": {', '.join(result.removed)}" if result.removed else "")
    ]
    if result.removed_incomplete:
        lines.append(f"removed unfinished: {', '.join(result.removed_incomplete)}")
    if result.skipped_in_use:
        lines.append(f"skipped (in use): {', '.join(result.skipped_in_use)}")
    if result.aborted_uploads:
        lines.append(f"aborted {result.aborted_uploads} upload(s) a dead writer left unfinished")
    lines += [
        f"kept unreadable {u.id}: {u.problem}; not removed, check it by hand"
        for u in result.kept_unreadable
    ]
    return "\n".join(lines)


def _made_room(store: BackupStore, keep_last: int | None, max_age: timedelta | None) -> str:
    """Apply the retention limits after a backup failed for want of space; in words."""
    try:
        result = prune(store, keep_last=keep_last, max_age=max_age, now=datetime.now(UTC))
    except BackupError as exc:
        return f"applying the retention limits failed too: {exc}"
    if not result.removed:
        return "the retention limits removed nothing: free space or tighten them"
    return (
        f"the retention limits removed {len(result.removed)} older backup(s) "
        f"({', '.join(result.removed)}), so the next backup has more room"
    )


def _upload_display(
    args: argparse.Namespace, dumped: Progress, location: str
) -> contextlib.AbstractContextManager[Progress]:
    """The display of an upload to ``location``. The dump's display is closed first
    (its work has finished): one bar at a time."""
    dumped.close()
    return progress(args, f"backup create: uploading to {location}", None, UPLOAD_UNIT)


def _create(args: argparse.Namespace) -> int:
    conninfo = connection_from_args(args)
    store = _store(args, existing=False)
    jobs = _check_jobs(args)
    keep_last, max_age = _limits(args)
    limited = keep_last is not None or max_age is not None
    try:
        with progress(args, f"backup create: dumping {conninfo.dbname}", None, "tables") as shown:
            manifest = take_backup(
                conninfo,
                store,
                jobs=jobs,
                lock_wait=args.lock_wait,
                shown=shown,
                uploading=lambda: _upload_display(args, shown, store.location),
            )
        pruned = None
        if limited:
            pruned = prune(
                store,
                keep_last=keep_last,
                max_age=max_age,
                now=datetime.now(UTC),
            )
    except DestinationFull as full:
        if not limited:
            raise CommandError(str(full)) from None
        # The limits are applied anyway: tightening them is how a full volume is freed
        # for the next scheduled backup without anyone running prune by hand.
        raise CommandError(f"{full}; {_made_room(store, keep_last, max_age)}") from None
    except ClientTooOld as exc:
        raise CommandError(str(exc), CLIENT_TOO_OLD_EXIT_CODE) from None
    except BackupError as exc:
        raise CommandError(str(exc)) from None
    created = _manifest_json(manifest)
    data: BackupManifestJson | BackupCreatedJson = created
    text = (
        f"backup {manifest.id} of {manifest.database} "
        f"(revision {manifest.schema_revision or 'none'}): {_size(manifest.size_bytes)}, "
        f"{len(manifest.files)} files, {manifest.duration_s:.1f} s\n"
        f"stored in {store.location.rstrip('/')}/{manifest.id}"
    )
    if pruned is not None:
        data = {"backup": created, "prune": _prune_json(pruned)}
        text += "\n" + _prune_text(pruned)
    emit(args, data, text)
    return 0


def _list(args: argparse.Namespace) -> int:
    catalog = _store(args)
    try:
        scan = catalog.scan()
    except BackupError as exc:
        raise CommandError(str(exc)) from None
    if args.output == "json":
        listing: BackupListJson = {
            "backups": [_manifest_json(m) for m in scan.complete],
            "incomplete": scan.unfinished,
            "unreadable": _unreadable_json(scan.unreadable),
        }
        emit(args, listing, "")
        return 0
    if not scan.complete and not scan.unfinished and not scan.unreadable:
        print(f"no backups in {catalog.location}")
        return 0
    header = f"{'ID':<24} {'DATABASE':<20} {'REVISION':<14} {'SIZE':>10} {'FINISHED':<20} VERIFIED"
    rows = [header]
    for m in reversed(scan.complete):
        rows.append(
            f"{m.id:<24} {m.database[:20]:<20} {(m.schema_revision or '-')[:14]:<14} "
            f"{_size(m.size_bytes):>10} {m.finished_at:%Y-%m-%d %H:%M:%S}  {_verified_text(m)}"
        )
    rows += [
        f"{backup_id:<24} (unfinished: marked in progress, no manifest)"
        for backup_id in scan.unfinished
    ]
    rows += [f"{u.id:<24} (unreadable, kept: {u.problem})" for u in scan.unreadable]
    print("\n".join(rows))
    return 0


def _verified_text(m: BackupManifest) -> str:
    verdict = (
        f"{m.verify_result} {m.verified_at:%Y-%m-%d %H:%M}"
        if m.verified_at and m.verify_result
        else "never"
    )
    if m.drill_error_at is not None:
        verdict += f" (drill could not run {m.drill_error_at:%Y-%m-%d %H:%M})"
    return verdict


def _resolve_id(catalog: BackupStore, backup_id: str | None) -> str | None:
    if backup_id != "latest":
        return backup_id
    try:
        newest = catalog.newest()
    except BackupError as exc:
        raise CommandError(str(exc)) from None
    if newest is None:
        raise CommandError(f"no complete backup in {catalog.location}")
    return newest.id


def _restore(args: argparse.Namespace) -> int:
    conninfo = connection_from_args(args)
    catalog = _store(args)
    jobs = _check_jobs(args)
    backup_id = _resolve_id(catalog, args.backup_id)
    assert backup_id is not None
    try:
        with progress(args, f"backup restore: restoring {backup_id}", None, "tables") as shown:
            result = restore_backup(
                catalog,
                backup_id,
                conninfo,
                target_database=args.target_database,
                in_place=args.in_place,
                jobs=jobs,
                shown=shown,
            )
    except ClientTooOld as exc:
        raise CommandError(str(exc), CLIENT_TOO_OLD_EXIT_CODE) from None
    except BackupError as exc:
        raise CommandError(str(exc)) from None
    how = "in place into" if result.in_place else "into new database"
    restored: RestoreJson = {
        "backup_id": result.backup_id,
        "target_database": result.target_database,
        "in_place": result.in_place,
        "duration_s": result.duration_s,
    }
    emit(
        args,
        restored,
        f"restored backup {result.backup_id} {how} {result.target_database} "
        f"in {result.duration_s:.1f} s",
    )
    return 0


def _drill_json(result: DrillResult) -> DrillJson:
    return {
        "backup_id": result.backup_id,
        "outcome": "passed" if result.passed else "failed",
        "passed": result.passed,
        "verified_at": result.verified_at.isoformat(),
        "duration_s": result.duration_s,
        "recorded": result.recorded,
        "not_recorded": result.not_recorded,
        "message": result.message,
        "checks": [{"name": c.name, "passed": c.passed, "detail": c.detail} for c in result.checks],
    }


def _drill_error_json(catalog: BackupStore, exc: DrillNotRun) -> DrillNotRunJson:
    manifest = None
    with contextlib.suppress(BackupError):
        manifest = catalog.read(exc.backup_id)
    return {
        "backup_id": exc.backup_id,
        "outcome": "error",
        "passed": None,
        "error": exc.reason,
        "error_at": exc.at.isoformat(),
        "recorded": exc.recorded,
        "verify_result": manifest.verify_result if manifest else None,
        "verified_at": manifest.verified_at.isoformat()
        if manifest and manifest.verified_at
        else None,
    }


def _verify(args: argparse.Namespace) -> int:
    conninfo = connection_from_args(args)
    catalog = _store(args)
    jobs = _check_jobs(args)
    try:
        backup_id = _resolve_id(catalog, args.backup_id)
        drilling = f"backup verify: drilling {backup_id or 'the newest'}"
        with progress(args, drilling, None, "tables") as shown:
            result = verify_backup(catalog, backup_id, conninfo, jobs=jobs, shown=shown)
    except DrillNotRun as exc:
        if args.output == "json":
            emit(args, _drill_error_json(catalog, exc), "")
        raise CommandError(str(exc), DRILL_NOT_RUN_EXIT_CODE) from None
    except BackupError as exc:
        raise CommandError(str(exc)) from None
    marks = {True: "ok", False: "FAILED", None: "skipped"}
    lines = [
        f"restore drill of backup {result.backup_id}: "
        f"{'passed' if result.passed else 'FAILED'} in {result.duration_s:.1f} s"
    ]
    lines += [f"  {marks[c.passed]:<7} {c.name}: {c.detail}" for c in result.checks]
    emit(args, _drill_json(result), "\n".join(lines))
    if not result.passed:
        unrecorded = (
            f"; this verdict was not recorded: {result.not_recorded}" if result.not_recorded else ""
        )
        raise CommandError(
            f"restore drill of backup {result.backup_id} failed: {result.message}{unrecorded}"
        )
    if result.not_recorded:
        manifest = None
        with contextlib.suppress(BackupError):
            manifest = catalog.read(result.backup_id)
        raise CommandError(
            f"restore drill of backup {result.backup_id!r} passed, but its verdict was not "
            f"recorded: {result.not_recorded}; the backup's recorded verdict is unchanged "
            f"({verdict_of(manifest)})",
            DRILL_NOT_RUN_EXIT_CODE,
        )
    return 0


def _prune(args: argparse.Namespace) -> int:
    keep_last, max_age = _limits(args)
    if keep_last is None and max_age is None:
        raise CommandError("nothing to prune by: give --keep-last and/or --max-age", 2)
    try:
        store = _store(args)
        with progress(args, "backup prune", None, ""):
            result = prune(store, keep_last=keep_last, max_age=max_age, now=datetime.now(UTC))
    except BackupError as exc:
        raise CommandError(str(exc)) from None
    emit(args, _prune_json(result), _prune_text(result))
    return 0


def _size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"

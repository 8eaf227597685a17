"""The backups in one destination folder, and the locks that keep readers and pruners apart.

Layout of a destination (a plain directory, which is what a PersistentVolumeClaim is
inside a pod)::

    <destination>/<id>/.in-progress      written first, removed once the manifest is in
    <destination>/<id>/manifest.json     written last and atomically
    <destination>/<id>/dump/...          pg_dump output (directory format)
    <destination>/.locks/<id>.lock       flock: shared while a restore reads the backup,
                                         exclusive while it is written or pruned

Every folder is in one of three states (``scan``):

- complete: ``manifest.json`` reads, and is this backup's;
- unfinished: no manifest, but the in-progress marker: its writer is at work or died,
  and pruning may remove it once no writer holds its lock;
- unreadable: a manifest that is damaged or of another backup, or neither manifest
  nor marker (a folder from before the marker existed, or damaged by hand). Its dump
  may be whole, so it is reported with its problem and never removed.

Locks are advisory ``flock`` locks, so they are released when the holding process dies.
A reader that may not write the destination (mounted read-only, full, or another user's)
takes its shared lock through the existing lock file, opened read-only; when there is no
lock file to open, it reads without one, since no writer of the destination holds one.
Folders are deleted with their in-progress marker last, so a deletion cut short (a
destination turned read-only, a file that will not go) leaves them unfinished, for the
next prune to finish, never bare and unreadable.
"""

from __future__ import annotations

import builtins
import contextlib
import errno
import fcntl
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from dbkeeper.backup.destination_faults import CANNOT_WRITE
from dbkeeper.backup.errors import (
    BackupIncomplete,
    BackupInUse,
    BackupNotFound,
    BackupUnreadable,
)
from dbkeeper.backup.manifest import MANIFEST_FILE, BackupManifest, ManifestInvalid

IN_PROGRESS_FILE = ".in-progress"
NO_MANIFEST_NOR_MARKER = "no manifest and no in-progress marker"
_VALID_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_LOCKS_DIR = ".locks"


def valid_backup_id(name: str) -> bool:
    """Whether ``name`` could be a backup's id (and so its folder's name)."""
    return _VALID_ID.match(name) is not None


def check_backup_id(backup_id: str) -> str:
    """The id itself, or BackupNotFound when it could not name a backup folder."""
    if not _VALID_ID.match(backup_id):
        raise BackupNotFound(
            f"{backup_id!r} is not a backup id: ids are letters, digits, '.', '_' and '-'"
        )
    return backup_id


@dataclass(frozen=True)
class UnreadableBackup:
    """A folder that may hold a backup but cannot be read as one, and why."""

    id: str
    problem: str


@dataclass(frozen=True)
class CatalogScan:
    """Every folder of a destination, by state; ``complete`` is oldest first."""

    complete: list[BackupManifest] = field(default_factory=list)
    unfinished: list[str] = field(default_factory=list)
    unreadable: list[UnreadableBackup] = field(default_factory=list)


class BackupCatalog:
    """Read and write the backups kept in ``destination``."""

    def __init__(self, destination: Path) -> None:
        self.destination = Path(destination)

    @property
    def location(self) -> str:
        return str(self.destination)

    @contextlib.contextmanager
    def files(self, backup_id: str, manifest: BackupManifest) -> Iterator[Path]:
        """The backup's folder itself: its files are read where they are."""
        del manifest
        yield self.backup_dir(backup_id)

    def backup_dir(self, backup_id: str) -> Path:
        return self.destination / check_backup_id(backup_id)

    def _folder_ids(self) -> builtins.list[str]:
        if not self.destination.is_dir():
            return []
        return sorted(
            entry.name
            for entry in self.destination.iterdir()
            if entry.is_dir() and not entry.name.startswith(".") and _VALID_ID.match(entry.name)
        )

    def scan(self) -> CatalogScan:
        """Read every folder once and sort it into complete, unfinished and unreadable."""
        scan = CatalogScan()
        for backup_id in self._folder_ids():
            try:
                scan.complete.append(self.read(backup_id))
            except BackupIncomplete:
                scan.unfinished.append(backup_id)
            except BackupUnreadable as exc:
                scan.unreadable.append(UnreadableBackup(backup_id, exc.problem))
            except BackupNotFound:
                pass  # removed since it was listed
        scan.complete.sort(key=lambda m: (m.created_at, m.id))
        return scan

    def list(self) -> builtins.list[BackupManifest]:
        """Every complete backup, oldest first."""
        return self.scan().complete

    def incomplete(self) -> builtins.list[str]:
        """Ids of unfinished backups: marked in progress, without a manifest."""
        return self.scan().unfinished

    def unreadable(self) -> builtins.list[UnreadableBackup]:
        """Folders that cannot be read as backups, each with its problem."""
        return self.scan().unreadable

    def newest(self) -> BackupManifest | None:
        """The newest complete backup; unfinished and unreadable folders do not count."""
        manifests = self.list()
        return manifests[-1] if manifests else None

    def read(self, backup_id: str) -> BackupManifest:
        """The manifest of a complete backup.

        Raises BackupNotFound (no such folder), BackupIncomplete (unfinished: marked in
        progress, no manifest) or BackupUnreadable (anything else that is not a readable
        manifest of this backup).
        """
        folder = self.backup_dir(backup_id)
        if not folder.is_dir():
            raise BackupNotFound(f"no backup {backup_id!r} in {self.destination}")
        try:
            data = (folder / MANIFEST_FILE).read_bytes()
        except FileNotFoundError:
            if (folder / IN_PROGRESS_FILE).exists():
                raise BackupIncomplete(
                    f"backup {backup_id!r} is incomplete: {MANIFEST_FILE} is missing "
                    "(the backup did not finish)"
                ) from None
            raise BackupUnreadable(backup_id, _describe_bare_folder(folder)) from None
        except OSError as exc:
            raise BackupUnreadable(
                backup_id, f"{MANIFEST_FILE} cannot be read: {exc.strerror or exc}"
            ) from None
        return parse_manifest(backup_id, data)

    def start(self, backup_id: str) -> Path:
        """Create the folder of a new backup, marked in progress before anything else."""
        folder = self.backup_dir(backup_id)
        folder.mkdir()
        try:
            (folder / IN_PROGRESS_FILE).touch()
        except BaseException:
            folder.rmdir()
            raise
        return folder

    def write(self, manifest: BackupManifest) -> None:
        """Write the manifest atomically: readers see the old one or the new one, whole.

        A folder with a manifest is complete, so the in-progress marker goes after it.
        """
        folder = self.backup_dir(manifest.id)
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=".manifest.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(manifest.to_json())
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp_name, folder / MANIFEST_FILE)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
        (folder / IN_PROGRESS_FILE).unlink(missing_ok=True)
        _fsync_dir(folder)

    def remove(self, backup_id: str) -> None:
        """Delete a backup's folder. It is marked in progress and its manifest goes
        first, so a half-deleted backup reads as unfinished (and the next prune finishes
        the job), never as complete or unreadable. Raises the first OSError met, once
        whatever could be deleted is gone."""
        folder = self.backup_dir(backup_id)
        with contextlib.suppress(FileNotFoundError):
            (folder / IN_PROGRESS_FILE).touch()
        (folder / MANIFEST_FILE).unlink(missing_ok=True)
        _delete_marked(folder)

    def discard(self, backup_id: str) -> bool:
        """Delete the folder of a backup that did not finish (marked in progress by
        ``start``), the marker last. True when it is gone; False when some of it could
        not be deleted: it is left marked in progress, for the next prune."""
        try:
            _delete_marked(self.backup_dir(backup_id))
        except OSError:
            return False
        return True

    def _lock_path(self, backup_id: str) -> Path:
        locks = self.destination / _LOCKS_DIR
        locks.mkdir(parents=True, exist_ok=True)
        return locks / f"{check_backup_id(backup_id)}.lock"

    def _open_lock(self, backup_id: str, *, shared: bool) -> int | None:
        """The lock file, opened; for a shared lock on a destination that refuses writes,
        the existing file opened read-only (flock needs no write access), or None when
        there is none. Raises OSError when an exclusive lock cannot be had."""
        try:
            return os.open(self._lock_path(backup_id), os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            if not shared or exc.errno not in CANNOT_WRITE:
                raise
        try:
            return os.open(self.destination / _LOCKS_DIR / f"{backup_id}.lock", os.O_RDONLY)
        except FileNotFoundError:
            # Writers and pruners make the lock file to take their lock: none holds it.
            return None

    @contextlib.contextmanager
    def _locked(self, backup_id: str, operation: int, busy_message: str) -> Iterator[None]:
        fd = self._open_lock(backup_id, shared=operation == fcntl.LOCK_SH)
        if fd is None:
            yield
            return
        try:
            try:
                fcntl.flock(fd, operation | fcntl.LOCK_NB)
            except BlockingIOError:
                raise BackupInUse(busy_message) from None
            yield
        finally:
            os.close(fd)

    def reading(self, backup_id: str) -> contextlib.AbstractContextManager[None]:
        """Hold the backup for reading (a restore): pruning skips it meanwhile."""
        return self._locked(
            backup_id,
            fcntl.LOCK_SH,
            f"backup {backup_id!r} is being written or pruned by another process",
        )

    def writing(self, backup_id: str) -> contextlib.AbstractContextManager[None]:
        """Hold the backup exclusively (while it is created or pruned)."""
        return self._locked(
            backup_id,
            fcntl.LOCK_EX,
            f"backup {backup_id!r} is in use by another process",
        )

    def abort_stale_uploads(self) -> int:
        """Nothing to abort: a folder has no multipart uploads."""
        return 0

    def forget_lock(self, backup_id: str) -> None:
        """Remove the lock file of a backup that no longer exists."""
        (self.destination / _LOCKS_DIR / f"{check_backup_id(backup_id)}.lock").unlink(
            missing_ok=True
        )


def parse_manifest(backup_id: str, data: bytes) -> BackupManifest:
    """The manifest of ``backup_id`` from its stored bytes; BackupUnreadable when they
    are damaged or the manifest of another backup."""
    try:
        manifest = BackupManifest.from_json(data)
    except ManifestInvalid as exc:
        raise BackupUnreadable(backup_id, f"damaged manifest: {exc}") from None
    if manifest.id != backup_id:
        raise BackupUnreadable(
            backup_id, f"the manifest is that of another backup ({manifest.id!r})"
        )
    return manifest


def _describe_bare_folder(folder: Path) -> str:
    files = sum(1 for path in folder.rglob("*") if path.is_file())
    return f"{NO_MANIFEST_NOR_MARKER} (the folder holds {files} file(s))"


def _delete_marked(folder: Path) -> None:
    """Delete a folder marked in progress, its marker last, so that a deletion cut short
    leaves it unfinished; raise the first OSError met once the rest is gone."""
    errors: list[OSError] = []

    def collect(
        _function: object, _path: str, exc_info: tuple[object, BaseException, object]
    ) -> None:
        if isinstance(exc_info[1], OSError) and not isinstance(exc_info[1], FileNotFoundError):
            errors.append(exc_info[1])

    try:
        entries = builtins.list(folder.iterdir())
    except FileNotFoundError:
        return
    for entry in entries:
        if entry.name == IN_PROGRESS_FILE:
            continue
        try:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, onerror=collect)
            else:
                entry.unlink(missing_ok=True)
        except OSError as exc:
            errors.append(exc)
    if errors:
        raise errors[0]
    left = [entry.name for entry in folder.iterdir() if entry.name != IN_PROGRESS_FILE]
    if left:
        raise OSError(errno.ENOTEMPTY, f"{len(left)} entries could not be deleted", str(folder))
    (folder / IN_PROGRESS_FILE).unlink(missing_ok=True)
    try:
        folder.rmdir()
    except FileNotFoundError:
        pass
    except OSError:
        with contextlib.suppress(OSError):
            (folder / IN_PROGRESS_FILE).touch()  # still unfinished, not bare
        raise


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

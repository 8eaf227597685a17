"""The backups in one destination folder, and the locks that keep readers and pruners apart.

Layout of a destination (a plain directory, which is what a PersistentVolumeClaim is
inside a pod)::

    <destination>/<id>/manifest.json     written last and atomically
    <destination>/<id>/dump/...          pg_dump output (directory format)
    <destination>/.locks/<id>.lock       flock: shared while a restore reads the backup,
                                         exclusive while it is written or pruned

A folder without ``manifest.json`` is an incomplete backup. Locks are advisory
``flock`` locks, so they are released when the holding process dies.
"""

from __future__ import annotations

import builtins
import contextlib
import fcntl
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from dbkeeper.backup.errors import BackupIncomplete, BackupInUse, BackupNotFound
from dbkeeper.backup.manifest import MANIFEST_FILE, BackupManifest, ManifestInvalid

_VALID_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_LOCKS_DIR = ".locks"


def check_backup_id(backup_id: str) -> str:
    """The id itself, or BackupNotFound when it could not name a backup folder."""
    if not _VALID_ID.match(backup_id):
        raise BackupNotFound(
            f"{backup_id!r} is not a backup id: ids are letters, digits, '.', '_' and '-'"
        )
    return backup_id


class BackupCatalog:
    """Read and write the backups kept in ``destination``."""

    def __init__(self, destination: Path) -> None:
        self.destination = Path(destination)

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

    def list(self) -> list[BackupManifest]:
        """Every complete backup, oldest first."""
        manifests = []
        for backup_id in self._folder_ids():
            with contextlib.suppress(BackupIncomplete, BackupNotFound):
                manifests.append(self.read(backup_id))
        return sorted(manifests, key=lambda m: (m.created_at, m.id))

    def incomplete(self) -> builtins.list[str]:
        """Ids of folders without a readable manifest (unfinished or damaged backups)."""
        found = []
        for backup_id in self._folder_ids():
            try:
                self.read(backup_id)
            except BackupIncomplete:
                found.append(backup_id)
        return found

    def newest(self) -> BackupManifest | None:
        manifests = self.list()
        return manifests[-1] if manifests else None

    def read(self, backup_id: str) -> BackupManifest:
        folder = self.backup_dir(backup_id)
        if not folder.is_dir():
            raise BackupNotFound(f"no backup {backup_id!r} in {self.destination}")
        path = folder / MANIFEST_FILE
        try:
            text = path.read_text()
        except FileNotFoundError:
            raise BackupIncomplete(
                f"backup {backup_id!r} is incomplete: {MANIFEST_FILE} is missing "
                "(the backup did not finish)"
            ) from None
        try:
            manifest = BackupManifest.from_json(text)
        except ManifestInvalid as exc:
            raise BackupIncomplete(f"backup {backup_id!r} has a damaged manifest: {exc}") from None
        if manifest.id != backup_id:
            raise BackupIncomplete(
                f"backup {backup_id!r} has the manifest of another backup ({manifest.id!r})"
            )
        return manifest

    def write(self, manifest: BackupManifest) -> None:
        """Write the manifest atomically: readers see the old one or the new one, whole."""
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
        _fsync_dir(folder)

    def remove(self, backup_id: str) -> None:
        """Delete a backup's folder; the manifest goes first so a half-deleted backup
        reads as incomplete, never as complete."""
        folder = self.backup_dir(backup_id)
        (folder / MANIFEST_FILE).unlink(missing_ok=True)
        shutil.rmtree(folder, ignore_errors=True)

    def _lock_path(self, backup_id: str) -> Path:
        locks = self.destination / _LOCKS_DIR
        locks.mkdir(parents=True, exist_ok=True)
        return locks / f"{check_backup_id(backup_id)}.lock"

    @contextlib.contextmanager
    def _locked(self, backup_id: str, operation: int, busy_message: str) -> Iterator[None]:
        fd = os.open(self._lock_path(backup_id), os.O_RDWR | os.O_CREAT, 0o644)
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

    def forget_lock(self, backup_id: str) -> None:
        """Remove the lock file of a backup that no longer exists."""
        (self.destination / _LOCKS_DIR / f"{check_backup_id(backup_id)}.lock").unlink(
            missing_ok=True
        )


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

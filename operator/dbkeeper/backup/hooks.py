"""Backup before migrate: the hook the migration engine calls before any schema move.

``before_move`` takes a full backup and returns its id, which the engine records in the
migration history and status. When the backup cannot be taken it raises BackupFailed,
and the engine must not start the migration.
"""

from __future__ import annotations

from pathlib import Path

from dbkeeper.backup.create import create_backup
from dbkeeper.backup.errors import BackupError, BackupFailed
from dbkeeper.conninfo import ConnInfo


class BackupBeforeMigrate:
    """Take a backup of ``admin_conninfo``'s database into ``destination``."""

    def __init__(self, destination: Path, admin_conninfo: ConnInfo, jobs: int = 2) -> None:
        self.destination = Path(destination)
        self.admin_conninfo = admin_conninfo
        self.jobs = jobs

    def before_move(self, plan: object) -> str:
        """Back up the database; ``plan`` (the migration about to run) is not inspected."""
        try:
            manifest = create_backup(self.admin_conninfo, self.destination, jobs=self.jobs)
        except (BackupError, OSError) as exc:
            raise BackupFailed(
                f"backup before migrate failed, migration not started: {exc}"
            ) from None
        return manifest.id

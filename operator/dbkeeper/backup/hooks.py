"""Backup before migrate: the hook the migration engine calls before any schema move.

``before_move`` takes a full backup and returns its id, which the engine records in the
migration history and status. When the backup cannot be taken it raises BackupFailed,
and the engine must not start the migration.
"""

from __future__ import annotations

from collections.abc import Mapping

from dbkeeper.backup.create import take_backup
from dbkeeper.backup.errors import BackupError, BackupFailed
from dbkeeper.backup.store import Destination
from dbkeeper.backup.stores import open_store
from dbkeeper.conninfo import ConnInfo


class BackupBeforeMigrate:
    """Take a backup of ``admin_conninfo``'s database into ``destination`` (a folder,
    or a bucket reached with ``credentials`` over the environment's)."""

    def __init__(
        self,
        destination: Destination,
        admin_conninfo: ConnInfo,
        jobs: int = 2,
        credentials: Mapping[str, str] | None = None,
    ) -> None:
        self.destination = destination
        self.admin_conninfo = admin_conninfo
        self.jobs = jobs
        self.credentials = credentials

    def before_move(self, plan: object) -> str:
        """Back up the database; ``plan`` (the migration about to run) is not inspected."""
        try:
            store = open_store(self.destination, self.credentials)
            manifest = take_backup(self.admin_conninfo, store, jobs=self.jobs)
        except (BackupError, OSError) as exc:
            raise BackupFailed(
                f"backup before migrate failed, migration not started: {exc}"
            ) from None
        return manifest.id

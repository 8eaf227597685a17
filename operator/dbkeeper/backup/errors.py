"""The failures of the backup layer, each with a message a person can act on."""

from __future__ import annotations


class BackupError(Exception):
    """Base of every backup-layer failure; the message never carries a password."""


class BackupFailed(BackupError):
    """Taking a backup did not produce a complete, checksummed backup."""


class BackupNotFound(BackupError):
    """No backup with that id (or no backup at all) is in the destination."""


class BackupInUse(BackupError):
    """Another process holds the backup (it is being written or pruned)."""


class RestoreRefused(BackupError):
    """The backup failed its checks (incomplete, missing or corrupted files), or the
    target is not acceptable; nothing was changed."""


class RestoreFailed(BackupError):
    """The checks passed but pg_restore failed; the partial target was dropped."""


class BackupIncomplete(BackupError):
    """The backup's folder has no readable manifest: it never finished, or was damaged."""

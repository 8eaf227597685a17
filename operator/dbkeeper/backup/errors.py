"""The failures of the backup layer, each with a message a person can act on."""

from __future__ import annotations

from datetime import datetime

DRILL_NOT_RUN_EXIT_CODE = 3
"""The exit code of ``dbkeeper backup verify`` when the backup's recorded verdict is
unchanged and the drill found nothing wrong with the backup: the drill could not run
(DrillNotRun), or it passed but could not record that. A drill that failed exits 1. The
operator tells the two apart by it (``manifests.backup``, ``reconcile.backup_jobs``)."""

CLIENT_TOO_OLD_EXIT_CODE = 4
"""The exit code of ``dbkeeper backup create`` and ``backup restore`` when the image's
pg_dump is older than the server, or its pg_restore older than the dump (ClientTooOld):
nothing was done, and only a newer dbkeeper image helps."""


class BackupError(Exception):
    """Base of every backup-layer failure; the message never carries a password."""


class BackupFailed(BackupError):
    """Taking a backup did not produce a complete, checksummed backup."""


class DestinationFull(BackupFailed):
    """Taking a backup failed because the destination ran out of space or quota."""


class BackupNotFound(BackupError):
    """No backup with that id (or no backup at all) is in the destination."""


class BackupInUse(BackupError):
    """Another process holds the backup (it is being written or pruned)."""


class RestoreRefused(BackupError):
    """The restore did not start, and nothing was changed: the target is not acceptable
    (it exists, or its name is not usable), or, as BackupFailedChecks, the backup is not."""


class BackupFailedChecks(RestoreRefused):
    """The backup itself is not restorable as it is: its manifest cannot be read, or a
    file is missing, corrupted or not listed. The backup's fault; nothing was changed."""


class RestoreFailed(BackupError):
    """The checks passed but pg_restore failed on the dump's content; the partial target
    was dropped. The backup's fault."""


class RestoreUnavailable(BackupError):
    """The restore could not run because of its surroundings, not of the backup: the
    server could not be reached or refused the login, a permission or a resource was
    missing, the server shut down, or a client tool is missing. The backup was not
    judged; a partial target was dropped."""


class MissingPrivilege(RestoreUnavailable):
    """The role a restore or a drill runs as lacks a privilege it needs, found before
    anything was created (see ``privileges``); the message names the role, each missing
    privilege and the statement that grants it."""

    def __init__(self, message: str, *, role: str, privileges: list[str]) -> None:
        super().__init__(message)
        self.role = role
        self.privileges = privileges


class ClientTooOld(BackupError):
    """A client tool is of an older PostgreSQL major than what it must read: pg_dump
    than the server, pg_restore than the pg_dump that made the backup. It was not run
    and nothing was changed; the message names both majors and what to do."""


class DumpClientTooOld(ClientTooOld, BackupFailed):
    """pg_dump is older than the server it would dump; no backup folder was made."""


class RestoreClientTooOld(ClientTooOld, RestoreUnavailable):
    """pg_restore is older than the backup's server (and so than the pg_dump that made
    it); nothing was restored. Not the backup's fault: a drill reports it as not run."""


class DestinationUnwritable(BackupError):
    """The backup destination refused a write (full, read-only, closed to the user);
    the message names it, the reason and what to do (see ``destination_faults``)."""


class BackupIncomplete(BackupError):
    """The backup never finished: its folder is marked in progress and has no manifest."""


class BackupUnreadable(BackupError):
    """The backup's folder cannot be read as a backup, yet may hold one: its manifest is
    damaged or of another backup, or it has neither a manifest nor an in-progress marker.
    Such a folder is reported and kept, never removed."""

    def __init__(self, backup_id: str, problem: str) -> None:
        super().__init__(f"backup {backup_id!r} cannot be read: {problem}")
        self.backup_id = backup_id
        self.problem = problem


class DrillNotRun(BackupError):
    """A restore drill could not run to its end because of its surroundings (see
    RestoreUnavailable); the backup's own verdict is unchanged. ``recorded`` says whether
    the error was written into the manifest's ``drill_error`` fields (not when there is
    no readable manifest, or the destination refused the write)."""

    def __init__(
        self, message: str, *, backup_id: str, reason: str, at: datetime, recorded: bool
    ) -> None:
        super().__init__(message)
        self.backup_id = backup_id
        self.reason = reason
        self.at = at
        self.recorded = recorded


class DestinationUnavailable(RestoreUnavailable, BackupFailed):
    """The destination could not be read or reached at all (an object store refusing
    the credentials, a bucket that does not exist, a network that is down). Nothing was
    changed; the message names the destination, the reason and what to do."""

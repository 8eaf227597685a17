"""Which backups to remove, and removing them without pulling one from under a restore.

Rules (``select_for_pruning``): ``keep_last`` and ``max_age`` are each a limit on what
is kept; a backup goes when it is not among the ``keep_last`` newest, or when it is
older than ``max_age``. Two backups always stay whatever the limits say: the newest
backup, and the newest backup whose last completed restore drill passed (so there is
always one backup known to restore; a later drill that could not run does not change
that). ``prune`` also skips every backup a restore or a drill is reading (it holds the
backup's lock), and removes the folders of backups that never finished (marked in
progress, no manifest), unless their writer still holds them. A folder it cannot read
as a backup (see ``catalog``) is never removed: it is reported, with its problem.

Each removal is decided again under the backup's exclusive lock, on a fresh reading
of the catalog: a drill that passed, or a writer that finished, since the first
reading changes the decision. A destination that refuses a removal (mounted read-only)
stops the prune with DestinationUnwritable, naming what was removed before; a prune
with nothing to remove needs no write and succeeds. A full destination is no obstacle:
deleting needs no space, which is how one is freed.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from dbkeeper.backup.catalog import UnreadableBackup
from dbkeeper.backup.destination_faults import unwritable
from dbkeeper.backup.errors import (
    BackupError,
    BackupIncomplete,
    BackupInUse,
    BackupNotFound,
    DestinationUnwritable,
)
from dbkeeper.backup.manifest import BackupManifest
from dbkeeper.backup.store import BackupStore

_AGE = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_max_age(text: str) -> timedelta:
    """``30d``, ``12h``, ``90m``, ``2w``, ``45s`` -> a positive timedelta; ValueError otherwise."""
    match = _AGE.match(text)
    if not match or int(match.group(1)) == 0:
        raise ValueError(
            f"max age {text!r} is not valid: use a positive whole number followed by "
            "s, m, h, d or w (for example 30d)"
        )
    return timedelta(seconds=int(match.group(1)) * _UNIT_SECONDS[match.group(2)])


def select_for_pruning(
    manifests: Sequence[BackupManifest],
    keep_last: int | None,
    max_age: timedelta | None,
    now: datetime,
) -> list[str]:
    """Ids of the backups the retention rules remove, oldest first."""
    if keep_last is not None and keep_last < 1:
        raise ValueError(f"keep_last must be at least 1, got {keep_last}")
    if max_age is not None and max_age <= timedelta(0):
        raise ValueError(f"max_age must be positive, got {max_age}")
    newest_first = sorted(manifests, key=lambda m: (m.created_at, m.id), reverse=True)
    protected = set()
    if newest_first:
        protected.add(newest_first[0].id)
    verified = [m for m in newest_first if m.is_verified]
    if verified:
        protected.add(verified[0].id)
    doomed = []
    for position, manifest in enumerate(newest_first):
        if manifest.id in protected:
            continue
        beyond_count = keep_last is not None and position >= keep_last
        too_old = max_age is not None and now - manifest.created_at > max_age
        if beyond_count or too_old:
            doomed.append(manifest.id)
    return list(reversed(doomed))


@dataclass(frozen=True)
class PruneResult:
    removed: list[str] = field(default_factory=list)
    skipped_in_use: list[str] = field(default_factory=list)
    removed_incomplete: list[str] = field(default_factory=list)
    kept_unreadable: list[UnreadableBackup] = field(default_factory=list)
    aborted_uploads: int = 0
    """Multipart uploads a dead writer left in an object store, aborted."""


def prune(
    catalog: BackupStore,
    *,
    keep_last: int | None,
    max_age: timedelta | None,
    now: datetime,
    remove_incomplete: bool = True,
) -> PruneResult:
    """Remove what ``select_for_pruning`` selects and unfinished folders, skipping
    backups in use; report, and keep, the folders that cannot be read."""
    scan = catalog.scan()
    result = PruneResult(kept_unreadable=list(scan.unreadable))

    def still_selected(backup_id: str) -> bool:
        return backup_id in select_for_pruning(catalog.list(), keep_last, max_age, now)

    try:
        for backup_id in select_for_pruning(scan.complete, keep_last, max_age, now):
            _remove_if(catalog, backup_id, still_selected, result.removed, result.skipped_in_use)
        if remove_incomplete:
            for backup_id in scan.unfinished:
                _remove_if(
                    catalog,
                    backup_id,
                    lambda b: _still_unfinished(catalog, b),
                    result.removed_incomplete,
                    result.skipped_in_use,
                )
        if remove_incomplete:
            with contextlib.suppress(OSError):
                # Best effort: a bucket lifecycle rule is the backstop (docs/backups.md).
                result = replace(result, aborted_uploads=catalog.abort_stale_uploads())
    except _RemovalRefused as refused:
        done = result.removed + result.removed_incomplete
        raise DestinationUnwritable(
            f"prune stopped at backup {refused.backup_id}: "
            + unwritable(catalog.location, refused.error, "prune again")
            + (f"; removed before it: {', '.join(done)}" if done else "; nothing was removed")
            + f"; {refused.backup_id} {_state_in_words(catalog, refused.backup_id)}"
        ) from None
    return result


class _RemovalRefused(Exception):
    def __init__(self, backup_id: str, error: OSError) -> None:
        super().__init__(backup_id)
        self.backup_id = backup_id
        self.error = error


def _state_in_words(catalog: BackupStore, backup_id: str) -> str:
    try:
        catalog.read(backup_id)
    except BackupIncomplete:
        return "is left unfinished (marked in progress), for the next prune to remove"
    except BackupNotFound:
        return "is gone"
    except BackupError as exc:
        return f"cannot be read: {exc}"
    return "is still complete"


def _still_unfinished(catalog: BackupStore, backup_id: str) -> bool:
    try:
        catalog.read(backup_id)
    except BackupIncomplete:
        return True
    except BackupError:
        return False
    return False


def _remove_if(
    catalog: BackupStore,
    backup_id: str,
    still_due: Callable[[str], bool],
    removed: list[str],
    in_use: list[str],
) -> None:
    """Remove the backup if, once its exclusive lock is held, it is still due; raise
    _RemovalRefused when the destination refuses (the lock file, or the deletion)."""
    try:
        with catalog.writing(backup_id):
            if not still_due(backup_id):
                return
            catalog.remove(backup_id)
            catalog.forget_lock(backup_id)
    except BackupInUse:
        in_use.append(backup_id)
        return
    except OSError as exc:
        raise _RemovalRefused(backup_id, exc) from None
    removed.append(backup_id)

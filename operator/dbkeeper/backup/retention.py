"""Which backups to remove, and removing them without pulling one from under a restore.

Rules (``select_for_pruning``): ``keep_last`` and ``max_age`` are each a limit on what
is kept; a backup goes when it is not among the ``keep_last`` newest, or when it is
older than ``max_age``. Two backups always stay whatever the limits say: the newest
backup, and the newest backup whose restore drill passed (so there is always one backup
known to restore). ``prune`` also skips every backup a restore is reading (it holds the
backup's lock), and removes the folders of backups that never finished, unless their
writer still holds them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from dbkeeper.backup.catalog import BackupCatalog
from dbkeeper.backup.errors import BackupInUse
from dbkeeper.backup.manifest import BackupManifest

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


def prune(
    catalog: BackupCatalog,
    *,
    keep_last: int | None,
    max_age: timedelta | None,
    now: datetime,
    remove_incomplete: bool = True,
) -> PruneResult:
    """Remove what ``select_for_pruning`` selects, skipping backups in use."""
    result = PruneResult()
    for backup_id in select_for_pruning(catalog.list(), keep_last, max_age, now):
        _remove_unless_held(catalog, backup_id, result.removed, result.skipped_in_use)
    if remove_incomplete:
        for backup_id in catalog.incomplete():
            _remove_unless_held(
                catalog, backup_id, result.removed_incomplete, result.skipped_in_use
            )
    return result


def _remove_unless_held(
    catalog: BackupCatalog, backup_id: str, removed: list[str], in_use: list[str]
) -> None:
    try:
        with catalog.writing(backup_id):
            catalog.remove(backup_id)
            catalog.forget_lock(backup_id)
    except BackupInUse:
        in_use.append(backup_id)
        return
    removed.append(backup_id)

"""Pruning real backups: retention limits, and backups in use are skipped."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dbkeeper.backup.catalog import BackupCatalog
from dbkeeper.backup.create import create_backup
from dbkeeper.backup.drill import verify_backup
from dbkeeper.backup.retention import prune
from dbkeeper.conninfo import ConnInfo

DAY0 = datetime(2026, 10, 1, 2, 0, tzinfo=UTC)


def _take(populated: ConnInfo, catalog: BackupCatalog, day: int) -> str:
    return create_backup(
        populated, catalog.destination, jobs=1, clock=lambda: DAY0 + timedelta(days=day)
    ).id


def test_prune_keeps_the_newest_verified_and_skips_a_backup_being_restored(
    populated: ConnInfo, catalog: BackupCatalog, admin: ConnInfo
) -> None:
    oldest, verified, being_read, newest = (_take(populated, catalog, d) for d in range(4))
    assert verify_backup(catalog, verified, admin).passed

    with catalog.reading(being_read):
        result = prune(catalog, keep_last=1, max_age=None, now=DAY0 + timedelta(days=4))

    assert result.removed == [oldest]
    assert result.skipped_in_use == [being_read]
    assert [m.id for m in catalog.list()] == [verified, being_read, newest]
    assert not catalog.backup_dir(oldest).exists()


def test_prune_removes_unfinished_backups_but_not_one_being_written(
    populated: ConnInfo, catalog: BackupCatalog
) -> None:
    kept = _take(populated, catalog, 0)
    abandoned = catalog.backup_dir("20261001T000000Z-dead01")
    (abandoned / "dump").mkdir(parents=True)
    in_progress = catalog.backup_dir("20261001T000000Z-busy01")
    in_progress.mkdir()

    with catalog.writing("20261001T000000Z-busy01"):
        result = prune(catalog, keep_last=5, max_age=None, now=DAY0)

    assert result.removed_incomplete == ["20261001T000000Z-dead01"]
    assert not abandoned.exists()
    assert in_progress.exists()
    assert [m.id for m in catalog.list()] == [kept]

"""Pruning real backups: retention limits, backups in use are skipped, and only folders
known to be unfinished are removed; one that cannot be read is reported and kept."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dbkeeper.backup.catalog import IN_PROGRESS_FILE, BackupCatalog, UnreadableBackup
from dbkeeper.backup.create import create_backup
from dbkeeper.backup.drill import verify_backup
from dbkeeper.backup.retention import prune
from dbkeeper.conninfo import ConnInfo
from tests.integration.backup.conftest import backup_whose_writer_died

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


def test_prune_removes_a_backup_whose_writer_died_but_not_one_being_written(
    populated: ConnInfo, catalog: BackupCatalog
) -> None:
    kept = _take(populated, catalog, 0)
    abandoned = backup_whose_writer_died(populated, catalog.destination)
    assert (catalog.backup_dir(abandoned) / IN_PROGRESS_FILE).is_file()
    assert (catalog.backup_dir(abandoned) / "dump" / "toc.dat").is_file()
    in_progress = catalog.start("20261001T000000Z-busy01")

    with catalog.writing("20261001T000000Z-busy01"):
        result = prune(catalog, keep_last=5, max_age=None, now=DAY0)

    assert result.removed_incomplete == [abandoned]
    assert result.skipped_in_use == ["20261001T000000Z-busy01"]
    assert not catalog.backup_dir(abandoned).exists()
    assert in_progress.exists()
    assert [m.id for m in catalog.list()] == [kept]


def test_prune_keeps_a_complete_backup_whose_manifest_is_damaged(
    populated: ConnInfo, catalog: BackupCatalog
) -> None:
    damaged, newest = _take(populated, catalog, 0), _take(populated, catalog, 1)
    dump_files = sorted(p.name for p in (catalog.backup_dir(damaged) / "dump").iterdir())
    manifest = catalog.backup_dir(damaged) / "manifest.json"
    manifest.write_text(manifest.read_text()[:100])

    result = prune(catalog, keep_last=1, max_age=None, now=DAY0 + timedelta(days=2))

    assert result.removed == []
    assert result.removed_incomplete == []
    (unreadable,) = result.kept_unreadable
    assert unreadable.id == damaged
    assert unreadable.problem.startswith("damaged manifest: not a valid backup manifest")
    assert sorted(p.name for p in (catalog.backup_dir(damaged) / "dump").iterdir()) == dump_files
    assert [m.id for m in catalog.list()] == [newest]


def test_prune_keeps_a_folder_holding_a_dump_without_manifest_or_marker(
    populated: ConnInfo, catalog: BackupCatalog
) -> None:
    unknown = _take(populated, catalog, 0)
    (catalog.backup_dir(unknown) / "manifest.json").unlink()
    files = len([p for p in catalog.backup_dir(unknown).rglob("*") if p.is_file()])

    result = prune(catalog, keep_last=1, max_age=None, now=DAY0 + timedelta(days=2))

    assert result.removed_incomplete == []
    assert result.kept_unreadable == [
        UnreadableBackup(
            unknown,
            f"no manifest and no in-progress marker (the folder holds {files} file(s))",
        )
    ]
    assert (catalog.backup_dir(unknown) / "dump" / "toc.dat").is_file()


def test_a_manifest_of_another_backup_is_reported_and_kept(
    populated: ConnInfo, catalog: BackupCatalog
) -> None:
    first, second = _take(populated, catalog, 0), _take(populated, catalog, 1)
    (catalog.backup_dir(first) / "manifest.json").write_bytes(
        (catalog.backup_dir(second) / "manifest.json").read_bytes()
    )

    result = prune(catalog, keep_last=1, max_age=None, now=DAY0 + timedelta(days=2))

    assert result.kept_unreadable == [
        UnreadableBackup(first, f"the manifest is that of another backup ({second!r})")
    ]
    assert catalog.backup_dir(first).exists()

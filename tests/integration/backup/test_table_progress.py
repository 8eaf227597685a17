"""pg_dump and pg_restore report their progress table by table: the count is known
before they start, and each table of the backup is counted once, in both formats, with
parallel jobs, in a restore in place and in a drill."""

from __future__ import annotations

from pathlib import Path

import pytest

from dbkeeper.backup.catalog import BackupCatalog
from dbkeeper.backup.create import create_backup
from dbkeeper.backup.drill import verify_backup
from dbkeeper.backup.manifest import BackupManifest, DumpFormat
from dbkeeper.backup.restore import restore_backup
from dbkeeper.conninfo import ConnInfo
from tests.recorded_progress import RecordedProgress


@pytest.mark.parametrize(("dump_format", "jobs"), [("directory", 2), ("custom", 1)])
def test_a_dump_counts_each_table_once(
    populated: ConnInfo, destination: Path, dump_format: DumpFormat, jobs: int
) -> None:
    shown = RecordedProgress()

    manifest = create_backup(
        populated, destination, jobs=jobs, dump_format=dump_format, shown=shown
    )

    tables = len(manifest.row_counts)
    assert tables == 4
    assert shown.expected == [tables]
    assert shown.done == tables


@pytest.mark.parametrize("in_place", [False, True])
def test_a_restore_counts_each_table_of_the_backup_once(
    backup: BackupManifest, catalog: BackupCatalog, admin: ConnInfo, in_place: bool
) -> None:
    shown = RecordedProgress()

    restore_backup(
        catalog,
        backup.id,
        admin,
        in_place=in_place,
        target_database=None if in_place else "copy_progress",
        jobs=2,
        shown=shown,
    )

    assert shown.expected == [len(backup.row_counts)]
    assert shown.done == len(backup.row_counts)


def test_a_drill_counts_the_tables_it_restores(
    backup: BackupManifest, catalog: BackupCatalog, admin: ConnInfo
) -> None:
    shown = RecordedProgress()

    result = verify_backup(catalog, backup.id, admin, shown=shown)

    assert result.passed, result.message
    assert shown.expected == [len(backup.row_counts)]
    assert shown.done == len(backup.row_counts)

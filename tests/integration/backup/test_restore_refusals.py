"""Damaged or unfinished backups are refused before anything is touched."""

from __future__ import annotations

import re

import pytest

from dbkeeper.backup.catalog import BackupCatalog
from dbkeeper.backup.errors import BackupFailedChecks, BackupInUse, RestoreRefused
from dbkeeper.backup.manifest import BackupManifest
from dbkeeper.backup.restore import default_target_database, restore_backup
from dbkeeper.conninfo import ConnInfo
from tests.integration.backup.conftest import backup_whose_writer_died
from tests.integration.backup.sample_schema import (
    database_exists,
    databases_like,
    table_checksums,
)


def _largest_data_file(catalog: BackupCatalog, manifest: BackupManifest) -> str:
    folder = catalog.backup_dir(manifest.id)
    data_files = [name for name in manifest.files if name != "dump/toc.dat"]
    return max(data_files, key=lambda name: (folder / name).stat().st_size)


def test_a_corrupted_file_is_refused_and_no_database_is_created(
    backup: BackupManifest, catalog: BackupCatalog, admin: ConnInfo
) -> None:
    name = _largest_data_file(catalog, backup)
    path = catalog.backup_dir(backup.id) / name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))

    with pytest.raises(RestoreRefused, match=re.escape(f"{name}: sha256 does not match")):
        restore_backup(catalog, backup.id, admin)

    assert not database_exists(admin, default_target_database(backup.id))


def test_a_truncated_file_is_refused(
    backup: BackupManifest, catalog: BackupCatalog, admin: ConnInfo
) -> None:
    name = _largest_data_file(catalog, backup)
    path = catalog.backup_dir(backup.id) / name
    path.write_bytes(path.read_bytes()[:10])

    with pytest.raises(RestoreRefused, match="corrupted or truncated"):
        restore_backup(catalog, backup.id, admin, target_database="copy_truncated")

    assert not database_exists(admin, "copy_truncated")


def test_a_missing_file_is_refused(
    backup: BackupManifest, catalog: BackupCatalog, admin: ConnInfo
) -> None:
    (catalog.backup_dir(backup.id) / "dump/toc.dat").unlink()

    with pytest.raises(RestoreRefused, match=r"dump/toc\.dat: missing"):
        restore_backup(catalog, backup.id, admin, target_database="copy_missing")

    assert not database_exists(admin, "copy_missing")


def test_a_backup_without_manifest_is_refused(
    backup: BackupManifest, catalog: BackupCatalog, admin: ConnInfo
) -> None:
    (catalog.backup_dir(backup.id) / "manifest.json").unlink()

    with pytest.raises(RestoreRefused, match="no manifest and no in-progress marker"):
        restore_backup(catalog, backup.id, admin, target_database="copy_incomplete")

    assert not database_exists(admin, "copy_incomplete")


def test_an_unfinished_backup_is_refused(
    populated: ConnInfo, catalog: BackupCatalog, admin: ConnInfo
) -> None:
    unfinished = backup_whose_writer_died(populated, catalog.destination)

    with pytest.raises(RestoreRefused, match="incomplete"):
        restore_backup(catalog, unfinished, admin, target_database="copy_unfinished")

    assert not database_exists(admin, "copy_unfinished")


def test_a_backup_with_a_damaged_manifest_is_refused_and_nothing_is_created(
    backup: BackupManifest, catalog: BackupCatalog, admin: ConnInfo
) -> None:
    manifest = catalog.backup_dir(backup.id) / "manifest.json"
    manifest.write_text(manifest.read_text().replace('"files"', '"fi1es"'))

    with pytest.raises(BackupFailedChecks, match=r"cannot be read: damaged manifest: .*files"):
        restore_backup(catalog, backup.id, admin, target_database="copy_damaged")

    assert not database_exists(admin, "copy_damaged")
    assert manifest.read_text().count('"fi1es"') == 1  # left as it was found


def test_in_place_restore_of_a_backup_with_a_damaged_manifest_changes_nothing(
    populated: ConnInfo, backup: BackupManifest, catalog: BackupCatalog, admin: ConnInfo
) -> None:
    before = table_checksums(populated)
    (catalog.backup_dir(backup.id) / "manifest.json").write_text("{")

    with pytest.raises(RestoreRefused, match="damaged manifest"):
        restore_backup(catalog, backup.id, admin, in_place=True)

    assert table_checksums(populated) == before
    assert databases_like(admin, "%\\_dbk\\_%") == []


def test_in_place_restore_of_a_corrupted_backup_leaves_the_database_untouched(
    populated: ConnInfo, backup: BackupManifest, catalog: BackupCatalog, admin: ConnInfo
) -> None:
    before = table_checksums(populated)
    path = catalog.backup_dir(backup.id) / _largest_data_file(catalog, backup)
    path.write_bytes(path.read_bytes()[:-7])

    with pytest.raises(RestoreRefused):
        restore_backup(catalog, backup.id, admin, in_place=True)

    assert table_checksums(populated) == before
    assert databases_like(admin, "%\\_dbk\\_%") == []


def test_an_existing_database_is_not_overwritten_without_in_place(
    populated: ConnInfo, backup: BackupManifest, catalog: BackupCatalog, admin: ConnInfo
) -> None:
    with pytest.raises(RestoreRefused, match="already exists"):
        restore_backup(catalog, backup.id, admin, target_database=populated.dbname)


def test_a_backup_being_written_is_not_restored(
    backup: BackupManifest, catalog: BackupCatalog, admin: ConnInfo
) -> None:
    with catalog.writing(backup.id), pytest.raises(BackupInUse):
        restore_backup(catalog, backup.id, admin, target_database="copy_busy")

    assert not database_exists(admin, "copy_busy")

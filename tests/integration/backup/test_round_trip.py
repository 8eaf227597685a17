"""A backup restores to the very same rows, audit chain included."""

from __future__ import annotations

import psycopg

from dbkeeper.backup.catalog import BackupCatalog
from dbkeeper.backup.create import create_backup
from dbkeeper.backup.manifest import BackupManifest
from dbkeeper.backup.restore import restore_backup
from dbkeeper.conninfo import ConnInfo
from tests.integration.backup.sample_schema import audit_chain_breaks, table_checksums


def test_restore_into_a_new_database_gives_identical_rows_and_an_intact_audit_chain(
    populated: ConnInfo, backup: BackupManifest, catalog: BackupCatalog, admin: ConnInfo
) -> None:
    result = restore_backup(catalog, backup.id, admin)

    restored = admin.with_database(result.target_database)
    assert not result.in_place
    assert result.target_database != populated.dbname
    assert table_checksums(restored) == table_checksums(populated)
    assert len(table_checksums(restored)) == 4
    assert audit_chain_breaks(restored) == []


def test_restore_into_a_named_database(
    backup: BackupManifest, catalog: BackupCatalog, admin: ConnInfo, populated: ConnInfo
) -> None:
    result = restore_backup(catalog, backup.id, admin, target_database="copy_named")

    assert result.target_database == "copy_named"
    assert table_checksums(admin.with_database("copy_named")) == table_checksums(populated)


def test_restore_in_place_returns_the_database_to_the_backup(
    populated: ConnInfo, catalog: BackupCatalog, destination: object, admin: ConnInfo
) -> None:
    manifest = create_backup(populated, catalog.destination)
    before = table_checksums(populated)
    with psycopg.connect(populated.dsn(), autocommit=True) as conn:
        conn.execute("DELETE FROM clinic.visits WHERE id % 2 = 0")
        conn.execute("UPDATE public.alembic_version SET version_num = '0004_broken'")
    assert table_checksums(populated) != before

    result = restore_backup(catalog, manifest.id, admin, in_place=True)

    assert result.in_place
    assert result.target_database == populated.dbname
    assert table_checksums(populated) == before

"""The hook the migration engine calls before a schema move."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from dbkeeper.backup.catalog import BackupCatalog
from dbkeeper.backup.errors import BackupFailed
from dbkeeper.backup.hooks import BackupBeforeMigrate
from dbkeeper.backup.restore import restore_backup
from dbkeeper.conninfo import ConnInfo
from tests.integration.backup.sample_schema import REVISION, table_checksums


def test_before_move_takes_a_backup_and_returns_its_id(
    populated: ConnInfo, destination: Path
) -> None:
    hook = BackupBeforeMigrate(destination, populated, jobs=2)

    backup_id = hook.before_move(plan=None)

    manifest = BackupCatalog(destination).read(backup_id)
    assert manifest.database == populated.dbname
    assert manifest.schema_revision == REVISION


def test_before_move_fails_clearly_when_the_destination_is_unwritable(
    populated: ConnInfo, tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the backup folder should be")
    hook = BackupBeforeMigrate(blocker / "backups", populated, jobs=2)

    with pytest.raises(
        BackupFailed, match=r"migration not started.*cannot write to the backup destination"
    ):
        hook.before_move(plan=None)


def test_before_move_fails_without_revealing_the_password(
    populated: ConnInfo, destination: Path
) -> None:
    wrong = ConnInfo(
        populated.host,
        populated.port,
        populated.dbname,
        populated.user,
        password="not-the-password-x9",
    )
    hook = BackupBeforeMigrate(destination, wrong, jobs=2)

    with pytest.raises(BackupFailed) as failure:
        hook.before_move(plan=None)

    assert "not-the-password-x9" not in str(failure.value)
    assert BackupCatalog(destination).list() == []
    assert BackupCatalog(destination).incomplete() == []


def _fail_half_way_through_a_migration(info: ConnInfo) -> None:
    """Change the revision, data and schema, then fail, committing step by step as a
    non-transactional migration would."""
    with psycopg.connect(info.dsn(), autocommit=True) as conn:
        conn.execute("UPDATE public.alembic_version SET version_num = '0004_bad'")
        conn.execute("DELETE FROM clinic.visits WHERE id > 100")
        conn.execute("ALTER TABLE clinic.patients ADD COLUMN risk int")
        conn.execute("UPDATE clinic.patients SET risk = 1 / 0")


def test_a_failed_migration_after_the_backup_is_undone_by_restoring_it(
    populated: ConnInfo, destination: Path, admin: ConnInfo
) -> None:
    before = table_checksums(populated)
    backup_id = BackupBeforeMigrate(destination, populated, jobs=2).before_move(plan=None)
    with pytest.raises(psycopg.errors.DivisionByZero):
        _fail_half_way_through_a_migration(populated)
    assert table_checksums(populated) != before

    restore_backup(BackupCatalog(destination), backup_id, admin, in_place=True)

    assert table_checksums(populated) == before

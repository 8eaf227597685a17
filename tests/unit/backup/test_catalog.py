"""The catalog of one destination folder, and its locks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dbkeeper.backup.catalog import BackupCatalog
from dbkeeper.backup.errors import BackupIncomplete, BackupInUse, BackupNotFound
from dbkeeper.backup.manifest import BackupManifest

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def _manifest(backup_id: str, hours: int) -> BackupManifest:
    return BackupManifest(
        id=backup_id,
        created_at=T0 + timedelta(hours=hours),
        finished_at=T0 + timedelta(hours=hours),
        database="clinic",
        schema_revision="0001",
        server_version="15.8",
        format="directory",
        size_bytes=0,
        duration_s=0.1,
        files={"dump/toc.dat": "0" * 64},
        row_counts={},
    )


def test_list_returns_complete_backups_oldest_first(tmp_path: Path) -> None:
    catalog = BackupCatalog(tmp_path)
    catalog.write(_manifest("b-late", 5))
    catalog.write(_manifest("a-early", 1))

    assert [m.id for m in catalog.list()] == ["a-early", "b-late"]
    assert catalog.newest() == _manifest("b-late", 5)


def test_a_folder_without_manifest_is_incomplete_not_listed(tmp_path: Path) -> None:
    catalog = BackupCatalog(tmp_path)
    catalog.write(_manifest("done", 1))
    (tmp_path / "unfinished" / "dump").mkdir(parents=True)

    assert [m.id for m in catalog.list()] == ["done"]
    assert catalog.incomplete() == ["unfinished"]
    with pytest.raises(BackupIncomplete, match="did not finish"):
        catalog.read("unfinished")


def test_a_damaged_manifest_counts_as_incomplete(tmp_path: Path) -> None:
    catalog = BackupCatalog(tmp_path)
    catalog.write(_manifest("damaged", 1))
    (tmp_path / "damaged" / "manifest.json").write_text('{"id": "damaged"')

    assert catalog.list() == []
    assert catalog.incomplete() == ["damaged"]


def test_writing_leaves_no_temporary_files(tmp_path: Path) -> None:
    catalog = BackupCatalog(tmp_path)
    catalog.write(_manifest("one", 1))
    catalog.write(_manifest("one", 2))

    assert [p.name for p in (tmp_path / "one").iterdir()] == ["manifest.json"]
    assert catalog.read("one").created_at == T0 + timedelta(hours=2)


@pytest.mark.parametrize("bad_id", ["../etc", "a/b", "", ".hidden"])
def test_ids_that_are_not_plain_names_are_rejected(tmp_path: Path, bad_id: str) -> None:
    with pytest.raises(BackupNotFound, match="not a backup id"):
        BackupCatalog(tmp_path).read(bad_id)


def test_an_unknown_backup_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(BackupNotFound, match="no backup 'nope'"):
        BackupCatalog(tmp_path).read("nope")


def test_readers_share_a_backup_but_exclude_a_writer(tmp_path: Path) -> None:
    catalog = BackupCatalog(tmp_path)

    with catalog.reading("b1"), catalog.reading("b1"), pytest.raises(BackupInUse):
        catalog.writing("b1").__enter__()
    with catalog.writing("b1"):
        pass

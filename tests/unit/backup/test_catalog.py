"""The catalog of one destination folder, and its locks.

Every folder is complete, unfinished (marked in progress, no manifest) or unreadable
(anything else); only unfinished ones may be removed by pruning.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dbkeeper.backup.catalog import (
    IN_PROGRESS_FILE,
    NO_MANIFEST_NOR_MARKER,
    BackupCatalog,
    UnreadableBackup,
)
from dbkeeper.backup.errors import (
    BackupIncomplete,
    BackupInUse,
    BackupNotFound,
    BackupUnreadable,
)
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


def test_a_folder_marked_in_progress_without_manifest_is_unfinished_not_listed(
    tmp_path: Path,
) -> None:
    catalog = BackupCatalog(tmp_path)
    catalog.write(_manifest("done", 1))
    (catalog.start("unfinished") / "dump").mkdir()

    scan = catalog.scan()

    assert [m.id for m in scan.complete] == ["done"]
    assert scan.unfinished == ["unfinished"]
    assert scan.unreadable == []
    assert catalog.incomplete() == ["unfinished"]
    with pytest.raises(BackupIncomplete, match="did not finish"):
        catalog.read("unfinished")


def test_writing_the_manifest_ends_the_in_progress_mark(tmp_path: Path) -> None:
    catalog = BackupCatalog(tmp_path)
    folder = catalog.start("b1")
    assert (folder / IN_PROGRESS_FILE).is_file()

    catalog.write(_manifest("b1", 1))

    assert not (folder / IN_PROGRESS_FILE).exists()
    assert [m.id for m in catalog.list()] == ["b1"]


def test_a_manifest_beside_a_leftover_marker_is_a_complete_backup(tmp_path: Path) -> None:
    # The writer died between writing the manifest and removing the mark.
    catalog = BackupCatalog(tmp_path)
    catalog.write(_manifest("b1", 1))
    (tmp_path / "b1" / IN_PROGRESS_FILE).touch()

    assert [m.id for m in catalog.scan().complete] == ["b1"]


def test_a_damaged_manifest_makes_the_backup_unreadable_not_unfinished(tmp_path: Path) -> None:
    catalog = BackupCatalog(tmp_path)
    catalog.write(_manifest("damaged", 1))
    (tmp_path / "damaged" / "manifest.json").write_text('{"id": "damaged"')

    scan = catalog.scan()

    assert scan.complete == []
    assert scan.unfinished == []
    (unreadable,) = scan.unreadable
    assert unreadable.id == "damaged"
    assert unreadable.problem.startswith("damaged manifest: not a valid backup manifest")
    with pytest.raises(BackupUnreadable, match="'damaged' cannot be read: damaged manifest"):
        catalog.read("damaged")


def test_a_manifest_that_is_not_utf8_is_a_damaged_manifest(tmp_path: Path) -> None:
    catalog = BackupCatalog(tmp_path)
    catalog.write(_manifest("b1", 1))
    (tmp_path / "b1" / "manifest.json").write_bytes(b"\xff\xfe\x00{")

    assert catalog.unreadable()[0].problem.startswith("damaged manifest: ")


def test_the_manifest_of_another_backup_makes_the_folder_unreadable(tmp_path: Path) -> None:
    catalog = BackupCatalog(tmp_path)
    catalog.write(_manifest("b1", 1))
    (tmp_path / "copy").mkdir()
    (tmp_path / "copy" / "manifest.json").write_bytes(
        (tmp_path / "b1" / "manifest.json").read_bytes()
    )

    assert catalog.unreadable() == [
        UnreadableBackup("copy", "the manifest is that of another backup ('b1')")
    ]


def test_a_folder_with_neither_manifest_nor_marker_is_unreadable(tmp_path: Path) -> None:
    catalog = BackupCatalog(tmp_path)
    (tmp_path / "old" / "dump").mkdir(parents=True)
    (tmp_path / "old" / "dump" / "toc.dat").write_bytes(b"toc")

    assert catalog.scan().unfinished == []
    assert catalog.unreadable() == [
        UnreadableBackup("old", f"{NO_MANIFEST_NOR_MARKER} (the folder holds 1 file(s))")
    ]


def test_a_removal_cut_short_leaves_an_unfinished_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalog = BackupCatalog(tmp_path)
    catalog.write(_manifest("b1", 1))
    (tmp_path / "b1" / "dump").mkdir()
    (tmp_path / "b1" / "dump" / "toc.dat").write_bytes(b"toc")
    # The deletion stops before the folder's contents are gone.
    monkeypatch.setattr("dbkeeper.backup.catalog.shutil.rmtree", lambda *a, **k: None)

    with pytest.raises(OSError, match="could not be deleted"):
        catalog.remove("b1")

    assert catalog.scan().unfinished == ["b1"]


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

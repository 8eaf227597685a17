"""Loading migration sets: order, checksums, and clear errors for bad names and shapes."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from dbkeeper.migrate import MigrationError, load_set

SETS_ROOT = Path(__file__).resolve().parents[2] / "fixtures" / "migration_sets"


def test_revisions_are_ordered_from_base_to_head() -> None:
    toy = load_set("toy", SETS_ROOT)

    assert toy.ids == ["0001", "0002", "0003", "0004"]
    assert toy.head == "0004"
    assert [r.down_revision for r in toy.revisions] == [None, "0001", "0002", "0003"]
    assert toy.revision("0002").description == "add price to items"


def test_each_revision_carries_the_sha256_of_its_file() -> None:
    toy = load_set("toy", SETS_ROOT)

    for revision in toy.revisions:
        assert revision.checksum == hashlib.sha256(revision.path.read_bytes()).hexdigest()


def test_set_is_found_through_the_migrations_dir_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DBKEEPER_MIGRATIONS_DIR", str(SETS_ROOT))

    assert load_set("failing").ids == ["0001", "0002", "0003", "0004"]


def test_unknown_set_lists_the_available_sets() -> None:
    with pytest.raises(MigrationError) as caught:
        load_set("nope", SETS_ROOT)

    assert caught.value.reason == "InvalidMigrationSet"
    assert "toy" in str(caught.value)
    assert "unsafe_index" in str(caught.value)


@pytest.mark.parametrize("name", ["../toy", "toy/versions", "", "-x"])
def test_set_names_that_are_paths_are_refused(name: str) -> None:
    with pytest.raises(MigrationError, match="not a migration set name"):
        load_set(name, SETS_ROOT)


def test_a_branched_set_is_refused(tmp_path: Path) -> None:
    shutil.copytree(SETS_ROOT / "toy", tmp_path / "branched")
    versions = tmp_path / "branched" / "versions"
    branch = (
        (versions / "0004_rename_name.py")
        .read_text()
        .replace('revision = "0004"', 'revision = "0004b"')
    )
    (versions / "0004b_branch.py").write_text(branch)

    with pytest.raises(MigrationError) as caught:
        load_set("branched", tmp_path)

    assert caught.value.reason == "InvalidMigrationSet"
    assert "several heads" in str(caught.value)


def _toy_copy(tmp_path: Path) -> Path:
    target = tmp_path / "sets"
    shutil.copytree(SETS_ROOT / "toy", target / "toy", ignore=shutil.ignore_patterns("__pycache__"))
    return target


def _versions_missing(versions: Path) -> None:
    shutil.rmtree(versions)


def _versions_a_file(versions: Path) -> None:
    shutil.rmtree(versions)
    versions.write_text("not a folder\n")


def _versions_a_link_loop(versions: Path) -> None:
    shutil.rmtree(versions)
    versions.symlink_to(versions.name)


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        (_versions_missing, "its versions/ is missing"),
        (_versions_a_file, "its versions/ is not a folder"),
        (_versions_a_link_loop, "its versions/ is a symbolic link that leads nowhere"),
    ],
    ids=["missing", "a-file", "a-link-loop"],
)
def test_a_set_without_a_usable_versions_folder_is_refused_not_empty(
    tmp_path: Path, damage: Callable[[Path], None], problem: str
) -> None:
    root = _toy_copy(tmp_path)
    damage(root / "toy" / "versions")

    with pytest.raises(MigrationError) as caught:
        load_set("toy", root)

    assert caught.value.reason == "InvalidMigrationSet"
    assert problem in caught.value.message


def test_a_set_with_no_revision_files_is_refused(tmp_path: Path) -> None:
    root = _toy_copy(tmp_path)
    for path in (root / "toy" / "versions").glob("*.py"):
        path.unlink()

    with pytest.raises(MigrationError) as caught:
        load_set("toy", root)

    assert "has no revisions: its versions/ folder holds no revision files" in str(caught.value)


def test_revisions_whose_down_revisions_make_a_loop_are_refused(tmp_path: Path) -> None:
    root = _toy_copy(tmp_path)
    first = next((root / "toy" / "versions").glob("0001_*.py"))
    first.write_text(
        first.read_text().replace("down_revision: str | None = None", 'down_revision = "0004"')
    )

    with pytest.raises(MigrationError) as caught:
        load_set("toy", root)

    assert caught.value.reason == "InvalidMigrationSet"
    assert "toy" in caught.value.message


def test_a_set_name_longer_than_a_file_name_can_be_is_refused_in_one_short_line() -> None:
    with pytest.raises(MigrationError) as caught:
        load_set("a" * 5000, SETS_ROOT)

    assert caught.value.reason == "InvalidMigrationSet"
    assert "(5000 characters)" in caught.value.message
    assert len(caught.value.message) < 300

"""Backup destinations that refuse writes: a volume mounted read-only, and a full one.

Each destination is a real file system (a tmpfs the test mounts as root, remounted
read-only or filled to its last byte), each command the real ``dbkeeper`` against real
PostgreSQL. Every refusal ends in one line on stderr naming the destination, the
operating system's reason and what to do, with a non-zero exit; the complete backup
already in the destination stays complete and restorable.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from dbkeeper.backup.catalog import IN_PROGRESS_FILE, BackupCatalog
from dbkeeper.backup.create import create_backup
from dbkeeper.backup.errors import DRILL_NOT_RUN_EXIT_CODE, BackupFailed
from dbkeeper.backup.manifest import MANIFEST_FILE, BackupManifest
from dbkeeper.backup.restore import check_backup_files
from dbkeeper.conninfo import ConnInfo
from dbkeeper.migrate import MigrationError, MigrationOptions, load_set, migrate
from dbkeeper.reconcile.hooks import MoveSafeguards
from tests.cli_output import error_lines
from tests.integration.backup.conftest import backup_cli
from tests.integration.backup.sample_schema import table_checksums
from tests.integration.migrate.conftest import SETS_ROOT, Peek

FILLER = "filler"  # a file, so the catalog never takes it for a backup

# The operating system's reason, and the start of what to do about it.
FAULTS = {
    "read-only": ("Read-only file system", "mount it read-write"),
    "full": ("No space left on device", "free space in it"),
}


@dataclass(frozen=True)
class Volume:
    """A tmpfs mounted at ``path``, the backup destination of a test."""

    path: Path

    def _remount(self, mode: str) -> None:
        subprocess.run(
            ["mount", "-o", f"remount,{mode}", str(self.path)], check=True, capture_output=True
        )

    def read_only(self) -> None:
        self._remount("ro")

    def read_write(self) -> None:
        self._remount("rw")

    def fill(self, leave: int = 0) -> None:
        """Fill the free space with one file, then give back about ``leave`` bytes."""
        block = b"\0" * (1 << 16)
        fd = os.open(self.path / FILLER, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, block)
            if leave:
                os.ftruncate(fd, max(0, os.fstat(fd).st_size - leave))
        finally:
            os.close(fd)
        if not leave:
            assert self.free_bytes() == 0

    def empty(self) -> None:
        (self.path / FILLER).unlink(missing_ok=True)

    def free_bytes(self) -> int:
        stat = os.statvfs(self.path)
        return stat.f_bavail * stat.f_frsize

    def apply(self, fault: str) -> None:
        if fault == "read-only":
            self.read_only()
        else:
            self.fill()


@pytest.fixture
def volume() -> Iterator[Volume]:
    """A 16 MiB tmpfs of its own, unmounted afterwards. A short path (not under
    tmp_path) keeps the one-line messages that name it within a terminal's length."""
    if os.geteuid() != 0:
        pytest.fail("the destination fault tests mount file systems: run them as root")
    mount_point = Path(tempfile.mkdtemp(prefix="dbk-vol-"))
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m,mode=0755", "tmpfs", str(mount_point)],
        check=True,
        capture_output=True,
    )
    try:
        yield Volume(mount_point)
    finally:
        unmounted = subprocess.run(["umount", str(mount_point)], capture_output=True, check=False)
        if unmounted.returncode != 0:
            subprocess.run(["umount", "--lazy", str(mount_point)], check=True)
        mount_point.rmdir()


@pytest.fixture(params=sorted(FAULTS))
def fault(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def earlier(populated: ConnInfo, volume: Volume) -> BackupManifest:
    """A complete backup, taken while the destination was healthy."""
    return create_backup(populated, volume.path, jobs=2)


def _error_line(result: subprocess.CompletedProcess[str], *fragments: str) -> str:
    """The one error line of a failed command, holding every fragment."""
    assert "Traceback" not in result.stderr, result.stderr
    lines = error_lines(result.stderr)
    assert len(lines) == 1, result.stderr
    (line,) = lines
    assert line.startswith("dbkeeper: error: "), line
    for fragment in fragments:
        assert fragment in line, f"{fragment!r} not in {line!r}"
    return line


def _manifest_bytes(volume: Volume, backup: BackupManifest) -> bytes:
    return (volume.path / backup.id / MANIFEST_FILE).read_bytes()


def _assert_only_whole(volume: Volume, *backups: BackupManifest) -> None:
    """The destination holds exactly these backups, complete, and nothing unfinished."""
    scan = BackupCatalog(volume.path).scan()
    assert [m.id for m in scan.complete] == [b.id for b in backups]
    assert scan.unfinished == []
    assert scan.unreadable == []
    for backup in backups:
        assert check_backup_files(volume.path / backup.id, backup) == []


# --- backup create ---------------------------------------------------------------------


def test_create_fails_in_one_line_and_keeps_the_earlier_backup(
    populated: ConnInfo, volume: Volume, earlier: BackupManifest, fault: str
) -> None:
    reason, advice = FAULTS[fault]
    volume.apply(fault)

    created = backup_cli(["create"], populated, volume.path)

    assert created.returncode == 1
    _error_line(created, str(volume.path), reason, advice, "then take the backup again")
    _assert_only_whole(volume, earlier)
    listed = backup_cli(["list"], None, volume.path)
    assert listed.returncode == 0, listed.stderr
    assert earlier.id in listed.stdout
    assert "unfinished" not in listed.stdout


def test_a_backup_that_fills_the_destination_half_way_leaves_nothing_behind(
    populated: ConnInfo, volume: Volume, earlier: BackupManifest
) -> None:
    volume.fill(leave=8192)  # room for the marker and a file or two of the dump

    with pytest.raises(BackupFailed) as failure:
        create_backup(populated, volume.path, jobs=2)

    message = str(failure.value)
    for fragment in (str(volume.path), "No space left on device", "free space in it"):
        assert fragment in message
    assert "nothing of this backup was kept" in message
    _assert_only_whole(volume, earlier)
    assert sorted(p.name for p in (volume.path / ".locks").iterdir()) == [f"{earlier.id}.lock"]


def test_a_backup_folder_turning_read_only_before_the_manifest_is_left_unfinished(
    populated: ConnInfo, volume: Volume, earlier: BackupManifest, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The folder of the new backup, once its dump is written, becomes a read-only mount
    # of itself: the manifest cannot be written, and nothing in the folder deleted. (The
    # whole volume cannot be remounted read-only while the writer holds its lock file.)
    frozen: list[Path] = []
    write_manifest = BackupCatalog.write

    def freeze_then_write(catalog: BackupCatalog, manifest: BackupManifest) -> None:
        folder = catalog.backup_dir(manifest.id)
        subprocess.run(["mount", "--bind", str(folder), str(folder)], check=True)
        frozen.append(folder)
        subprocess.run(["mount", "-o", "remount,bind,ro", str(folder)], check=True)
        write_manifest(catalog, manifest)

    monkeypatch.setattr(BackupCatalog, "write", freeze_then_write)
    try:
        with pytest.raises(BackupFailed) as failure:
            create_backup(populated, volume.path, jobs=2)
    finally:
        monkeypatch.undo()
        for folder in frozen:
            subprocess.run(["umount", str(folder)], check=True)

    message = str(failure.value)
    assert "Read-only file system" in message
    assert "left marked in progress" in message
    scan = BackupCatalog(volume.path).scan()
    (unfinished,) = scan.unfinished
    assert unfinished in message
    assert (volume.path / unfinished / IN_PROGRESS_FILE).exists()
    assert [m.id for m in scan.complete] == [earlier.id]
    listed = backup_cli(["list"], None, volume.path)
    assert f"{unfinished:<24} (unfinished: marked in progress, no manifest)" in listed.stdout

    pruned = backup_cli(["prune", "--keep-last", "5"], None, volume.path)

    assert pruned.returncode == 0, pruned.stderr
    assert f"removed unfinished: {unfinished}" in pruned.stdout
    _assert_only_whole(volume, earlier)


# --- backup verify ---------------------------------------------------------------------


def test_a_drill_that_cannot_record_its_verdict_says_so(
    admin: ConnInfo, volume: Volume, earlier: BackupManifest, fault: str
) -> None:
    reason, advice = FAULTS[fault]
    before = _manifest_bytes(volume, earlier)
    volume.apply(fault)

    drill = backup_cli(["verify"], admin, volume.path)

    assert drill.returncode == DRILL_NOT_RUN_EXIT_CODE
    assert "passed" in drill.stdout.splitlines()[0]
    _error_line(
        drill,
        f"restore drill of backup {earlier.id!r} passed, but its verdict was not recorded",
        str(volume.path),
        reason,
        advice,
        "the backup's recorded verdict is unchanged (never verified by a completed drill)",
    )
    assert _manifest_bytes(volume, earlier) == before
    assert sorted(p.name for p in (volume.path / earlier.id).iterdir()) == [
        "dump",
        MANIFEST_FILE,
    ], "no temporary manifest is left behind"


def test_a_failed_drill_that_cannot_record_its_verdict_still_exits_1(
    admin: ConnInfo, volume: Volume, earlier: BackupManifest, fault: str
) -> None:
    reason, _ = FAULTS[fault]
    (volume.path / earlier.id / "dump" / "toc.dat").write_bytes(b"damaged")
    before = _manifest_bytes(volume, earlier)
    volume.apply(fault)

    drill = backup_cli(["verify"], admin, volume.path)

    assert drill.returncode == 1
    _error_line(
        drill,
        f"restore drill of backup {earlier.id} failed",
        "this verdict was not recorded",
        str(volume.path),
        reason,
    )
    assert _manifest_bytes(volume, earlier) == before


def test_a_drill_that_cannot_run_says_its_error_was_not_recorded(
    admin: ConnInfo, volume: Volume, earlier: BackupManifest, fault: str
) -> None:
    reason, advice = FAULTS[fault]
    before = _manifest_bytes(volume, earlier)
    volume.apply(fault)
    wrong = ConnInfo(admin.host, admin.port, admin.dbname, admin.user, password="not-it-7q")

    drill = backup_cli(["verify"], wrong, volume.path)

    assert drill.returncode == DRILL_NOT_RUN_EXIT_CODE
    line = _error_line(
        drill,
        f"restore drill of backup {earlier.id!r} could not run",
        "password authentication failed",
        "the backup's own verdict is unchanged",
        "the error is not recorded either",
        str(volume.path),
        reason,
        advice,
    )
    assert "not-it-7q" not in line
    assert _manifest_bytes(volume, earlier) == before


# --- backup prune and list ---------------------------------------------------------------


def test_prune_on_a_read_only_destination_stops_in_one_line_and_removes_nothing(
    populated: ConnInfo, volume: Volume, earlier: BackupManifest
) -> None:
    later = create_backup(populated, volume.path, jobs=2)
    volume.read_only()

    pruned = backup_cli(["prune", "--keep-last", "1"], None, volume.path)

    assert pruned.returncode == 1
    _error_line(
        pruned,
        f"prune stopped at backup {earlier.id}",
        str(volume.path),
        "Read-only file system",
        "mount it read-write, then prune again",
        "nothing was removed",
        f"{earlier.id} is still complete",
    )
    _assert_only_whole(volume, earlier, later)


def test_prune_with_nothing_to_remove_needs_no_write(
    volume: Volume, earlier: BackupManifest, fault: str
) -> None:
    volume.apply(fault)

    pruned = backup_cli(["prune", "--keep-last", "5"], None, volume.path)

    assert pruned.returncode == 0, pruned.stderr
    assert pruned.stdout.startswith("pruned 0 backup(s)")
    _assert_only_whole(volume, earlier)


def test_prune_frees_a_full_destination_for_the_next_backup(
    populated: ConnInfo, volume: Volume, earlier: BackupManifest
) -> None:
    later = create_backup(populated, volume.path, jobs=2)
    volume.fill()
    assert backup_cli(["create"], populated, volume.path).returncode == 1

    pruned = backup_cli(["prune", "--keep-last", "1"], None, volume.path)

    assert pruned.returncode == 0, pruned.stderr
    assert pruned.stdout.startswith(f"pruned 1 backup(s): {earlier.id}")
    created = backup_cli(["create", "-o", "json"], populated, volume.path)
    assert created.returncode == 0, created.stderr
    scan = BackupCatalog(volume.path).scan()
    assert [m.id for m in scan.complete][:1] == [later.id]
    assert len(scan.complete) == 2


def test_list_shows_the_backups_of_a_faulty_destination(
    volume: Volume, earlier: BackupManifest, fault: str
) -> None:
    volume.apply(fault)

    listed = backup_cli(["list"], None, volume.path)

    assert listed.returncode == 0, listed.stderr
    assert earlier.id in listed.stdout
    assert listed.stderr == ""


# --- backup restore ----------------------------------------------------------------------


def test_a_backup_on_a_read_only_destination_restores(
    populated: ConnInfo, admin: ConnInfo, volume: Volume, earlier: BackupManifest
) -> None:
    volume.read_only()

    restored = backup_cli(
        ["restore", earlier.id, "--target-database", "copy_ro"], admin, volume.path
    )

    assert restored.returncode == 0, restored.stderr
    assert table_checksums(admin.with_database("copy_ro")) == table_checksums(populated)


def test_a_read_only_copy_without_lock_files_restores(
    populated: ConnInfo, admin: ConnInfo, volume: Volume, earlier: BackupManifest
) -> None:
    for lock in (volume.path / ".locks").iterdir():
        lock.unlink()
    (volume.path / ".locks").rmdir()
    volume.read_only()

    restored = backup_cli(
        ["restore", "latest", "--target-database", "copy_ro_bare"], admin, volume.path
    )

    assert restored.returncode == 0, restored.stderr
    assert table_checksums(admin.with_database("copy_ro_bare")) == table_checksums(populated)


# --- backup before migrate ---------------------------------------------------------------


def test_backup_before_migrate_refuses_the_migration_and_changes_nothing(
    database: ConnInfo, volume: Volume, fault: str
) -> None:
    reason, advice = FAULTS[fault]
    toy = load_set("toy", SETS_ROOT)
    migrate(database, toy, MigrationOptions(target="0001"))
    earlier = create_backup(database, volume.path, jobs=2)
    peek = Peek(database)
    history = peek.history()
    volume.apply(fault)
    hooks = MoveSafeguards(database=database, backup_destination=volume.path).build()

    with pytest.raises(MigrationError) as refused:
        migrate(database, toy, MigrationOptions(), hooks=hooks)

    assert refused.value.reason == "BackupFailed"
    message = str(refused.value)
    for fragment in ("migration not started", str(volume.path), reason, advice):
        assert fragment in message
    assert peek.revision() == "0001"
    assert peek.history() == history
    _assert_only_whole(volume, earlier)


def test_a_scheduled_create_on_a_full_destination_still_applies_its_limits(
    populated: ConnInfo, volume: Volume, earlier: BackupManifest
) -> None:
    # Tightened retention is how a full volume gets room again without anyone running
    # prune by hand: the failed scheduled backup applies the limits it was given.
    later = create_backup(populated, volume.path, jobs=2)
    volume.fill()

    created = backup_cli(["create", "--keep-last", "1"], populated, volume.path)

    assert created.returncode == 1
    _error_line(
        created,
        "No space left on device",
        f"the retention limits removed 1 older backup(s) ({earlier.id})",
    )
    _assert_only_whole(volume, later)


def test_a_full_destination_whose_limits_remove_nothing_says_so(
    populated: ConnInfo, volume: Volume, earlier: BackupManifest
) -> None:
    volume.fill()

    created = backup_cli(["create", "--keep-last", "5"], populated, volume.path)

    assert created.returncode == 1
    _error_line(created, "No space left on device", "the retention limits removed nothing")
    _assert_only_whole(volume, earlier)

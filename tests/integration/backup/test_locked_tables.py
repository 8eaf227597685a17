"""A backup behind a table another session keeps locked waits a bounded time, then
fails in one line, keeping nothing; it never hangs for the blocker's whole life."""

from __future__ import annotations

from pathlib import Path

import psycopg

from dbkeeper.backup.catalog import BackupCatalog
from dbkeeper.conninfo import ConnInfo
from tests.integration.backup.conftest import backup_cli


def test_a_backup_behind_a_locked_table_gives_up_after_the_lock_wait(
    populated: ConnInfo, destination: Path
) -> None:
    with psycopg.connect(populated.dsn()) as blocker:
        blocker.execute("LOCK TABLE clinic.visits IN ACCESS EXCLUSIVE MODE")

        created = backup_cli(["create", "--lock-wait", "1s"], populated, destination)

        # Still held here: the backup gave up by itself, it was not let through.
        assert created.returncode == 1
    lines = created.stderr.strip().splitlines()
    assert len(lines) == 1, created.stderr
    assert (
        "a table stayed locked by another session for longer than the lock wait (1s)" in (lines[0])
    )
    assert "nothing of this backup was kept" in lines[0]
    scan = BackupCatalog(destination).scan()
    assert (scan.complete, scan.unfinished, scan.unreadable) == ([], [], [])


def test_pg_dump_itself_gives_up_on_a_locked_table_after_the_lock_wait(
    populated: ConnInfo, destination: Path
) -> None:
    # Only the partitioned parent is locked: the row counts (of its partitions) pass,
    # and it is pg_dump's own LOCK TABLE of the parent that waits.
    with psycopg.connect(populated.dsn(), autocommit=True) as owner:
        owner.execute(
            "CREATE TABLE clinic.readings (id int) PARTITION BY RANGE (id);"
            "CREATE TABLE clinic.readings_1 PARTITION OF clinic.readings FOR VALUES FROM (0) TO (9)"
        )
    with psycopg.connect(populated.dsn()) as blocker:
        blocker.execute("LOCK TABLE ONLY clinic.readings IN ACCESS EXCLUSIVE MODE")

        created = backup_cli(["create", "--lock-wait", "1s"], populated, destination)

        assert created.returncode == 1
    assert "stayed locked by another session for longer than the lock wait (1s)" in (created.stderr)
    assert len(created.stderr.strip().splitlines()) == 1, created.stderr
    scan = BackupCatalog(destination).scan()
    assert (scan.complete, scan.unfinished, scan.unreadable) == ([], [], [])


def test_the_lock_wait_is_a_duration_checked_before_anything_runs(
    populated: ConnInfo, destination: Path
) -> None:
    created = backup_cli(["create", "--lock-wait", "soon"], populated, destination)

    assert created.returncode == 2
    assert "--lock-wait" in created.stderr
    assert not destination.exists() or not any(destination.iterdir())

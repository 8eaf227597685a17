"""The advisory lock: one migrator per database at a time, databases independent."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from datetime import timedelta

import psycopg
import pytest

from dbkeeper.conninfo import ConnInfo
from dbkeeper.local.postgres import LocalPostgres
from dbkeeper.migrate import (
    MIGRATION_LOCK_KEY,
    MigrationError,
    MigrationOptions,
    MigrationSet,
    load_set,
    migrate,
)
from tests.integration.migrate.conftest import SETS_ROOT, Peek


def _migrator(conninfo: ConnInfo) -> subprocess.Popen[str]:
    env = {**os.environ, "DBKEEPER_DSN": conninfo.dsn()}
    return subprocess.Popen(
        [
            sys.executable, "-m", "dbkeeper.cli", "migrate",
            "--set", "slow", "--migrations-dir", str(SETS_ROOT),
            "--lint", "off", "--wait", "30s", "-o", "json",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip


@pytest.mark.parametrize("count", [2, 5])
def test_concurrent_migrator_processes_apply_each_revision_exactly_once(
    database: ConnInfo, peek: Peek, count: int
) -> None:
    migrators = [_migrator(database) for _ in range(count)]
    outputs = [process.communicate(timeout=120) for process in migrators]

    assert [process.returncode for process in migrators] == [0] * count, outputs
    steps = sorted(len(json.loads(stdout)["steps"]) for stdout, _ in outputs)
    assert steps == [0] * (count - 1) + [3]
    applied = Counter(row[0] for row in peek.history("succeeded"))
    assert applied == {"0001": 1, "0002": 1, "0003": 1}
    assert peek.revision() == "0003"


def _hold_migration_lock(conninfo: ConnInfo) -> psycopg.Connection[tuple[object, ...]]:
    holder = psycopg.connect(conninfo.dsn(), autocommit=True)
    holder.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_KEY,))
    return holder


def test_second_migrator_gives_up_after_the_wait_with_lock_busy(
    database: ConnInfo, toy: MigrationSet, peek: Peek
) -> None:
    holder = _hold_migration_lock(database)
    try:
        with pytest.raises(MigrationError) as caught:
            migrate(database, toy, MigrationOptions(advisory_lock_wait=timedelta(seconds=0.3)))
    finally:
        holder.close()

    assert caught.value.reason == "LockBusy"
    assert database.dbname in str(caught.value)
    assert peek.revision() is None


def test_a_migration_of_another_database_is_not_blocked(
    database: ConnInfo, pg_cluster: LocalPostgres, toy: MigrationSet
) -> None:
    other = pg_cluster.create_database(f"{database.dbname}_other")
    holder = _hold_migration_lock(database)
    try:
        result = migrate(other, toy, MigrationOptions(advisory_lock_wait=timedelta(seconds=0.3)))
    finally:
        holder.close()
        pg_cluster.drop_database(other.dbname)

    assert result.to_revision == toy.head


def test_the_lock_is_released_after_a_failed_migration(database: ConnInfo) -> None:
    failing = load_set("failing", SETS_ROOT)
    with pytest.raises(MigrationError):
        migrate(database, failing, MigrationOptions())

    with psycopg.connect(database.dsn(), autocommit=True) as probe:
        row = probe.execute("SELECT pg_try_advisory_lock(%s)", (MIGRATION_LOCK_KEY,)).fetchone()
    assert row == (True,)

"""The advisory lock: one migrator per database at a time, databases independent."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
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
from dbkeeper.migrate.connection import sqlalchemy_connection
from dbkeeper.migrate.lock import WAITING_APPLICATION_NAME, migration_lock
from tests.cli_output import json_output
from tests.integration.migrate.conftest import SETS_ROOT, Peek
from tests.waiting import wait_for


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
    steps = sorted(len(json_output(["migrate"], stdout)["steps"]) for stdout, _ in outputs)
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


def test_a_migrator_queued_behind_the_lock_says_so_in_pg_stat_activity(
    database: ConnInfo, peek: Peek
) -> None:
    """While it waits it is named for what it waits for; once it holds the lock, its own
    name is back."""
    names: list[str] = []

    def queued() -> None:
        with (
            sqlalchemy_connection(database) as connection,
            migration_lock(connection, timedelta(minutes=10)),
        ):
            names.append(str(connection.exec_driver_sql("SHOW application_name").scalar()))
            connection.rollback()

    holder = _hold_migration_lock(database)
    waiter = threading.Thread(target=queued)
    try:
        waiter.start()
        waiting = "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s"
        wait_for(
            lambda: peek.value(waiting, (WAITING_APPLICATION_NAME,)) == 1,
            what="the waiting migrator to name itself",
        )
    finally:
        holder.close()
        waiter.join(120)

    assert names == [database.application_name]
    assert peek.value(waiting, (WAITING_APPLICATION_NAME,)) == 0

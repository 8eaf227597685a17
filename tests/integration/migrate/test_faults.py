"""Faults in the middle of a move: the migrator killed or stopped, its bookkeeping
locked, the database restarted. Whatever happens, the revision in progress is rolled back,
no lock outlives its owner, and the message names the revision and where the database
was left.

The ``hanging`` set's revision 0002 alters ``patients`` (ACCESS EXCLUSIVE) and then
sleeps for an hour, so what ends it is always the fault under test.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from dbkeeper.conninfo import ConnInfo
from dbkeeper.local.postgres import LocalPostgres
from dbkeeper.migrate import (
    MIGRATION_LOCK_KEY,
    MigrationError,
    MigrationOptions,
    load_set,
    migrate,
    migrate_isolated,
)
from dbkeeper.migrate.lock import WAITING_APPLICATION_NAME
from tests.conftest import _start_cluster
from tests.integration.migrate.conftest import SETS_ROOT, Peek
from tests.waiting import DEADLINE, wait_for

_SLEEPING = "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(3600)%%'"


def start_dbkeeper(database: ConnInfo, *args: str) -> subprocess.Popen[str]:
    """``dbkeeper ARGS`` on ``database`` (in the environment) with the fixture sets."""
    env = {key: value for key, value in os.environ.items() if key != "DBKEEPER_DSN"}
    env["DBKEEPER_MIGRATIONS_DIR"] = str(SETS_ROOT)
    env["DBKEEPER_DSN"] = database.dsn()
    return subprocess.Popen(
        [sys.executable, "-m", "dbkeeper.cli", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def start_cli(database: ConnInfo, *args: str) -> subprocess.Popen[str]:
    """``dbkeeper migrate`` of the ``hanging`` set."""
    return start_dbkeeper(database, "migrate", "--set", "hanging", *args)


def stop_when(
    process: subprocess.Popen[str],
    ready: Callable[[], bool],
    what: str,
    signum: signal.Signals = signal.SIGTERM,
) -> str:
    """Once ``ready()``, send ``signum`` and wait for ``process`` to exit; its stderr.
    Whatever happens, the process does not outlive the test."""
    try:
        wait_for(ready, what=what)
        process.send_signal(signum)
        _, err = process.communicate(timeout=DEADLINE)
        return err
    finally:
        process.kill()


def lock_is_free(database: ConnInfo) -> bool:
    with psycopg.connect(database.dsn(), autocommit=True) as probe:
        row = probe.execute("SELECT pg_try_advisory_lock(%s)", (MIGRATION_LOCK_KEY,)).fetchone()
        return bool(row and row[0])


def patients_readable_at_once(database: ConnInfo) -> bool:
    """An application query that does not wait: patients is not locked by anyone."""
    with psycopg.connect(database.dsn(), autocommit=True) as app:
        app.execute("SET lock_timeout = 100")
        try:
            app.execute("SELECT count(*) FROM patients").fetchone()
        except psycopg.errors.LockNotAvailable:
            return False
        return True


@pytest.fixture
def at_0001(database: ConnInfo) -> ConnInfo:
    migrate(database, load_set("hanging", SETS_ROOT), MigrationOptions(target="0001"))
    return database


def test_a_migrator_killed_mid_revision_leaves_no_lock_behind(at_0001: ConnInfo) -> None:
    peek = Peek(at_0001)
    migrator = start_cli(at_0001)
    try:
        wait_for(lambda: peek.value(_SLEEPING) == 1, what="revision 0002 to be running")
        migrator.kill()  # a lost node: no handler runs, the socket just closes
        migrator.wait(DEADLINE)
        # The server notices the lost client and ends the revision's session.
        wait_for(lambda: peek.value(_SLEEPING) == 0, what="the killed migrator's session to end")
    finally:
        migrator.kill()
        migrator.communicate()

    assert patients_readable_at_once(at_0001)
    assert lock_is_free(at_0001)
    assert peek.revision() == "0001"
    assert "name" not in {
        row[0]
        for row in peek.rows(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'patients'"
        )
    }


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_stopped_migrator_rolls_back_releases_everything_and_says_so(
    at_0001: ConnInfo, signum: signal.Signals
) -> None:
    peek = Peek(at_0001)
    migrator = start_cli(at_0001)
    err = stop_when(
        migrator, lambda: peek.value(_SLEEPING) == 1, "revision 0002 to be running", signum
    )

    assert migrator.returncode == 130
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert f"interrupted by {signum.name} while applying revision 0002" in lines[0]
    assert "rolled back and every lock released" in lines[0]
    assert "stays at 0001" in lines[0]
    # What the message says is already true when the command has exited: no waiting.
    assert peek.value(_SLEEPING) == 0
    assert patients_readable_at_once(at_0001)
    assert lock_is_free(at_0001)
    assert peek.revision() == "0001"
    assert peek.value(
        "SELECT error FROM dbkeeper.migration_history WHERE revision = '0002' "
        "ORDER BY id DESC LIMIT 1"
    ) == (f"interrupted by {signum.name}")


@pytest.mark.parametrize("table", ["dbkeeper.migration_history", "alembic_version"])
def test_lock_timeout_bounds_the_bookkeeping_too(at_0001: ConnInfo, table: str) -> None:
    with psycopg.connect(at_0001.dsn()) as blocker:
        blocker.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        migrator = start_cli(at_0001, "--lock-timeout", "1s", "--lock-retries", "0")
        try:
            _, err = migrator.communicate(timeout=DEADLINE)
        finally:
            migrator.kill()
        # Still blocked here: the migrator gave up on its own, it was not let through.
        assert migrator.returncode == 1
        assert lock_is_free(at_0001)
    line = err.strip()
    assert len(line.splitlines()) == 1, err
    assert "[LockTimeout]" in line
    assert "lock_timeout (1000 ms; waited" in line
    assert "nothing was changed" in line
    assert Peek(at_0001).revision() == "0001"


def _migration_children_of(pid: int) -> list[int]:
    """The spawned interpreters of ``pid`` that run a move (not its resource tracker)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if int(fields[1]) == pid and b"spawn_main" in command:
            found.append(int(entry.name))
    return found


def _isolated_in_thread(
    database: ConnInfo, abandoned: threading.Event | None = None
) -> tuple[threading.Thread, list[object]]:
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(
                migrate_isolated(
                    database,
                    load_set("hanging", SETS_ROOT),
                    MigrationOptions(),
                    abandoned=abandoned,
                    abandon_grace=0.0,
                )
            )
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def test_an_abandoned_isolated_move_is_rolled_back_before_it_says_so(at_0001: ConnInfo) -> None:
    peek = Peek(at_0001)
    abandoned = threading.Event()
    thread, outcome = _isolated_in_thread(at_0001, abandoned)
    wait_for(lambda: peek.value(_SLEEPING) == 1, what="revision 0002 to be running")
    abandoned.set()
    thread.join(DEADLINE)

    assert not thread.is_alive()
    (error,) = outcome
    assert isinstance(error, MigrationError)
    assert error.reason == "Interrupted"
    assert "interrupted by SIGTERM while applying revision 0002" in error.message
    assert "rolled back" in error.message
    assert peek.value(_SLEEPING) == 0
    assert patients_readable_at_once(at_0001)
    assert lock_is_free(at_0001)


def test_a_killed_isolated_child_has_its_session_ended_before_rolled_back_is_said(
    at_0001: ConnInfo,
) -> None:
    peek = Peek(at_0001)
    thread, outcome = _isolated_in_thread(at_0001)
    wait_for(lambda: peek.value(_SLEEPING) == 1, what="revision 0002 to be running")
    (child,) = _migration_children_of(os.getpid())
    os.kill(child, signal.SIGKILL)
    thread.join(DEADLINE)

    (error,) = outcome
    assert isinstance(error, MigrationError)
    assert "was killed by SIGKILL" in error.message
    assert "its database session has ended" in error.message
    assert peek.value(_SLEEPING) == 0
    assert patients_readable_at_once(at_0001)
    assert lock_is_free(at_0001)
    assert peek.revision() == "0001"


@pytest.fixture
def own_cluster() -> Iterator[LocalPostgres]:
    """A cluster this test may restart without disturbing the others."""
    cluster = _start_cluster("dbkeeper-test-restart-")
    try:
        yield cluster
    finally:
        cluster.destroy()


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_a_database_restarted_mid_revision_is_reported_with_the_revision(
    own_cluster: LocalPostgres, mode: str
) -> None:
    database = own_cluster.create_database("restarted")
    migrate(database, load_set("hanging", SETS_ROOT), MigrationOptions(target="0001"))
    peek = Peek(database)
    migrator = start_cli(database)
    try:
        wait_for(lambda: peek.value(_SLEEPING) == 1, what="revision 0002 to be running")
        own_cluster.stop(mode=mode)
        _, err = migrator.communicate(timeout=DEADLINE)
    finally:
        migrator.kill()
    own_cluster.start()

    assert migrator.returncode == 1
    line = err.strip()
    assert len(line.splitlines()) == 1, err
    assert "was lost while applying revision 0002" in line
    assert "rolled it back and the database stays at 0001" in line
    assert "[DatabaseUnreachable]" in line
    assert peek.revision() == "0001"
    assert lock_is_free(database)


def test_sigterm_ends_any_command_with_one_line_not_a_silent_exit(at_0001: ConnInfo) -> None:
    peek = Peek(at_0001)
    with psycopg.connect(at_0001.dsn()) as blocker:
        # `status` reads alembic_version, so it waits behind this lock until stopped.
        blocker.execute("LOCK TABLE alembic_version IN ACCESS EXCLUSIVE MODE")
        status = start_dbkeeper(at_0001, "status", "--set", "hanging")
        err = stop_when(
            status,
            lambda: (
                peek.value(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND query LIKE '%%alembic_version%%'"
                )
                >= 1
            ),
            "status to wait for the lock",
        )

    assert status.returncode == 130
    assert err.strip() == "dbkeeper: error: interrupted by SIGTERM before the command finished"


def test_a_migrator_stopped_while_waiting_for_the_lock_says_it_changed_nothing(
    at_0001: ConnInfo,
) -> None:
    peek = Peek(at_0001)
    with psycopg.connect(at_0001.dsn(), autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_KEY,))
        migrator = start_cli(at_0001, "--wait", "10m")
        err = stop_when(
            migrator,
            lambda: (
                peek.value(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
                    (WAITING_APPLICATION_NAME,),
                )
                >= 1
            ),
            "the migrator to wait for the migration lock",
        )
        holder_still_holds = not lock_is_free(at_0001)

    assert migrator.returncode == 130
    line = err.strip()
    assert len(line.splitlines()) == 1, err
    assert "interrupted by SIGTERM before it changed anything" in line
    assert "waiting for the migration lock" in line
    assert holder_still_holds
    assert peek.revision() == "0001"

"""``dbkeeper wait`` and ``dbkeeper.wait_for_revision``: an application waits until its
database is at a revision or later, reading only the database's own bookkeeping.

The ``toy`` set's chain is 0001 → 0002 → 0003 → 0004.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import replace

import psycopg
import pytest

import dbkeeper
from dbkeeper.conninfo import ConnInfo
from dbkeeper.local.postgres import LocalPostgres
from dbkeeper.migrate import MigrationOptions, MigrationSet, migrate
from dbkeeper.wait import Position, WaitError, connect_read_only
from tests.cli_output import json_output
from tests.waiting import DEADLINE, wait_for

# Long enough never to end a wait that is meant to succeed, however slow the machine.
PATIENT = 600.0


def run_wait(database: ConnInfo | str, *args: str) -> subprocess.CompletedProcess[str]:
    dsn = database.dsn() if isinstance(database, ConnInfo) else database
    env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    env["DBKEEPER_DSN"] = dsn
    return subprocess.run(
        [sys.executable, "-m", "dbkeeper.cli", "wait", "--interval", "500ms", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=PATIENT,
    )


class Waiter(threading.Thread):
    """``wait_for_revision`` in the background, keeping every position it reported."""

    def __init__(self, database: ConnInfo, revision: str, **options: object) -> None:
        super().__init__(daemon=True)
        self.database = database
        self.revision = revision
        self.options = options
        self.seen: list[Position] = []
        self.result: Position | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.result = dbkeeper.wait_for_revision(
                self.database,
                self.revision,
                PATIENT,
                poll_interval=0.05,
                on_progress=lambda position, _: self.seen.append(position),
                **self.options,  # type: ignore[arg-type]
            )
        except BaseException as exc:
            self.error = exc

    def saw(self, revision: str | None) -> bool:
        return any(p.revision == revision and p.problem is None for p in self.seen)


def test_waits_while_behind_and_returns_when_a_migration_reaches_the_revision(
    database: ConnInfo, toy: MigrationSet
) -> None:
    waiter = Waiter(database, "0002")
    waiter.start()
    wait_for(lambda: bool(waiter.seen), what="the waiter to look at the empty database")
    assert waiter.seen[0].problem is not None
    assert "never been migrated" in waiter.seen[0].problem

    migrate(database, toy, MigrationOptions(target="0001"))
    wait_for(lambda: waiter.saw("0001"), what="the waiter to see revision 0001")
    assert waiter.is_alive()

    migrate(database, toy, MigrationOptions(target="0002"))
    waiter.join(DEADLINE)

    assert waiter.error is None
    assert waiter.result == Position("0002", "toy", True)


def test_returns_at_once_when_the_database_is_ahead(database: ConnInfo, toy: MigrationSet) -> None:
    migrate(database, toy, MigrationOptions(target="0003"))

    done = run_wait(database, "--revision", "0002", "--timeout", "10m")

    assert done.returncode == 0, done.stderr
    assert done.stdout == (
        f"database {database.dbname} on {database.host}:{database.port} is at revision "
        "0003 of set toy: revision 0002 is reached\n"
    )
    assert done.stderr == ""
    as_json = run_wait(database, "--revision", "0002", "-o", "json")
    assert json_output(as_json.args, as_json.stdout) == {
        "revision": "0002",
        "current_revision": "0003",
        "migration_set": "toy",
        "reached": True,
    }


def test_times_out_with_one_line_naming_where_the_database_is(
    database: ConnInfo, toy: MigrationSet
) -> None:
    migrate(database, toy, MigrationOptions(target="0001"))

    done = run_wait(database, "--revision", "0003", "--timeout", "1s")

    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last == (
        f"dbkeeper: error: database {database.dbname} on {database.host}:{database.port}: "
        "timed out after 1s waiting for revision 0003: the database is at revision 0001 "
        "of set toy [Timeout]"
    )
    progress = done.stderr.strip().splitlines()[:-1]
    assert progress, "no progress line before the timeout"
    assert all("is at revision 0001 of set toy; waiting for revision 0003" in p for p in progress)


def test_a_revision_the_history_does_not_know_is_not_yet(
    database: ConnInfo, toy: MigrationSet
) -> None:
    migrate(database, toy)

    done = run_wait(database, "--revision", "0099", "--timeout", "1s")

    assert done.returncode == 1
    assert "is at revision 0004 of set toy [Timeout]" in done.stderr


def test_a_database_moved_below_the_revision_waits_again(
    database: ConnInfo, toy: MigrationSet
) -> None:
    migrate(database, toy, MigrationOptions(target="0003"))
    migrate(database, toy, MigrationOptions(target="0001", allow_downgrade=True))
    waiter = Waiter(database, "0002")
    waiter.start()
    wait_for(lambda: waiter.saw("0001"), what="the waiter to see revision 0001")
    assert waiter.is_alive()

    migrate(database, toy, MigrationOptions(target="0002"))
    waiter.join(DEADLINE)

    assert waiter.result == Position("0002", "toy", True)


def test_a_database_of_another_set_is_refused_at_once(
    database: ConnInfo, toy: MigrationSet
) -> None:
    migrate(database, toy, MigrationOptions(target="0001"))

    done = run_wait(database, "--revision", "0002", "--set", "billing", "--timeout", "10m")

    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"dbkeeper: error: database {database.dbname} on {database.host}:{database.port}: "
        f"database {database.dbname} is migrated by set toy, not billing [OtherSet]"
    ]


def test_a_revision_known_only_from_another_set_is_refused_at_once(
    database: ConnInfo, toy: MigrationSet
) -> None:
    migrate(database, toy, MigrationOptions(target="0001"))
    with psycopg.connect(database.dsn(), autocommit=True) as admin:
        # A move of a set that no longer migrates the database: toy moves after it.
        admin.execute(
            "INSERT INTO dbkeeper.migration_history (migration_set, revision, from_revision, "
            "to_revision, direction, started_at, finished_at, duration_ms, outcome, actor, "
            "checksum) VALUES ('legacy', 'a1b2c3', NULL, 'a1b2c3', 'upgrade', now(), now(), "
            "1, 'succeeded', 'someone', 'x')"
        )
    migrate(database, toy, MigrationOptions(target="0002"))

    with pytest.raises(WaitError) as caught:
        dbkeeper.wait_for_revision(database, "a1b2c3", PATIENT, poll_interval=0.05)

    assert caught.value.reason == "OtherSet"
    assert caught.value.message == (
        f"revision a1b2c3 belongs to set legacy, but database {database.dbname} is "
        "migrated by set toy"
    )


@pytest.fixture
def reader(pg_cluster: LocalPostgres, database: ConnInfo) -> Iterator[ConnInfo]:
    """A login role with CONNECT on the database and nothing else yet."""
    name = f"reader_{uuid.uuid4().hex[:8]}"
    password = secrets.token_urlsafe(18)
    admin = pg_cluster.admin_conninfo(database.dbname)
    with psycopg.connect(admin.dsn(), autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {name} LOGIN PASSWORD '{password}'")
        conn.execute(f"GRANT CONNECT ON DATABASE {database.dbname} TO {name}")
    try:
        yield replace(database, user=name, password=password)
    finally:
        with psycopg.connect(admin.dsn(), autocommit=True) as conn:
            conn.execute(f"DROP OWNED BY {name}")
            conn.execute(f"DROP ROLE {name}")


GRANTS = (
    "GRANT USAGE ON SCHEMA dbkeeper TO {role}",
    "GRANT SELECT ON dbkeeper.migration_history TO {role}",
    "GRANT SELECT ON public.alembic_version TO {role}",
)


def test_a_role_with_only_select_on_the_bookkeeping_is_enough(
    pg_cluster: LocalPostgres, database: ConnInfo, toy: MigrationSet, reader: ConnInfo
) -> None:
    migrate(database, toy, MigrationOptions(target="0002"))
    with psycopg.connect(pg_cluster.admin_conninfo(database.dbname).dsn()) as admin:
        admin.execute("REVOKE ALL ON SCHEMA public FROM PUBLIC")
        admin.execute(f"GRANT USAGE ON SCHEMA public TO {reader.user}")
        for grant in GRANTS:
            admin.execute(grant.format(role=reader.user))

    assert dbkeeper.wait_for_revision(reader, "0002", PATIENT) == Position("0002", "toy", True)


def test_a_role_without_the_grants_waits_and_says_what_it_lacks(
    database: ConnInfo, toy: MigrationSet, reader: ConnInfo
) -> None:
    migrate(database, toy, MigrationOptions(target="0002"))

    done = run_wait(reader, "--revision", "0002", "--timeout", "1s")

    assert done.returncode == 1
    assert (
        f"the database is not readable to role {reader.user}: it needs USAGE on the schema "
        "of dbkeeper.migration_history and SELECT on it" in done.stderr
    )
    assert reader.password is not None
    assert reader.password not in done.stderr + done.stdout


def test_a_refused_login_is_waited_for_without_showing_the_password(
    database: ConnInfo,
) -> None:
    password = secrets.token_urlsafe(18)
    wrong = replace(database, password=password)

    done = run_wait(wrong, "--revision", "0001", "--timeout", "1s")

    assert done.returncode == 1
    assert "the database is not reachable:" in done.stderr
    assert "password authentication failed" in done.stderr
    assert password not in done.stderr + done.stdout


def test_the_session_is_read_only(database: ConnInfo) -> None:
    with connect_read_only(database) as conn, pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        conn.execute("CREATE TABLE written_by_wait (id int)")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--revision", "0002; DROP TABLE items"], "is not a revision id"),
        (["--revision", "0002", "--timeout", "soon"], "argument --timeout"),
        ([], "the following arguments are required: --revision"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(
    database: ConnInfo, args: list[str], message: str
) -> None:
    done = run_wait(database, *args)

    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert message in line

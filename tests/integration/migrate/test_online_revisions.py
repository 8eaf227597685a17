"""Online revisions: a revision that declares ``dbkeeper_transaction = False`` runs outside
a transaction, so it can build an index concurrently while the application writes; an
attempt cut off half-way leaves an INVALID index, which the next attempt drops first.

The ``online_index`` set: 0001 creates ``readings`` with 100 000 rows, 0002 (online)
builds ``readings_sensor_idx`` with ``CREATE INDEX CONCURRENTLY IF NOT EXISTS``.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest

from dbkeeper.conninfo import ConnInfo
from dbkeeper.migrate import (
    MigrationError,
    MigrationEvent,
    MigrationOptions,
    MigrationSet,
    load_set,
    migrate,
    plan_move,
)
from dbkeeper.migrate.connection import sqlalchemy_connection
from dbkeeper.migrate.online import drop_invalid_leftovers
from dbkeeper.migrate.session import outside_transaction
from tests.integration.migrate.conftest import SETS_ROOT, Peek
from tests.integration.migrate.test_faults import lock_is_free, start_dbkeeper
from tests.waiting import DEADLINE, wait_for

SET = "online_index"
INDEX = "readings_sensor_idx"
LOCK_TIMEOUT = timedelta(seconds=2)
_INVALID = (
    "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
    "WHERE NOT i.indisvalid ORDER BY c.relname"
)
_VALID = "SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(%s)"
# A concurrent build that waits for the transactions already writing to its table.
_BUILD_WAITING = (
    "SELECT pid FROM pg_stat_progress_create_index WHERE datname = current_database() "
    "AND relid = to_regclass('readings') AND phase LIKE 'waiting for%%'"
)


@pytest.fixture
def online_set() -> MigrationSet:
    return load_set(SET, SETS_ROOT)


@pytest.fixture
def at_0001(database: ConnInfo, online_set: MigrationSet) -> ConnInfo:
    migrate(database, online_set, MigrationOptions(target="0001"))
    return database


@contextmanager
def writing(conninfo: ConnInfo) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """A transaction that has written to ``readings`` and stays open until rolled back:
    a concurrent index build waits for it."""
    with psycopg.connect(conninfo.dsn()) as writer:
        writer.execute("INSERT INTO readings (sensor, value) VALUES (1, 1.0)")
        yield writer


@pytest.fixture
def open_writer(at_0001: ConnInfo) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    with writing(at_0001) as writer:
        yield writer


def execute(conninfo: ConnInfo, statement: str) -> None:
    with psycopg.connect(conninfo.dsn(), autocommit=True) as connection:
        connection.execute(statement)


def invalid_indexes(peek: Peek) -> list[str]:
    return [str(row[0]) for row in peek.rows(_INVALID)]


def succeeded(peek: Peek, revision: str) -> bool:
    return any(row[0] == revision and row[2] == "succeeded" for row in peek.history())


class Writer(threading.Thread):
    """The application: inserts rows one short transaction at a time. A write that waits
    for a lock as long as ``LOCK_TIMEOUT`` fails, and the failure is kept in ``errors``."""

    def __init__(self, conninfo: ConnInfo) -> None:
        super().__init__(daemon=True)
        self.conninfo = conninfo
        self.stop = threading.Event()
        self.written = 0
        self.errors: list[BaseException] = []

    def run(self) -> None:
        try:
            with psycopg.connect(self.conninfo.dsn(), autocommit=True) as connection:
                timeout_ms = int(LOCK_TIMEOUT.total_seconds() * 1000)
                connection.execute(f"SET lock_timeout = {timeout_ms}")
                while not self.stop.is_set():
                    connection.execute("INSERT INTO readings (sensor, value) VALUES (7, 0.5)")
                    self.written += 1
        except BaseException as exc:
            self.errors.append(exc)


def test_an_online_revision_builds_its_index_while_the_application_writes(
    at_0001: ConnInfo, online_set: MigrationSet
) -> None:
    peek = Peek(at_0001)
    writer = Writer(at_0001)
    writer.start()
    try:
        wait_for(lambda: writer.written >= 20 or bool(writer.errors), what="writes")
        before = writer.written
        migrate(at_0001, online_set, MigrationOptions(lock_timeout=LOCK_TIMEOUT))
        during = writer.written - before
    finally:
        writer.stop.set()
        writer.join(DEADLINE)

    # No write waited for the build's locks as long as lock_timeout (it would have failed).
    assert writer.errors == []
    assert during > 0
    assert peek.value(_VALID, (INDEX,)) is True
    assert peek.revision() == "0002"
    assert succeeded(peek, "0002")


def test_the_plan_of_an_online_revision_is_not_wrapped_in_a_transaction(
    online_set: MigrationSet,
) -> None:
    plan = plan_move(None, online_set, MigrationOptions())

    step = plan.steps[1]
    assert step.online
    assert "CREATE INDEX CONCURRENTLY IF NOT EXISTS readings_sensor_idx" in step.sql
    assert "BEGIN" not in step.sql
    assert "COMMIT" not in step.sql
    assert step.findings == ()
    assert not plan.steps[0].online
    assert plan.steps[0].sql.startswith("BEGIN;")


def test_an_online_revision_building_an_index_concurrently_passes_block_mode(
    database: ConnInfo, online_set: MigrationSet
) -> None:
    peek = Peek(database)

    migrate(database, online_set, MigrationOptions(lint_mode="block"))

    assert peek.revision() == "0002"
    assert peek.value(_VALID, (INDEX,)) is True
    assert lock_is_free(database)


def _transactional_copy(copied_sets: Path) -> MigrationSet:
    revision = copied_sets / SET / "versions" / "0002_readings_sensor_index.py"
    text = revision.read_text()
    revision.write_text(text.replace("dbkeeper_transaction = False", ""))
    return load_set(SET, copied_sets)


def test_concurrently_in_a_transactional_revision_is_reported_with_advice(
    copied_sets: Path,
) -> None:
    plan = plan_move(None, _transactional_copy(copied_sets), MigrationOptions())

    step = plan.steps[1]
    assert not step.online
    (finding,) = step.findings
    assert finding.rule == "ban-concurrent-index-creation-in-transaction"
    assert finding.help is not None
    assert "online revision" in finding.help
    assert "dbkeeper_transaction = False" in finding.help


def test_block_mode_stops_concurrently_in_a_transactional_revision(
    database: ConnInfo, copied_sets: Path
) -> None:
    with pytest.raises(MigrationError) as caught:
        migrate(database, _transactional_copy(copied_sets), MigrationOptions(lint_mode="block"))

    assert caught.value.reason == "LintBlocked"
    assert "ban-concurrent-index-creation-in-transaction" in caught.value.message


def test_concurrently_in_a_transactional_revision_fails_saying_to_make_it_online(
    database: ConnInfo, copied_sets: Path
) -> None:
    with pytest.raises(MigrationError) as caught:
        migrate(database, _transactional_copy(copied_sets), MigrationOptions(lint_mode="off"))

    assert caught.value.reason == "RevisionFailed"
    assert "cannot run inside a transaction block" in caught.value.message
    assert "online revision" in caught.value.message
    assert "dbkeeper_transaction = False" in caught.value.message
    assert Peek(database).revision() == "0001"


def test_an_online_revision_is_reverted_outside_a_transaction_too(
    database: ConnInfo, online_set: MigrationSet
) -> None:
    peek = Peek(database)
    migrate(database, online_set, MigrationOptions())

    migrate(database, online_set, MigrationOptions(target="0001", allow_downgrade=True))

    assert peek.revision() == "0001"
    assert peek.value("SELECT to_regclass(%s)", (INDEX,)) is None
    assert [row[:3] for row in peek.history()][-1] == ("0002", "downgrade", "succeeded")


def test_a_lock_timeout_leaves_an_invalid_index_which_the_next_attempt_drops(
    at_0001: ConnInfo,
    online_set: MigrationSet,
    open_writer: psycopg.Connection[tuple[object, ...]],
) -> None:
    peek = Peek(at_0001)
    quick = MigrationOptions(lock_timeout=timedelta(milliseconds=200), lock_retries=0)
    with pytest.raises(MigrationError) as caught:
        migrate(at_0001, online_set, quick)
    assert caught.value.reason == "LockTimeout"
    assert "INVALID" in caught.value.message
    assert invalid_indexes(peek) == [INDEX]
    open_writer.rollback()
    events: list[MigrationEvent] = []

    migrate(at_0001, online_set, quick, on_event=events.append)

    dropped = [event for event in events if event.kind == "invalid_index_dropped"]
    assert [event.revision for event in dropped] == ["0002"]
    assert f"public.{INDEX}" in dropped[0].message
    assert invalid_indexes(peek) == []
    assert peek.value(_VALID, (INDEX,)) is True
    assert peek.revision() == "0002"


def test_a_migrator_killed_mid_build_leaves_an_invalid_index_that_a_retry_replaces(
    at_0001: ConnInfo,
    online_set: MigrationSet,
    open_writer: psycopg.Connection[tuple[object, ...]],
) -> None:
    peek = Peek(at_0001)
    migrator = start_dbkeeper(at_0001, "migrate", "--set", SET, "--lock-timeout", "10m")
    try:
        wait_for(lambda: peek.value(_BUILD_WAITING) is not None, what="the build to be waiting")
        building = peek.value(_BUILD_WAITING)
        migrator.send_signal(signal.SIGKILL)  # a lost node: no handler runs
        migrator.wait(DEADLINE)
        # The server notices the lost client and ends the build's session.
        wait_for(
            lambda: (
                peek.value("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (building,)) == 0
            ),
            what="the killed migrator's session to end",
        )
    finally:
        migrator.kill()
        migrator.communicate()
    assert invalid_indexes(peek) == [INDEX]
    assert peek.revision() == "0001"
    open_writer.rollback()
    events: list[MigrationEvent] = []

    migrate(at_0001, online_set, MigrationOptions(), on_event=events.append)

    assert [e.kind for e in events if e.kind == "invalid_index_dropped"] == [
        "invalid_index_dropped"
    ]
    assert invalid_indexes(peek) == []
    assert peek.value(_VALID, (INDEX,)) is True
    assert peek.revision() == "0002"
    assert succeeded(peek, "0002")
    assert lock_is_free(at_0001)


def test_a_valid_index_of_the_same_name_is_never_dropped(
    at_0001: ConnInfo, online_set: MigrationSet
) -> None:
    peek = Peek(at_0001)
    execute(at_0001, f"CREATE INDEX {INDEX} ON readings (sensor)")
    events: list[MigrationEvent] = []

    migrate(at_0001, online_set, MigrationOptions(), on_event=events.append)

    assert not [event for event in events if event.kind == "invalid_index_dropped"]
    assert peek.value(_VALID, (INDEX,)) is True
    assert peek.revision() == "0002"


def test_what_a_failed_reindex_concurrently_leaves_is_dropped_and_the_index_kept(
    at_0001: ConnInfo,
) -> None:
    peek = Peek(at_0001)
    execute(at_0001, "CREATE INDEX readings_value_idx ON readings (value)")
    with writing(at_0001), psycopg.connect(at_0001.dsn(), autocommit=True) as other:
        other.execute("SET lock_timeout = 200")
        with pytest.raises(psycopg.errors.LockNotAvailable):
            other.execute("REINDEX INDEX CONCURRENTLY public.readings_value_idx")
    assert invalid_indexes(peek) == ["readings_value_idx_ccnew"]

    with (
        sqlalchemy_connection(at_0001) as connection,
        outside_transaction(connection, timedelta(seconds=5), timedelta(minutes=1)),
    ):
        dropped = drop_invalid_leftovers(
            connection, "REINDEX INDEX CONCURRENTLY public.readings_value_idx;"
        )

    assert dropped == ["public.readings_value_idx_ccnew"]
    assert invalid_indexes(peek) == []
    assert peek.value(_VALID, ("readings_value_idx",)) is True


def test_alembic_autocommit_block_fails_saying_to_use_an_online_revision(
    database: ConnInfo, copied_sets: Path
) -> None:
    (copied_sets / SET / "versions" / "0003_autocommit_block.py").write_text(
        '"""index by value in an autocommit block\n\nRevision ID: 0003\nRevises: 0002\n"""\n\n'
        "from alembic import op\n\n"
        'revision = "0003"\ndown_revision = "0002"\n\n\n'
        "def upgrade() -> None:\n"
        "    with op.get_context().autocommit_block():\n"
        '        op.execute("CREATE INDEX CONCURRENTLY readings_value_idx ON readings (value)")\n'
        "\n\ndef downgrade() -> None:\n"
        '    op.execute("DROP INDEX readings_value_idx")\n'
    )
    migration_set = load_set(SET, copied_sets)

    with pytest.raises(MigrationError) as caught:
        migrate(database, migration_set, MigrationOptions(lint_mode="off"))

    assert caught.value.reason == "RevisionFailed"
    assert caught.value.revision == "0003"
    assert "autocommit_block() cannot run under dbkeeper" in caught.value.message
    assert "dbkeeper_transaction = False" in caught.value.message
    assert Peek(database).revision() == "0002"

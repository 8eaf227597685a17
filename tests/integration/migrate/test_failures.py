"""A revision that fails or cannot get its locks leaves the database at the last good revision."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

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
)
from tests.integration.migrate.conftest import SETS_ROOT, Peek

FAST_LOCK_TIMEOUT = MigrationOptions(
    target="0002",
    lock_timeout=timedelta(milliseconds=100),
    lock_retries=2,
    retry_backoff=timedelta(milliseconds=50),
)


def test_failure_mid_chain_stops_at_the_last_good_revision(database: ConnInfo, peek: Peek) -> None:
    failing = load_set("failing", SETS_ROOT)

    with pytest.raises(MigrationError) as caught:
        migrate(database, failing, MigrationOptions(target="head"))

    assert caught.value.reason == "RevisionFailed"
    assert caught.value.revision == "0003"
    assert "0003" in str(caught.value)
    assert peek.revision() == "0002"


def test_failed_revision_leaves_no_partial_change(database: ConnInfo, peek: Peek) -> None:
    failing = load_set("failing", SETS_ROOT)

    with pytest.raises(MigrationError):
        migrate(database, failing, MigrationOptions(target="head"))

    assert "ledger" not in peek.tables()
    assert peek.rows("SELECT id FROM accounts ORDER BY id") == [(1,), (2,)]


def test_failed_revision_is_recorded_in_the_history(database: ConnInfo, peek: Peek) -> None:
    failing = load_set("failing", SETS_ROOT)

    with pytest.raises(MigrationError):
        migrate(database, failing, MigrationOptions(target="head"))

    history = peek.history()
    assert [(row[0], row[2]) for row in history] == [
        ("0001", "succeeded"),
        ("0002", "succeeded"),
        ("0003", "failed"),
    ]
    assert "duplicate key" in history[-1][5]


def _hold_table(conninfo: ConnInfo, table: str) -> psycopg.Connection[tuple[object, ...]]:
    """A session that reads ``table`` inside an open transaction, blocking DDL on it."""
    holder = psycopg.connect(conninfo.dsn())
    holder.execute(f"SELECT count(*) FROM {table}")
    return holder


def test_lock_timeout_retries_then_fails_cleanly(
    database: ConnInfo, toy: MigrationSet, peek: Peek
) -> None:
    migrate(database, toy, MigrationOptions(target="0001"))
    holder = _hold_table(database, "items")
    try:
        with pytest.raises(MigrationError) as caught:
            migrate(database, toy, FAST_LOCK_TIMEOUT)
    finally:
        holder.close()

    assert caught.value.reason == "LockTimeout"
    assert "3 attempts" in str(caught.value)
    assert peek.revision() == "0001"
    assert "price_cents" not in peek.columns("items")
    assert [(row[0], row[2]) for row in peek.history()][-1] == ("0002", "failed")


def _release_after_two_waits(
    conninfo: ConnInfo, holder: psycopg.Connection[tuple[object, ...]]
) -> threading.Thread:
    """End ``holder`` once two attempts (two statements) were seen waiting for its lock:
    the migration has then certainly timed out once and retried, whatever the load."""

    def watch() -> None:
        attempts: set[object] = set()
        deadline = time.monotonic() + 120
        try:
            with psycopg.connect(conninfo.dsn(), autocommit=True) as conn:
                while len(attempts) < 2 and time.monotonic() < deadline:
                    rows = conn.execute(
                        "SELECT pid, query_start FROM pg_stat_activity "
                        "WHERE wait_event_type = 'Lock' AND datname = current_database()"
                    ).fetchall()
                    attempts.update(rows)
                    time.sleep(0.005)
        finally:
            holder.close()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    return watcher


def test_lock_timeout_retry_succeeds_once_the_table_is_free(
    database: ConnInfo, toy: MigrationSet, peek: Peek
) -> None:
    migrate(database, toy, MigrationOptions(target="0001"))
    holder = _hold_table(database, "items")
    releaser = _release_after_two_waits(database, holder)
    events: list[MigrationEvent] = []
    try:
        migrate(
            database,
            toy,
            MigrationOptions(
                target="0002",
                lock_timeout=timedelta(milliseconds=200),
                lock_retries=20,
                retry_backoff=timedelta(milliseconds=50),
            ),
            on_event=events.append,
        )
    finally:
        holder.close()
        releaser.join(130)

    applied = [e for e in events if e.kind == "revision_applied"]
    assert len(applied) == 1
    assert "attempts" in applied[0].message
    assert peek.revision() == "0002"
    assert [row[2] for row in peek.history()] == ["succeeded", "succeeded"]


def test_statement_timeout_rolls_the_revision_back(database: ConnInfo, peek: Peek) -> None:
    slow = load_set("slow", SETS_ROOT)

    with pytest.raises(MigrationError) as caught:
        migrate(
            database,
            slow,
            MigrationOptions(statement_timeout=timedelta(milliseconds=100), lint_mode="off"),
        )

    assert caught.value.reason == "RevisionFailed"
    assert "statement_timeout" in str(caught.value)
    assert peek.revision() is None
    assert peek.tables() == set()

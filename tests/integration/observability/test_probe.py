"""The database health probe against a real PostgreSQL server."""

from __future__ import annotations

import dataclasses
import time

import psycopg
import pytest

from dbkeeper.conninfo import ConnInfo
from dbkeeper.health import probe_database
from dbkeeper.local.postgres import free_port


@pytest.fixture
def statements_database(database: ConnInfo) -> ConnInfo:
    """The test database with pg_stat_statements created (the cluster preloads it)."""
    with psycopg.connect(database.dsn(), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    return database


def test_reachable_database_is_up_with_its_connection_numbers(database: ConnInfo) -> None:
    with psycopg.connect(database.dsn()):
        health = probe_database(database)
    assert health.up
    assert health.error is None
    assert health.max_connections == 200  # the test cluster's setting
    assert health.connections_used is not None
    assert 2 <= health.connections_used <= health.max_connections


def test_cache_hit_ratio_is_a_ratio(database: ConnInfo) -> None:
    with psycopg.connect(database.dsn()) as conn:
        conn.execute("CREATE TABLE t AS SELECT g AS id FROM generate_series(1, 2000) g")
        conn.execute("SELECT count(*) FROM t").fetchone()
        conn.commit()
    # Block statistics reach pg_stat_database when the backend reports them.
    deadline = time.monotonic() + 5
    health = probe_database(database)
    while health.cache_hit_ratio is None and time.monotonic() < deadline:
        time.sleep(0.1)
        health = probe_database(database)
    assert health.cache_hit_ratio is not None
    assert 0.0 <= health.cache_hit_ratio <= 1.0


def test_longest_transaction_sees_an_open_transaction(database: ConnInfo) -> None:
    with psycopg.connect(database.dsn()) as conn:
        conn.execute("SELECT 1")  # opens a transaction and leaves it open
        time.sleep(0.3)
        health = probe_database(database)
    assert health.longest_transaction_seconds is not None
    assert health.longest_transaction_seconds >= 0.3


def test_no_open_transaction_is_zero_seconds(database: ConnInfo) -> None:
    assert probe_database(database).longest_transaction_seconds == 0.0


def test_no_replica_means_no_replication_lag(database: ConnInfo) -> None:
    assert probe_database(database).replication_lag_seconds is None


def test_top_queries_come_by_mean_time_with_ids(statements_database: ConnInfo) -> None:
    with psycopg.connect(statements_database.dsn(), autocommit=True) as conn:
        conn.execute("SELECT pg_sleep(0.12)")
        for _ in range(3):
            conn.execute("SELECT 1 + 1")
    health = probe_database(statements_database, top_queries=3)
    assert 1 <= len(health.top_queries) <= 3
    slowest = health.top_queries[0]
    assert isinstance(slowest.queryid, int)
    assert slowest.mean_seconds >= 0.12
    means = [q.mean_seconds for q in health.top_queries]
    assert means == sorted(means, reverse=True)


def test_statement_totals_grow_with_statements(statements_database: ConnInfo) -> None:
    before = probe_database(statements_database)
    with psycopg.connect(statements_database.dsn(), autocommit=True) as conn:
        for _ in range(5):
            conn.execute("SELECT 1")
    after = probe_database(statements_database)
    assert before.statement_calls is not None
    assert after.statement_calls is not None
    assert after.statement_calls >= before.statement_calls + 5
    assert after.statement_exec_seconds is not None


def test_without_the_extension_there_are_no_query_statistics(database: ConnInfo) -> None:
    health = probe_database(database)
    assert health.up
    assert health.top_queries == ()
    assert health.statement_calls is None


def test_unreachable_database_is_reported_down(database: ConnInfo) -> None:
    wrong_port = dataclasses.replace(database, port=free_port())
    health = probe_database(wrong_port)
    assert not health.up
    assert health.connections_used is None
    assert health.error


def test_wrong_password_is_down_and_the_error_hides_it(database: ConnInfo) -> None:
    wrong = dataclasses.replace(database, password="not-the-password-x9")
    health = probe_database(wrong)
    assert not health.up
    assert health.error is not None
    assert "not-the-password-x9" not in health.error
    assert database.password is not None
    assert database.password not in health.error

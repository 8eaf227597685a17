"""The declared pooler limits are enforced by the real pgbouncer."""

from __future__ import annotations

import contextlib

import psycopg
import pytest

from dbkeeper.conninfo import ConnInfo
from dbkeeper.pooler.stats import PoolStats
from tests.integration.pooler.conftest import (
    ALIAS,
    BackgroundQuery,
    PoolerRole,
    StartPooler,
    connect_client,
)
from tests.waiting import wait_for


def _app_pool(pools: list[PoolStats]) -> PoolStats:
    return next(pool for pool in pools if pool.database == ALIAS)


def _server_connections(database: ConnInfo, role: PoolerRole) -> int:
    with psycopg.connect(database.dsn(), autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND usename = %s",
            (database.dbname, role.name),
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_client_beyond_max_client_conn_is_refused(
    start_pooler: StartPooler, pooler_role: PoolerRole
) -> None:
    pooler = start_pooler(max_client_conn=3)
    with contextlib.ExitStack() as stack:
        clients = [stack.enter_context(connect_client(pooler, pooler_role)) for _ in range(3)]
        for client in clients:
            assert client.execute("SELECT 1").fetchone() == (1,)
        with pytest.raises(psycopg.OperationalError, match="no more connections allowed"):
            connect_client(pooler, pooler_role)


def test_default_pool_size_caps_server_connections_and_further_clients_wait(
    start_pooler: StartPooler, pooler_role: PoolerRole, database: ConnInfo
) -> None:
    pooler = start_pooler(default_pool_size=1)
    admin = pooler.admin_console()
    with (
        connect_client(pooler, pooler_role) as holder,
        connect_client(pooler, pooler_role) as waiter,
    ):
        holder.execute("BEGIN")
        holder.execute("SELECT 1")  # the one server connection is now held by this transaction
        query = BackgroundQuery(waiter, "SELECT 2")
        wait_for(
            lambda: _app_pool(admin.show_pools()).clients_waiting == 1,
            what="the second client to wait (SHOW POOLS cl_waiting)",
        )
        pool = _app_pool(admin.show_pools())
        assert pool.servers_active == 1
        assert _server_connections(database, pooler_role) == 1
        assert not query.done
        holder.execute("COMMIT")
        assert query.join() == (2,)
    assert _server_connections(database, pooler_role) <= 1


def test_max_db_connections_caps_server_connections_of_the_database(
    start_pooler: StartPooler, pooler_role: PoolerRole, database: ConnInfo
) -> None:
    pooler = start_pooler(default_pool_size=5, max_db_connections=1)
    admin = pooler.admin_console()
    with (
        connect_client(pooler, pooler_role) as holder,
        connect_client(pooler, pooler_role) as waiter,
    ):
        holder.execute("BEGIN")
        holder.execute("SELECT 1")
        query = BackgroundQuery(waiter, "SELECT 2")
        wait_for(lambda: _app_pool(admin.show_pools()).clients_waiting == 1, what="cl_waiting")
        assert _server_connections(database, pooler_role) == 1
        holder.execute("COMMIT")
        assert query.join() == (2,)

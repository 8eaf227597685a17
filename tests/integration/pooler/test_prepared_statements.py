"""Prepared statements through the pooler in transaction mode, on the pgbouncer that runs.

PgBouncer 1.21 and later track protocol-level prepared statements per server connection
(``max_prepared_statements``), so applications may keep them on: psycopg with its
default ``prepare_threshold`` works through a transaction pool. Older pgbouncers do not
know the setting and would refuse to start on it, so it is left out of their ini.
"""

from __future__ import annotations

import threading
from typing import Any

import psycopg

from dbkeeper.conninfo import ConnInfo
from dbkeeper.pooler.local import LocalPgBouncer
from tests.integration.pooler.binaries import on_both_pgbouncers, on_new_pgbouncer
from tests.integration.pooler.conftest import ALIAS, PoolerRole, StartPooler

CLIENTS = 6
SERVER_CONNECTIONS = 2  # fewer than clients, so clients share server connections
ROUNDS = 60
# Distinct statements, each run often enough to be prepared by psycopg (threshold 5).
QUERIES = (
    "SELECT %s::int + 1",
    "SELECT %s::int * 2",
    "SELECT length(repeat('x', %s::int))",
)


def _expected(query_index: int, value: int) -> int:
    return (value + 1, value * 2, value)[query_index]


def _default_psycopg_client(pooler: LocalPgBouncer, role: PoolerRole) -> psycopg.Connection[Any]:
    """A client exactly as an application opens one: psycopg's default prepare_threshold."""
    info = pooler.client_conninfo(ALIAS, role.name, role.password)
    return psycopg.connect(info.dsn(), autocommit=True)


class PreparingClient:
    """Runs every query of QUERIES ROUNDS times on its own connection and thread."""

    def __init__(self, conn: psycopg.Connection[Any], seed: int) -> None:
        self.conn = conn
        self.seed = seed
        self.wrong: list[str] = []
        self.errors: list[str] = []
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        for round_number in range(ROUNDS):
            for index, query in enumerate(QUERIES):
                value = self.seed * 1000 + round_number
                try:
                    row = self.conn.execute(query, (value,)).fetchone()
                except psycopg.Error as exc:
                    self.errors.append(str(exc).strip())
                    continue
                if row != (_expected(index, value),):
                    self.wrong.append(f"{query} with {value} returned {row}")

    def join(self, timeout: float = 60.0) -> None:
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise AssertionError(f"client {self.seed} still running after {timeout}s")


@on_new_pgbouncer
def test_psycopg_default_prepared_statements_work_through_a_transaction_pool(
    start_pooler: StartPooler, pooler_role: PoolerRole
) -> None:
    pooler = start_pooler(pool_mode="transaction", default_pool_size=SERVER_CONNECTIONS)
    connections = [_default_psycopg_client(pooler, pooler_role) for _ in range(CLIENTS)]
    try:
        clients = [PreparingClient(conn, seed) for seed, conn in enumerate(connections)]
        for client in clients:
            client.join()
    finally:
        for conn in connections:
            conn.close()
    assert [error for client in clients for error in client.errors] == []
    assert [wrong for client in clients for wrong in client.wrong] == []
    stats = next(row for row in pooler.admin_console().show_stats() if row.database == ALIAS)
    assert stats.total_query_count >= CLIENTS * ROUNDS * len(QUERIES)


@on_new_pgbouncer
def test_the_prepared_statement_limit_is_the_configured_one(start_pooler: StartPooler) -> None:
    config = start_pooler(max_prepared_statements=50).admin_console().show_config()
    assert config["max_prepared_statements"].value == "50"


@on_both_pgbouncers
def test_the_ini_names_max_prepared_statements_only_for_a_pgbouncer_that_knows_it(
    start_pooler: StartPooler, database: ConnInfo
) -> None:
    pooler = start_pooler()
    ini = pooler.ini_path.read_text()
    if pooler.version >= (1, 21):
        assert "\nmax_prepared_statements = 200\n" in ini
    else:
        assert "max_prepared_statements" not in ini
    # It started on that file: a setting it does not know would have stopped it.
    assert pooler.is_running()

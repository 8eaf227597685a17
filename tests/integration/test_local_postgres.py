"""The local cluster the tests and the demo stand on."""

from __future__ import annotations

import tempfile
from pathlib import Path

import psycopg
import pytest

from dbkeeper.conninfo import ConnInfo
from dbkeeper.local.postgres import LocalPostgres


def test_fresh_database_is_empty_and_reachable_with_password(database: ConnInfo) -> None:
    with psycopg.connect(database.dsn()) as conn:
        tables = conn.execute(
            "SELECT count(*) FROM pg_tables"
            " WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"
        ).fetchone()
    assert tables == (0,)


def test_wrong_password_is_refused(database: ConnInfo) -> None:
    bad = ConnInfo(database.host, database.port, database.dbname, database.user, "not-it")
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(bad.dsn())


def test_pg_stat_statements_is_preloaded(database: ConnInfo) -> None:
    with psycopg.connect(database.dsn(), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION pg_stat_statements")
        (libs,) = conn.execute("SHOW shared_preload_libraries").fetchone() or ("",)
        count = conn.execute("SELECT count(*) FROM pg_stat_statements").fetchone()
    assert "pg_stat_statements" in libs
    assert count is not None


def test_destroy_stops_the_server_and_removes_its_files() -> None:
    base = Path(tempfile.mkdtemp(prefix="dbkeeper-destroy-"))
    cluster = LocalPostgres(base)
    cluster.init()
    cluster.start()
    dsn = cluster.admin_conninfo().dsn()
    cluster.destroy()
    assert not base.exists()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(dsn, connect_timeout=2)


def test_cluster_survives_restart_with_same_port_and_password() -> None:
    base = Path(tempfile.mkdtemp(prefix="dbkeeper-restart-"))
    cluster = LocalPostgres(base)
    try:
        cluster.init()
        cluster.start()
        cluster.stop()
        again = LocalPostgres(base)
        again.start()
        assert again.port == cluster.port
        with psycopg.connect(again.admin_conninfo().dsn()) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        cluster.destroy()

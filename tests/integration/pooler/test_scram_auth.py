"""One SCRAM verifier, computed by dbkeeper, serves PostgreSQL and PgBouncer alike."""

from __future__ import annotations

import dataclasses

import psycopg
import pytest

from dbkeeper.conninfo import ConnInfo
from dbkeeper.local.postgres import LocalPostgres
from tests.integration.pooler.conftest import ALIAS, PoolerRole, StartPooler, connect_client


def test_postgres_stores_the_verifier_dbkeeper_computed_and_accepts_the_password(
    pg_cluster: LocalPostgres, pooler_role: PoolerRole, database: ConnInfo
) -> None:
    with psycopg.connect(database.dsn()) as conn:
        row = conn.execute(
            "SELECT rolpassword FROM pg_authid WHERE rolname = %s", (pooler_role.name,)
        ).fetchone()
    assert row == (pooler_role.verifier,)
    direct = dataclasses.replace(database, user=pooler_role.name, password=pooler_role.password)
    with psycopg.connect(direct.dsn()) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (pooler_role.name,)


def test_client_logs_in_through_the_pooler_with_no_plaintext_password_on_disk(
    start_pooler: StartPooler, pooler_role: PoolerRole
) -> None:
    pooler = start_pooler()
    with connect_client(pooler, pooler_role) as client:
        assert client.execute("SELECT current_user").fetchone() == (pooler_role.name,)
    for path in (pooler.ini_path, pooler.userlist_path):
        assert pooler_role.password not in path.read_text()


def test_wrong_password_is_refused_by_the_pooler(
    start_pooler: StartPooler, pooler_role: PoolerRole
) -> None:
    pooler = start_pooler()
    info = pooler.client_conninfo(ALIAS, pooler_role.name, "not-the-password")
    with pytest.raises(psycopg.OperationalError, match="authentication failed"):
        psycopg.connect(info.dsn(), prepare_threshold=None)

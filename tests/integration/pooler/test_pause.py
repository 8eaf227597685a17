"""PAUSE/RESUME around a lock-heavy step: clients wait, then proceed; never left paused."""

from __future__ import annotations

import time

import psycopg
import pytest

from dbkeeper.conninfo import ConnInfo
from dbkeeper.pooler.admin import AdminConsole, PauseTimeout
from dbkeeper.pooler.pause import paused
from tests.integration.pooler.binaries import on_both_pgbouncers
from tests.integration.pooler.conftest import (
    ALIAS,
    BackgroundQuery,
    PoolerRole,
    StartPooler,
    connect_client,
)
from tests.waiting import wait_for

pytestmark = on_both_pgbouncers


class InjectedFailure(Exception):
    pass


def _is_paused(admin: AdminConsole) -> bool:
    return next(db for db in admin.show_databases() if db.name == ALIAS).paused


@pytest.fixture
def items_table(database: ConnInfo, pooler_role: PoolerRole) -> ConnInfo:
    with psycopg.connect(database.dsn(), autocommit=True) as conn:
        conn.execute("CREATE TABLE items (id int PRIMARY KEY)")
        conn.execute("INSERT INTO items SELECT generate_series(1, 10)")
        conn.execute(f'GRANT SELECT ON items TO "{pooler_role.name}"')
    return database


def _lock_heavy_step(database: ConnInfo) -> None:
    with psycopg.connect(database.dsn(), autocommit=True) as conn:
        conn.execute("ALTER TABLE items ADD COLUMN note text NOT NULL DEFAULT 'x'")


def test_a_client_query_waits_while_paused_and_proceeds_after(
    start_pooler: StartPooler, pooler_role: PoolerRole, items_table: ConnInfo
) -> None:
    pooler = start_pooler()
    admin = pooler.admin_console()
    with connect_client(pooler, pooler_role) as client:
        client.execute("SELECT 1")
        with paused(admin, ALIAS, wait=5):
            assert _is_paused(admin)
            query = BackgroundQuery(client, "SELECT count(*) FROM items")
            wait_for(
                lambda: any(p.clients_waiting for p in admin.show_pools() if p.database == ALIAS),
                what="the client query to queue behind the pause",
            )
            _lock_heavy_step(items_table)
            time.sleep(0.2)
            assert not query.done
        assert query.join() == (10,)
        assert not _is_paused(admin)


def test_an_exception_inside_the_paused_step_still_resumes_the_pool(
    start_pooler: StartPooler, pooler_role: PoolerRole
) -> None:
    pooler = start_pooler()
    admin = pooler.admin_console()

    def failing_revision() -> None:
        assert _is_paused(admin)
        raise InjectedFailure("the revision failed half-way")

    with pytest.raises(InjectedFailure), paused(admin, ALIAS, wait=5):
        failing_revision()
    assert not _is_paused(admin)
    with connect_client(pooler, pooler_role) as client:
        assert client.execute("SELECT 1").fetchone() == (1,)


def test_pause_gives_up_after_its_bound_and_leaves_the_pool_resumed(
    start_pooler: StartPooler, pooler_role: PoolerRole
) -> None:
    pooler = start_pooler()
    admin = pooler.admin_console()
    step_ran = False
    with connect_client(pooler, pooler_role) as holder:
        holder.execute("BEGIN")
        holder.execute("SELECT 1")  # an open transaction PAUSE would have to wait for
        with pytest.raises(PauseTimeout, match="resumed"), paused(admin, ALIAS, wait=0.5):
            step_ran = True
        assert not step_ran
        assert not _is_paused(admin)
        holder.execute("COMMIT")
        with connect_client(pooler, pooler_role) as other:
            assert other.execute("SELECT 1").fetchone() == (1,)

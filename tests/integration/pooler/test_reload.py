"""Settings changes reach the running pgbouncer online when it can take them."""

from __future__ import annotations

import dataclasses

import psycopg

from dbkeeper.local.postgres import free_port
from dbkeeper.pooler.changes import RESTART_FIELDS, ChangeKind
from dbkeeper.pooler.settings import PgBouncerSettings, settings_unknown_to
from tests.integration.pooler.binaries import on_both_pgbouncers
from tests.integration.pooler.conftest import ALIAS, PoolerRole, StartPooler, connect_client

pytestmark = on_both_pgbouncers


def test_pool_size_change_is_reloaded_while_a_client_stays_connected(
    start_pooler: StartPooler, pooler_role: PoolerRole
) -> None:
    pooler = start_pooler(default_pool_size=2)
    admin = pooler.admin_console()
    with connect_client(pooler, pooler_role) as client:
        assert client.execute("SELECT 1").fetchone() == (1,)
        kind = pooler.apply_changes({"default_pool_size": 7, "reserve_pool_size": 2})
        assert kind is ChangeKind.RELOAD
        entry = next(db for db in admin.show_databases() if db.name == ALIAS)
        assert (entry.pool_size, entry.reserve_pool) == (7, 2)
        assert client.execute("SELECT 2").fetchone() == (2,)
        assert not client.closed


def test_settings_that_need_a_restart_are_exactly_those_pgbouncer_cannot_change(
    start_pooler: StartPooler,
) -> None:
    pooler = start_pooler()
    config = pooler.admin_console().show_config()
    fields = {f.name for f in dataclasses.fields(PgBouncerSettings)} - {"databases"}
    not_changeable = {name for name in fields if name in config and not config[name].changeable}
    assert not_changeable == RESTART_FIELDS
    unknown = settings_unknown_to(pooler.version)
    assert fields - set(config) == unknown, "every setting but the newer ones is one it knows"


def test_listen_port_change_restarts_pgbouncer_on_the_new_port(
    start_pooler: StartPooler, pooler_role: PoolerRole
) -> None:
    pooler = start_pooler()
    old_port = pooler.port
    new_port = free_port()  # a neighbour port may be taken by another test's server
    assert pooler.apply_changes({"listen_port": new_port}) is ChangeKind.RESTART
    with connect_client(pooler, pooler_role) as client:
        assert client.execute("SELECT inet_client_port() IS NOT NULL").fetchone() == (True,)
    info = pooler.client_conninfo(ALIAS, pooler_role.name, pooler_role.password)
    stale = dataclasses.replace(info, port=old_port, connect_timeout=2)
    try:
        psycopg.connect(stale.dsn()).close()
        raise AssertionError("the old port still accepts connections")
    except psycopg.OperationalError:
        pass

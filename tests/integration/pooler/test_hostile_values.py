"""Hostile setting values are rejected by name before anything is written.

The pooler keeps running and the rendered pgbouncer.ini and userlist.txt on disk stay
byte for byte as they were.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from dbkeeper.local.postgres import LocalPostgres
from dbkeeper.pooler.local import LocalPgBouncer
from dbkeeper.pooler.render import UserEntry
from dbkeeper.pooler.settings import PoolerSettingsError
from tests.integration.pooler.conftest import (
    PoolerRole,
    connect_client,
    make_temp_dir,
    pooler_settings,
)


@pytest.fixture(scope="module")
def running_pooler(pg_cluster: LocalPostgres, pooler_role: PoolerRole) -> Iterator[LocalPgBouncer]:
    name = f"t_{uuid.uuid4().hex[:12]}"
    database = pg_cluster.create_database(name)
    folder = make_temp_dir("dbkeeper-test-pgbouncer-")
    pooler = LocalPgBouncer(folder, pooler_settings(database), [pooler_role.entry])
    pooler.start()
    try:
        yield pooler
    finally:
        pooler.stop()
        shutil.rmtree(folder, ignore_errors=True)
        pg_cluster.drop_database(name)


def _target(**override: Any) -> list[dict[str, Any]]:
    entry: dict[str, Any] = {"alias": "app", "host": "127.0.0.1", "port": 5432, "dbname": "app"}
    entry.update(override)
    return [entry]


# (id, changes, the field the error must name)
HOSTILE_CHANGES: list[tuple[str, dict[str, Any], str]] = [
    ("host-newline-injects-setting", {"databases": _target(host="db\nadmin_users = evil")}, "host"),
    ("host-semicolon-comment", {"databases": _target(host="db;auth_type=trust")}, "host"),
    ("host-space-extra-param", {"databases": _target(host="db user=postgres")}, "host"),
    ("host-equals", {"databases": _target(host="db=evil")}, "host"),
    ("dbname-injects-connstring", {"databases": _target(dbname="app password=x")}, "dbname"),
    ("dbname-newline-section", {"databases": _target(dbname="app\n[pgbouncer]")}, "dbname"),
    ("dbname-quote", {"databases": _target(dbname="app'")}, "dbname"),
    ("alias-hash-comment", {"databases": _target(alias="app#x")}, "alias"),
    ("alias-empty", {"databases": _target(alias="")}, "alias"),
    ("alias-admin-console", {"databases": _target(alias="pgbouncer")}, "databases"),
    ("port-out-of-range", {"databases": _target(port=70000)}, "port"),
    ("target-unknown-key", {"databases": _target(user="postgres")}, "databases"),
    ("admin-user-injection", {"admin_users": ["ops\nauth_type = trust"]}, "admin_users"),
    ("stats-user-quote", {"stats_users": ['ops"']}, "stats_users"),
    ("admin-user-control-char", {"admin_users": ["ops\x07"]}, "admin_users"),
    ("pool-mode-unknown", {"pool_mode": "transaction;"}, "pool_mode"),
    ("pool-size-zero", {"default_pool_size": 0}, "default_pool_size"),
    ("pool-size-negative", {"reserve_pool_size": -1}, "reserve_pool_size"),
    ("max-client-conn-huge", {"max_client_conn": 10**9}, "max_client_conn"),
    ("pool-size-not-int", {"default_pool_size": "20\nmax_client_conn=1"}, "default_pool_size"),
    ("bool-is-not-a-number", {"max_db_connections": True}, "max_db_connections"),
    ("timeout-nan", {"query_wait_timeout": float("nan")}, "query_wait_timeout"),
    ("listen-addr-injection", {"listen_addr": "0.0.0.0\nlisten_port=1"}, "listen_addr"),
    ("auth-file-relative", {"auth_file": "userlist.txt"}, "auth_file"),
    ("auth-file-space", {"auth_file": "/etc/a b"}, "auth_file"),
    ("auth-type-trust", {"auth_type": "trust"}, "auth_type"),
    ("unknown-key", {"auth_query": "SELECT 1"}, "auth_query"),
    (
        "startup-param-injection",
        {"ignore_startup_parameters": ["a,b"]},
        "ignore_startup_parameters",
    ),
    ("min-above-default", {"min_pool_size": 50, "default_pool_size": 10}, "min_pool_size"),
    ("tls-verify-without-ca", {"server_tls_sslmode": "verify-full"}, "server_tls_ca_file"),
]


@pytest.mark.parametrize(
    ("changes", "field"),
    [pytest.param(changes, field, id=case) for case, changes, field in HOSTILE_CHANGES],
)
def test_hostile_change_is_rejected_and_rendered_files_are_unchanged(
    running_pooler: LocalPgBouncer, changes: dict[str, Any], field: str
) -> None:
    ini_before = running_pooler.ini_path.read_bytes()
    userlist_before = running_pooler.userlist_path.read_bytes()
    with pytest.raises(PoolerSettingsError) as error:
        running_pooler.apply_changes(changes)
    assert field in str(error.value)
    assert running_pooler.ini_path.read_bytes() == ini_before
    assert running_pooler.userlist_path.read_bytes() == userlist_before
    assert running_pooler.is_running()


HOSTILE_USERS: list[tuple[str, Callable[[], UserEntry]]] = [
    ("user-name-newline", lambda: UserEntry('app\n"admin"', "SCRAM-SHA-256$4096:x$y:z")),
    ("user-name-quote", lambda: UserEntry('app" "', "x")),
    ("plaintext-password", lambda: UserEntry("app", "hunter2")),
]


@pytest.mark.parametrize("build", [pytest.param(b, id=case) for case, b in HOSTILE_USERS])
def test_hostile_user_entry_is_rejected_before_the_userlist_is_written(
    running_pooler: LocalPgBouncer, build: Callable[[], UserEntry]
) -> None:
    userlist_before = running_pooler.userlist_path.read_bytes()
    with pytest.raises(PoolerSettingsError, match="users"):
        running_pooler.set_users([build()])
    assert running_pooler.userlist_path.read_bytes() == userlist_before


def test_the_pooler_still_serves_clients_after_the_rejections(
    running_pooler: LocalPgBouncer, pooler_role: PoolerRole
) -> None:
    with connect_client(running_pooler, pooler_role) as client:
        assert client.execute("SELECT 1").fetchone() == (1,)

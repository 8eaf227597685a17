"""Password rotation while clients run through a real pgbouncer in transaction mode.

The database gets the new verifier first, then the pooler's userlist gets the same string
and is RELOADed: connected clients never fail, new ones use the new password, and the old
password is refused afterwards, directly and through the pooler.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from dbkeeper.conninfo import ConnInfo
from dbkeeper.local.postgres import LocalPostgres, free_port
from dbkeeper.pooler.local import LocalPgBouncer
from dbkeeper.pooler.render import UserEntry
from dbkeeper.pooler.scram import shared_verifier
from dbkeeper.pooler.settings import DatabaseTarget, PgBouncerSettings
from dbkeeper.security import (
    PrivilegeDeclaration,
    RoleDeclaration,
    SecurityError,
    apply_roles,
    role_verifiers,
    rotate_password,
    with_verifier,
)
from tests.integration.pooler.binaries import on_both_pgbouncers, pgbouncer_binary
from tests.integration.security.conftest import MakeDatabase, RoleSet, login
from tests.waiting import wait_for

__all__ = ["pgbouncer_binary"]  # a fixture: the rotation runs on both pgbouncers

ALIAS = "clinic"
CLIENTS = 4


@pytest.fixture
def pooled(
    pg_cluster: LocalPostgres,
    make_healthcare_db: MakeDatabase,
    roles: RoleSet,
    privileges: PrivilegeDeclaration,
    pgbouncer_binary: str,
) -> Iterator[tuple[LocalPgBouncer, str]]:
    """A secured database and a pgbouncer whose userlist holds the app role's verifier."""
    admin = pg_cluster.admin_conninfo()
    database = make_healthcare_db().dbname
    apply_roles(admin, database, roles.declarations, privileges)
    verifier = role_verifiers(admin, [roles.app.username])[roles.app.username]
    folder = Path(tempfile.mkdtemp(prefix="dbkeeper-test-security-pgbouncer-"))
    folder.chmod(0o755)
    settings = PgBouncerSettings(
        databases=(DatabaseTarget(ALIAS, "127.0.0.1", pg_cluster.port, database),),
        listen_port=free_port(),
        pool_mode="transaction",
        default_pool_size=CLIENTS,
        server_tls_sslmode="disable",
        server_login_retry=0.5,
        server_connect_timeout=2.0,
    )
    pooler = LocalPgBouncer(
        folder, settings, [UserEntry(roles.app.username, verifier)], binary=pgbouncer_binary
    )
    pooler.start()
    try:
        yield pooler, database
    finally:
        pooler.stop()
        shutil.rmtree(folder, ignore_errors=True)


def _through(pooler: LocalPgBouncer, role: str, password: str) -> psycopg.Connection[Any]:
    info = pooler.client_conninfo(ALIAS, role, password)
    return psycopg.connect(info.dsn(), prepare_threshold=None, autocommit=True)


class ClientLoop:
    """One pooled client querying without pause on its own thread, counting outcomes."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn
        self.ok = 0
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.conn.execute("SELECT count(*) FROM patients").fetchone()
                self.ok += 1
            except psycopg.Error as exc:
                self.errors.append(str(exc))
            time.sleep(0.002)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.conn.close()


def _each_answers_more(loops: list[ClientLoop], queries: int = 20) -> None:
    """Wait until every client has had ``queries`` more answers (or errors) than now."""
    start = [loop.ok + len(loop.errors) for loop in loops]
    wait_for(
        lambda: all(
            loop.ok + len(loop.errors) >= s + queries for loop, s in zip(loops, start, strict=True)
        ),
        what="every pooled client to get more answers",
    )


@on_both_pgbouncers
def test_rotation_keeps_pooled_clients_working_and_retires_the_old_password(
    pg_cluster: LocalPostgres,
    pooled: tuple[LocalPgBouncer, str],
    roles: RoleSet,
) -> None:
    pooler, database = pooled
    app = roles.app
    new_password = "rotated-" + app.password[::-1]
    loops = [ClientLoop(_through(pooler, app.username, app.password)) for _ in range(CLIENTS)]
    try:
        _each_answers_more(loops)
        before = sum(loop.ok for loop in loops)
        verifier = rotate_password(pg_cluster.admin_conninfo(), app.username, new_password)
        # The window between the database and the pooler: clients keep being served.
        _each_answers_more(loops)
        pooler.set_users(with_verifier([], app.username, verifier))
        _each_answers_more(loops)
        with _through(pooler, app.username, new_password) as fresh:
            assert fresh.execute("SELECT current_user").fetchone() == (app.username,)
        _each_answers_more(loops)
    finally:
        for loop in loops:
            loop.stop()
    after = sum(loop.ok for loop in loops)
    failures = [error for loop in loops for error in loop.errors]
    print(f"\nrotation: {after} queries on {CLIENTS} pooled clients, {after - before} after "
          f"the rotation began, {len(failures)} failed")  # fmt: skip
    assert failures == []
    assert after > before
    assert all(loop.ok > 0 for loop in loops)

    with pytest.raises(psycopg.OperationalError):
        _through(pooler, app.username, app.password)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(login(pg_cluster, database, app).dsn())
    new = RoleDeclaration("app", app.username, new_password)
    with psycopg.connect(login(pg_cluster, database, new).dsn()) as direct:
        assert direct.execute("SELECT 1").fetchone() == (1,)


def test_rotating_to_the_same_password_keeps_the_verifier(
    pg_cluster: LocalPostgres, pooled: tuple[LocalPgBouncer, str], roles: RoleSet
) -> None:
    admin = pg_cluster.admin_conninfo()
    stored = role_verifiers(admin, [roles.app.username])[roles.app.username]
    assert rotate_password(admin, roles.app.username, roles.app.password) == stored


def test_a_rotated_password_gets_the_verifier_every_pooler_computes(
    pg_cluster: LocalPostgres, pooled: tuple[LocalPgBouncer, str], roles: RoleSet
) -> None:
    # Another pooler given the new password (a second resource, `dbkeeper pooler run`)
    # computes this very verifier and has nothing to store that would lock this one out.
    admin = pg_cluster.admin_conninfo()
    new_password = roles.app.password + "-rotated"
    verifier = rotate_password(admin, roles.app.username, new_password)
    assert verifier == shared_verifier(roles.app.username, new_password)
    assert role_verifiers(admin, [roles.app.username]) == {roles.app.username: verifier}


def test_rotating_a_missing_role_names_it_and_not_the_password(pg_cluster: LocalPostgres) -> None:
    with pytest.raises(SecurityError, match="role hc_nobody does not exist") as caught:
        rotate_password(pg_cluster.admin_conninfo(), "hc_nobody", "secret-never-shown")
    assert "secret-never-shown" not in str(caught.value)
    assert "secret-never-shown" not in repr(caught.value)


def test_wrong_admin_password_error_hides_it(pg_cluster: LocalPostgres) -> None:
    admin = ConnInfo("127.0.0.1", pg_cluster.port, "postgres", "postgres", "not-the-admin-pw")
    with pytest.raises(SecurityError) as caught:
        rotate_password(admin, "hc_nobody", "secret-never-shown")
    assert caught.value.reason == "DatabaseUnreachable"
    assert "not-the-admin-pw" not in str(caught.value)

"""Failover: a real streaming replica is promoted and the pooler is repointed to it.

A client keeps querying through the pooler the whole time; the test reports how many of
its queries failed between the primary going away and the repoint taking effect.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import psycopg
import pytest

from dbkeeper.local.postgres import LocalPostgres
from dbkeeper.pooler.failover import Endpoint, find_primary, repoint
from dbkeeper.pooler.local import LocalPgBouncer
from tests.integration.pooler.binaries import on_both_pgbouncers
from tests.integration.pooler.conftest import (
    ALIAS,
    PoolerRole,
    create_role,
    make_temp_dir,
    pooler_settings,
)
from tests.waiting import wait_for

MAX_FAILED_QUERIES = 60


@dataclass
class ClientLoop:
    """Queries ``inet_server_port()`` through the pooler every 20 ms, reconnecting on error."""

    pooler: LocalPgBouncer
    role: PoolerRole
    ports: list[int] = field(default_factory=list)
    failures: int = 0
    last_error: str = ""
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        info = self.pooler.client_conninfo(ALIAS, self.role.name, self.role.password)
        conn: psycopg.Connection[tuple[int]] | None = None
        while not self._stop.is_set():
            try:
                if conn is None or conn.closed:
                    conn = psycopg.connect(info.dsn(), prepare_threshold=None, autocommit=True)
                row = conn.execute("SELECT inet_server_port()").fetchone()
                assert row is not None
                self.ports.append(int(row[0]))
            except psycopg.Error as exc:
                self.failures += 1
                self.last_error = str(exc)
                if conn is not None:
                    conn.close()
                conn = None
            time.sleep(0.02)
        if conn is not None:
            conn.close()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)


@pytest.fixture
def primary_and_replica(pooler_role: PoolerRole) -> Iterator[tuple[LocalPostgres, LocalPostgres]]:
    folder = make_temp_dir("dbkeeper-test-failover-")
    primary = LocalPostgres(folder / "primary")
    replica: LocalPostgres | None = None
    try:
        primary.init(preload=[])
        primary.start()
        create_role(primary, pooler_role.name, pooler_role.password, pooler_role.verifier)
        replica = primary.create_replica(folder / "replica")
        yield primary, replica
    finally:
        if replica is not None:
            replica.destroy()
        primary.destroy()
        shutil.rmtree(folder, ignore_errors=True)


@on_both_pgbouncers
def test_clients_keep_working_through_a_promoted_replica_after_repoint(
    primary_and_replica: tuple[LocalPostgres, LocalPostgres],
    pooler_role: PoolerRole,
    pgbouncer_binary: str,
) -> None:
    primary, replica = primary_and_replica
    # The replica holds the same role with the same verifier: it was copied physically.
    role = pooler_role
    hosts = [Endpoint("127.0.0.1", primary.port), Endpoint("127.0.0.1", replica.port)]
    credentials = primary.admin_conninfo()
    assert find_primary(hosts, credentials) == hosts[0]

    folder = make_temp_dir("dbkeeper-test-pgbouncer-")
    pooler = LocalPgBouncer(
        folder,
        pooler_settings(primary.admin_conninfo(), server_idle_timeout=5),
        [role.entry],
        binary=pgbouncer_binary,
    )
    loop = ClientLoop(pooler, role)
    try:
        pooler.start()
        loop.start()
        wait_for(lambda: primary.port in loop.ports, what="queries served by the primary")

        primary.stop(mode="immediate")
        replica.promote()
        new_primary = find_primary(hosts, credentials)
        assert new_primary == hosts[1]
        assert repoint(pooler, ALIAS, new_primary)
        assert not repoint(pooler, ALIAS, new_primary), "a second repoint changes nothing"

        wait_for(
            lambda: loop.ports.count(replica.port) >= 10,
            timeout=60,
            what="queries served by the promoted replica",
        )
    finally:
        loop.stop()
        pooler.stop()
        shutil.rmtree(folder, ignore_errors=True)
    print(
        f"\nfailover: {loop.failures} failed queries, "
        f"{loop.ports.count(primary.port)} on the old primary, "
        f"{loop.ports.count(replica.port)} on the promoted replica; last error: {loop.last_error}"
    )
    assert loop.failures <= MAX_FAILED_QUERIES
    assert loop.ports[-1] == replica.port

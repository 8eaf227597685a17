"""TLS through a real pgbouncer: clients to the pooler, the pooler to PostgreSQL, renewal.

A CA (and a second, unrelated one) and certificates for 127.0.0.1 and localhost are made
with openssl. Client TLS is checked from the client's side (libpq says whether the
connection is encrypted and verified the pooler's certificate); server TLS from
PostgreSQL's side (``pg_stat_ssl`` of the backend pgbouncer opened), against a server of
the module's own started with ``ssl = on``.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import psycopg
import pytest

from dbkeeper.conninfo import ConnInfo
from dbkeeper.local.postgres import LocalPostgres
from dbkeeper.local.service_user import service_user
from dbkeeper.pooler.local import LocalPgBouncer
from tests.integration.pooler.conftest import (
    ALIAS,
    PoolerRole,
    StartPooler,
    create_role,
    make_temp_dir,
    pooler_settings,
)
from tests.integration.pooler.test_serve import KubeletMount, Served
from tests.integration.security.certificates import KeyPair, make_ca, make_server_cert
from tests.waiting import wait_for

NAMES = "IP:127.0.0.1,DNS:localhost"


@dataclass(frozen=True)
class Pki:
    ca: KeyPair
    other_ca: KeyPair
    server: KeyPair
    """For 127.0.0.1 and localhost, signed by ``ca``."""
    other_server: KeyPair
    """The same names, signed by ``other_ca``."""


@pytest.fixture(scope="module")
def pki() -> Iterator[Pki]:
    folder = make_temp_dir("dbkeeper-test-pooler-pki-")
    try:
        ca = make_ca(folder, "pooler-test-ca")
        other_ca = make_ca(folder, "unrelated-ca")
        pki = Pki(
            ca,
            other_ca,
            make_server_cert(folder, ca, "server", NAMES),
            make_server_cert(folder, other_ca, "other-server", NAMES),
        )
        # pgbouncer and PostgreSQL run as the service user and read the keys themselves.
        service_user().own(folder)
        yield pki
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@dataclass(frozen=True)
class TlsDatabase:
    """A database on a PostgreSQL server that offers TLS, and a role of the pooler's."""

    target: ConnInfo
    admin: ConnInfo
    role: PoolerRole


@pytest.fixture(scope="module")
def tls_database(pki: Pki) -> Iterator[TlsDatabase]:
    folder = make_temp_dir("dbkeeper-test-pooler-tls-pg-")
    cluster = LocalPostgres(folder / "pg")
    try:
        cluster.init(preload=[])
        for name, source in (("server.crt", pki.server.cert), ("server.key", pki.server.key)):
            shutil.copy(source, cluster.data_dir / name)
            (cluster.data_dir / name).chmod(0o600)
            service_user().own(cluster.data_dir / name)
        with (cluster.data_dir / "postgresql.conf").open("a") as conf:
            conf.write("ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n")
        cluster.start()
        target = cluster.create_database("tls_app")
        role = create_role(cluster, f"tls_app_{uuid.uuid4().hex[:8]}", uuid.uuid4().hex)
        yield TlsDatabase(target, cluster.admin_conninfo("tls_app"), role)
    finally:
        cluster.destroy()
        shutil.rmtree(folder, ignore_errors=True)


def _tls_client(
    pooler: LocalPgBouncer, role: PoolerRole, sslmode: str, ca: KeyPair | None = None
) -> psycopg.Connection[Any]:
    info = replace(
        pooler.client_conninfo(ALIAS, role.name, role.password),
        sslmode=sslmode,
        sslrootcert=str(ca.cert) if ca else None,
    )
    return psycopg.connect(info.dsn(), prepare_threshold=None, autocommit=True)


# --- client TLS: applications to the pooler ---------------------------------------------


def _client_tls(pki: Pki) -> dict[str, Any]:
    return {
        "client_tls_sslmode": "require",
        "client_tls_cert_file": str(pki.server.cert),
        "client_tls_key_file": str(pki.server.key),
    }


def test_client_with_verify_full_and_the_right_ca_connects_encrypted(
    start_pooler: StartPooler, pooler_role: PoolerRole, pki: Pki
) -> None:
    pooler = start_pooler(**_client_tls(pki))
    with _tls_client(pooler, pooler_role, "verify-full", pki.ca) as conn:
        assert conn.info.pgconn.ssl_in_use
        assert conn.execute("SELECT current_user").fetchone() == (pooler_role.name,)


def test_client_without_tls_is_refused_when_the_pooler_requires_it(
    start_pooler: StartPooler, pooler_role: PoolerRole, pki: Pki
) -> None:
    pooler = start_pooler(**_client_tls(pki))
    with pytest.raises(psycopg.OperationalError, match="SSL required"):
        _tls_client(pooler, pooler_role, "disable").close()


def test_client_verifying_against_another_ca_is_refused(
    start_pooler: StartPooler, pooler_role: PoolerRole, pki: Pki
) -> None:
    pooler = start_pooler(**_client_tls(pki))
    with pytest.raises(psycopg.OperationalError, match="certificate verify failed"):
        _tls_client(pooler, pooler_role, "verify-full", pki.other_ca).close()


# --- server TLS: the pooler to PostgreSQL -----------------------------------------------


@pytest.fixture
def start_tls_pooler(tls_database: TlsDatabase) -> Iterator[StartPooler]:
    started: list[tuple[LocalPgBouncer, Path]] = []

    def start(**overrides: Any) -> LocalPgBouncer:
        folder = make_temp_dir("dbkeeper-test-pgbouncer-tls-")
        settings = pooler_settings(tls_database.target, **overrides)
        pooler = LocalPgBouncer(folder, settings, [tls_database.role.entry])
        started.append((pooler, folder))
        pooler.start()
        return pooler

    yield start
    for pooler, folder in started:
        pooler.stop()
        shutil.rmtree(folder, ignore_errors=True)


def test_server_tls_verify_full_with_the_right_ca_encrypts_the_pooler_backend(
    start_tls_pooler: StartPooler, tls_database: TlsDatabase, pki: Pki
) -> None:
    pooler = start_tls_pooler(server_tls_sslmode="verify-full", server_tls_ca_file=str(pki.ca.cert))
    with _tls_client(pooler, tls_database.role, "disable") as conn:
        row = conn.execute("SELECT pg_backend_pid(), current_user").fetchone()
    assert row is not None
    backend, user = row
    assert user == tls_database.role.name
    # Asked directly, not through the pooler: PostgreSQL's own view of that backend.
    with psycopg.connect(tls_database.admin.dsn()) as admin:
        ssl = admin.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = %s", (backend,)).fetchone()
    assert ssl == (True,)


def test_server_tls_disabled_leaves_the_pooler_backend_unencrypted(
    start_tls_pooler: StartPooler, tls_database: TlsDatabase
) -> None:
    # The counterpart of the test above: pg_stat_ssl does tell the two apart.
    pooler = start_tls_pooler(server_tls_sslmode="disable")
    with _tls_client(pooler, tls_database.role, "disable") as conn:
        row = conn.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        assert row.fetchone() == (False,)


def test_server_tls_verify_full_with_a_wrong_ca_keeps_clients_out(
    start_tls_pooler: StartPooler, tls_database: TlsDatabase, pki: Pki
) -> None:
    pooler = start_tls_pooler(
        server_tls_sslmode="verify-full",
        server_tls_ca_file=str(pki.other_ca.cert),
        query_wait_timeout=2.0,
    )
    with (
        pytest.raises(psycopg.OperationalError) as refused,
        _tls_client(pooler, tls_database.role, "disable") as conn,
    ):
        conn.execute("SELECT 1")
    assert tls_database.role.password not in str(refused.value)
    assert "certificate verify failed" in pooler.log_path.read_text()


# --- renewal: new certificate contents in the mounted Secret ----------------------------


def test_a_renewed_certificate_in_the_mount_is_served_without_a_restart(
    database: ConnInfo, pooler_role: PoolerRole, pki: Pki
) -> None:
    folder = make_temp_dir("dbkeeper-test-serve-tls-")
    tls = KubeletMount(folder / "tls")
    served: Served | None = None
    try:
        tls.publish({"tls.crt": pki.server.cert.read_text(), "tls.key": pki.server.key.read_text()})
        settings = pooler_settings(
            database,
            client_tls_sslmode="require",
            client_tls_cert_file=str(tls.path("tls.crt")),
            client_tls_key_file=str(tls.path("tls.key")),
        )
        served = Served(folder, settings, [pooler_role.entry])
        port = settings.listen_port
        info = ConnInfo(
            "127.0.0.1", port, ALIAS, pooler_role.name, pooler_role.password, "verify-full"
        )

        def connect(ca: KeyPair) -> psycopg.Connection[Any]:
            dsn = replace(info, sslrootcert=str(ca.cert)).dsn()
            return psycopg.connect(dsn, prepare_threshold=None, autocommit=True)

        with connect(pki.ca) as before:
            tls.publish(
                {
                    "tls.crt": pki.other_server.cert.read_text(),
                    "tls.key": pki.other_server.key.read_text(),
                }
            )

            def renewed_certificate_served() -> bool:
                try:
                    connect(pki.other_ca).close()
                except psycopg.OperationalError:
                    return False
                return True

            wait_for(renewed_certificate_served, 60, "the renewed certificate to be served")
            assert before.execute("SELECT 1").fetchone() == (1,), "no restart dropped it"
        with pytest.raises(psycopg.OperationalError, match="certificate verify failed"):
            connect(pki.ca).close()
    finally:
        if served is not None:
            served.stop()
        shutil.rmtree(folder, ignore_errors=True)

"""TLS to the database with sslmode=verify-full: right CA, wrong CA, wrong host name.

A CA and a server certificate for 127.0.0.1 and localhost are made with openssl; a
PostgreSQL cluster of the module's own serves them.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from dbkeeper.api import DatabaseSchemaSpec
from dbkeeper.api.validation import parse_spec
from dbkeeper.conninfo import ConnInfo
from dbkeeper.local.postgres import LocalPostgres
from dbkeeper.local.service_user import service_user
from dbkeeper.migrate import MigrationError, load_set, read_status
from dbkeeper.reconcile.connection import database_conninfo
from dbkeeper.reconcile.runtime import EventType, ResourceView
from dbkeeper.security import SecurityError, with_tls
from tests.integration.security.certificates import KeyPair, make_ca, make_server_cert


@dataclass(frozen=True)
class TlsServer:
    cluster: LocalPostgres
    ca: KeyPair
    other_ca: KeyPair
    folder: Path

    def admin(self, sslmode: str, ca: KeyPair | None, host: str = "127.0.0.1") -> ConnInfo:
        info = replace(self.cluster.admin_conninfo(), host=host)
        return with_tls(info, sslmode, ca.pem if ca else None, self.folder / "ca-files")


@pytest.fixture(scope="module")
def tls_server() -> Iterator[TlsServer]:
    folder = Path(tempfile.mkdtemp(prefix="dbkeeper-test-tls-"))
    folder.chmod(0o755)  # the server runs as the unprivileged service user
    cluster = LocalPostgres(folder / "pg")
    try:
        ca = make_ca(folder / "pki", "dbkeeper-test-ca")
        other_ca = make_ca(folder / "pki", "some-other-ca")
        server = make_server_cert(folder / "pki", ca, "server", "IP:127.0.0.1,DNS:localhost")
        cluster.init(preload=["pg_stat_statements"])
        shutil.copy(server.cert, cluster.data_dir / "server.crt")
        shutil.copy(server.key, cluster.data_dir / "server.key")
        (cluster.data_dir / "server.key").chmod(0o600)
        service_user().own(cluster.data_dir / "server.crt", cluster.data_dir / "server.key")
        with (cluster.data_dir / "postgresql.conf").open("a") as conf:
            conf.write("ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n")
        cluster.start()
        yield TlsServer(cluster, ca, other_ca, folder)
    finally:
        cluster.destroy()
        shutil.rmtree(folder, ignore_errors=True)


def test_verify_full_with_the_right_ca_connects_encrypted(tls_server: TlsServer) -> None:
    for host in ("127.0.0.1", "localhost"):
        info = tls_server.admin("verify-full", tls_server.ca, host=host)
        with psycopg.connect(info.dsn()) as conn:
            row = conn.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            assert row.fetchone() == (True,), host


def test_verify_full_with_a_wrong_ca_is_refused(tls_server: TlsServer) -> None:
    info = tls_server.admin("verify-full", tls_server.other_ca)
    with pytest.raises(psycopg.OperationalError, match="certificate verify failed"):
        psycopg.connect(info.dsn())


def test_verify_full_with_a_wrong_host_name_is_refused(tls_server: TlsServer) -> None:
    # Reach the server's address under a name its certificate does not carry.
    info = tls_server.admin("verify-full", tls_server.ca, host="db.example.invalid")
    with pytest.raises(psycopg.OperationalError, match="does not match host name"):
        psycopg.connect(info.dsn(), hostaddr="127.0.0.1")


def test_verify_ca_does_not_check_the_host_name(tls_server: TlsServer) -> None:
    info = tls_server.admin("verify-ca", tls_server.ca, host="db.example.invalid")
    with psycopg.connect(info.dsn(), hostaddr="127.0.0.1") as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_a_verifying_mode_without_a_ca_is_refused_before_connecting(tls_server: TlsServer) -> None:
    with pytest.raises(SecurityError, match="needs the CA certificate"):
        tls_server.admin("verify-full", None)


class SecretsOnly:
    """The Kubernetes side of a reconcile, reduced to the Secrets a test puts in."""

    def __init__(self, secrets: Mapping[str, dict[str, str]]) -> None:
        self.secrets = secrets

    def read_secret(self, namespace: str, name: str) -> dict[str, str] | None:
        return self.secrets.get(name)

    def write_status(self, view: ResourceView, status: Mapping[str, Any]) -> None:
        raise NotImplementedError

    def event(self, view: ResourceView, event_type: EventType, reason: str, message: str) -> None:
        raise NotImplementedError

    def apply(self, view: ResourceView, obj: Mapping[str, Any]) -> str:
        raise NotImplementedError

    def now(self) -> datetime:
        raise NotImplementedError

    def migration_hooks(
        self, view: ResourceView, spec: DatabaseSchemaSpec, conninfo: ConnInfo
    ) -> None:
        return None


def _operator_conninfo(tls_server: TlsServer, ca: KeyPair) -> ConnInfo:
    raw = {
        "database": {
            "host": "localhost",
            "port": tls_server.cluster.port,
            "name": "postgres",
            "credentialsSecret": "clinic-owner",
            "sslMode": "verify-full",
            "caSecret": "clinic-ca",
        }
    }
    spec = parse_spec(raw)
    view = ResourceView(namespace="health", name="clinic", generation=1, spec=raw)
    runtime = SecretsOnly(
        {
            "clinic-owner": {"username": "postgres", "password": tls_server.cluster.password},
            "clinic-ca": {"ca.crt": ca.pem},
        }
    )
    return database_conninfo(spec, view, runtime)


def test_the_operators_connection_uses_the_ca_secret(tls_server: TlsServer) -> None:
    info = _operator_conninfo(tls_server, tls_server.ca)
    assert info.sslmode == "verify-full"
    assert info.sslrootcert is not None
    assert Path(info.sslrootcert).read_text() == tls_server.ca.pem
    status = read_status(info, load_set("healthcare"))
    assert status.current_revision is None


def test_the_operators_connection_refuses_a_server_the_ca_secret_did_not_sign(
    tls_server: TlsServer,
) -> None:
    info = _operator_conninfo(tls_server, tls_server.other_ca)
    with pytest.raises(MigrationError) as caught:
        read_status(info, load_set("healthcare"))
    assert caught.value.reason == "DatabaseUnreachable"
    assert tls_server.cluster.password not in str(caught.value)

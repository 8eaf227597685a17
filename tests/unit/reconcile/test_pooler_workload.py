"""From a DatabaseSchema's spec to the pooler's settings and objects (no cluster needed)."""

from __future__ import annotations

from typing import Any

from dbkeeper.api import parse_spec
from dbkeeper.manifests import HASH_ANNOTATION
from dbkeeper.manifests.pooler import PoolerTlsSecrets, build_pooler_secret, pooler_name
from dbkeeper.pooler.scram import scram_verifier, verifier_matches
from dbkeeper.reconcile.pooler_input import (
    PooledRole,
    pgbouncer_settings,
    pooler_input,
    pooler_tls_secrets,
)
from dbkeeper.reconcile.runtime import ResourceView
from dbkeeper.settings import Settings

PASSWORD = "owner-password-1"


def _spec(**pooler: Any) -> Any:
    return parse_spec(
        {
            "database": {
                "host": "clinic-pg.health.svc",
                "name": "clinic",
                "credentialsSecret": "s",
            },
            "pooler": {"enabled": True, **pooler},
        }
    )


def _view(name: str = "clinic") -> ResourceView:
    return ResourceView("health", name, 1, {}, uid=f"uid-{name}")


def _input(view: ResourceView, password: str = PASSWORD) -> Any:
    roles = (PooledRole("clinic_owner", password),)
    return pooler_input(view, _spec(), "10.0.0.7", 5433, roles, Settings(image="dbkeeper:test"))


def test_spec_fields_become_pgbouncer_settings() -> None:
    spec = _spec(
        poolMode="session",
        defaultPoolSize=12,
        minPoolSize=2,
        reservePoolSize=3,
        maxClientConnections=300,
        maxDatabaseConnections=40,
        port=6543,
        queryWaitTimeout="45s",
        serverIdleTimeout="5m",
        serverTls={"sslMode": "require"},
    )
    settings = pgbouncer_settings(spec, "10.0.0.7", 5433)
    assert (settings.pool_mode, settings.default_pool_size, settings.min_pool_size) == (
        "session",
        12,
        2,
    )
    assert (settings.reserve_pool_size, settings.max_client_conn) == (3, 300)
    assert (settings.max_db_connections, settings.listen_port) == (40, 6543)
    assert (settings.query_wait_timeout, settings.server_idle_timeout) == (45.0, 300.0)
    assert settings.server_tls_sslmode == "require"
    target = settings.database("clinic")
    assert (target.host, target.port, target.dbname) == ("10.0.0.7", 5433, "clinic")


def test_the_same_password_gives_the_same_secret_and_it_proves_the_password() -> None:
    first, second = _input(_view()), _input(_view())
    assert build_pooler_secret(first) == build_pooler_secret(second)
    assert verifier_matches(PASSWORD, first.users[0].verifier)


def test_a_new_password_changes_the_secrets_hash() -> None:
    before = build_pooler_secret(_input(_view()))["metadata"]["annotations"][HASH_ANNOTATION]
    after = build_pooler_secret(_input(_view(), "changed-password"))
    assert after["metadata"]["annotations"][HASH_ANNOTATION] != before


def test_every_resource_gives_a_role_the_same_verifier() -> None:
    # Two resources pooling one role must not store verifiers that lock each other out.
    assert _input(_view("a")).users[0].verifier == _input(_view("b")).users[0].verifier


def test_a_stored_verifier_that_proves_the_password_is_the_userlists() -> None:
    stored = scram_verifier(PASSWORD)
    roles = (PooledRole("clinic_owner", PASSWORD),)
    inp = pooler_input(
        _view(),
        _spec(),
        "10.0.0.7",
        5433,
        roles,
        Settings(image="dbkeeper:test"),
        stored={"clinic_owner": stored},
    )
    assert inp.users[0].verifier == stored


def test_objects_are_named_after_the_resource_and_owned_by_it() -> None:
    inp = _input(_view())
    assert inp.name == pooler_name("clinic") == "clinic-pooler"
    assert inp.owner_reference["uid"] == "uid-clinic"
    assert inp.image == "dbkeeper:test"


def test_a_long_resource_name_still_gives_a_valid_object_name() -> None:
    name = pooler_name("x" * 63)
    assert len(name) <= 63
    assert name != pooler_name("x" * 62 + "y")


def test_verifying_server_tls_uses_the_mounted_ca() -> None:
    spec = _spec(serverTls={"sslMode": "verify-full", "caSecret": "clinic-db-ca"})
    inp = pooler_input(
        _view(), spec, "10.0.0.7", 5432, (PooledRole("o", PASSWORD),), Settings(image="i")
    )
    assert inp.tls == PoolerTlsSecrets(server_ca="clinic-db-ca")
    assert inp.settings.server_tls_sslmode == "verify-full"
    (mount,) = inp.tls.mounts()
    assert inp.settings.server_tls_ca_file == mount.path("ca.crt")


def test_client_tls_mounts_the_certificate_and_the_client_ca() -> None:
    spec = _spec(
        clientTls={
            "sslMode": "verify-ca",
            "certificateSecret": "clinic-pooler-cert",
            "caSecret": "clinic-client-ca",
        }
    )
    settings = pgbouncer_settings(spec, "10.0.0.7", 5432)
    tls = pooler_tls_secrets(spec)
    assert tls == PoolerTlsSecrets(
        client_certificate="clinic-pooler-cert", client_ca="clinic-client-ca"
    )
    assert settings.client_tls_sslmode == "verify-ca"
    files = tls.file_settings()
    assert (settings.client_tls_cert_file, settings.client_tls_key_file) == (
        files["client_tls_cert_file"],
        files["client_tls_key_file"],
    )
    assert settings.client_tls_ca_file == files["client_tls_ca_file"] != ""


def test_secrets_of_a_disabled_tls_side_are_not_mounted() -> None:
    spec = _spec(
        clientTls={"sslMode": "disable", "certificateSecret": "clinic-pooler-cert"},
        serverTls={"sslMode": "disable", "caSecret": "clinic-db-ca"},
    )
    assert pooler_tls_secrets(spec).mounts() == ()
    settings = pgbouncer_settings(spec, "10.0.0.7", 5432)
    assert (settings.client_tls_cert_file, settings.server_tls_ca_file) == ("", "")

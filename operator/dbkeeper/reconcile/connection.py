"""From a spec and its Secrets to the connection parameters of the database.

A missing Secret or key is a :class:`CredentialsUnavailable` (temporary: the user may
create it at any moment); the values never appear in its message.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import tempfile
from pathlib import Path

from dbkeeper.api import DatabaseSchemaSpec
from dbkeeper.conninfo import ConnInfo
from dbkeeper.pooler.failover import Endpoint, NoPrimaryError, find_primary
from dbkeeper.reconcile.runtime import ResourceView, SecretReader

USERNAME_KEY = "username"
PASSWORD_KEY = "password"  # noqa: S105 - the key's name, not a password
CA_KEY = "ca.crt"


class CredentialsUnavailable(Exception):
    """A Secret the spec names is missing or lacks a key; ``reason`` says which."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class NoPrimary(Exception):
    """None of the spec's hosts is a reachable primary."""


def _ca_file(namespace: str, secret: str, pem: str) -> Path:
    """Write a CA certificate where libpq can read it; same content, same file."""
    digest = hashlib.sha256(pem.encode()).hexdigest()[:16]
    folder = Path(tempfile.gettempdir()) / "dbkeeper-ca"
    folder.mkdir(mode=0o700, exist_ok=True)
    path = folder / f"{namespace}-{secret}-{digest}.crt"
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        tmp.write_text(pem)
        os.chmod(tmp, 0o600)
        tmp.replace(path)
    return path


def read_credentials(
    view: ResourceView, runtime: SecretReader, secret_name: str
) -> tuple[str, str]:
    data = runtime.read_secret(view.namespace, secret_name)
    if data is None:
        raise CredentialsUnavailable(
            "SecretMissing",
            f"Secret {secret_name} not found in namespace {view.namespace}: create it with "
            f"keys {USERNAME_KEY} and {PASSWORD_KEY}",
        )
    missing = [key for key in (USERNAME_KEY, PASSWORD_KEY) if not data.get(key)]
    if missing:
        raise CredentialsUnavailable(
            "SecretInvalid",
            f"Secret {secret_name} has no {' or '.join(missing)}: it needs keys "
            f"{USERNAME_KEY} and {PASSWORD_KEY}",
        )
    return data[USERNAME_KEY], data[PASSWORD_KEY]


def database_conninfo(
    spec: DatabaseSchemaSpec, view: ResourceView, runtime: SecretReader
) -> ConnInfo:
    """Where to connect as the schema owner; with several hosts, the current primary."""
    database = spec.database
    user, password = read_credentials(view, runtime, database.credentials_secret)
    sslrootcert: str | None = None
    if database.ca_secret is not None:
        ca = runtime.read_secret(view.namespace, database.ca_secret)
        if ca is None or not ca.get(CA_KEY):
            raise CredentialsUnavailable(
                "SecretMissing",
                f"Secret {database.ca_secret} with key {CA_KEY} not found in namespace "
                f"{view.namespace}: sslMode {database.ssl_mode} needs the server's CA",
            )
        sslrootcert = str(_ca_file(view.namespace, database.ca_secret, ca[CA_KEY]))
    endpoints = database.endpoints()
    connect_timeout = max(1, int(database.connect_timeout.total_seconds()))
    base = ConnInfo(
        host=endpoints[0].host,
        port=endpoints[0].port,
        dbname=database.name,
        user=user,
        password=password,
        sslmode=database.ssl_mode,
        sslrootcert=sslrootcert,
        connect_timeout=connect_timeout,
    )
    if len(endpoints) == 1:
        return base
    try:
        primary = find_primary(
            [Endpoint(e.host, e.port) for e in endpoints], base, connect_timeout=connect_timeout
        )
    except NoPrimaryError as exc:
        raise NoPrimary(str(exc)) from None
    return dataclasses.replace(base, host=primary.host, port=primary.port)

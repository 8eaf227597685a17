"""From a DatabaseSchema to the input of its pooler's objects: pure functions, no I/O.

The pooler aspect (:mod:`dbkeeper.reconcile.pooler_workload`) reads what these need
(Secrets, the primary) and applies what they produce; the demo runs its local pooler
from :func:`pgbouncer_settings` too, so the two can never configure PgBouncer
differently.

Each role's verifier follows :func:`dbkeeper.pooler.scram.userlist_verifier`: the one the
server stores when the operator could read it, otherwise the shared one computed from
the role and its password. Either way the same password gives the same verifier on every
pass and for every resource: the Secret's hash stays put and nothing is rolled or
re-keyed until a password really changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dbkeeper.api import API_VERSION, KIND, DatabaseSchemaSpec
from dbkeeper.manifests.pooler import PoolerObjectsInput, PoolerTlsSecrets, pooler_name
from dbkeeper.pooler.render import UserEntry
from dbkeeper.pooler.scram import userlist_verifier
from dbkeeper.pooler.settings import DatabaseTarget, PgBouncerSettings
from dbkeeper.reconcile.runtime import ResourceView
from dbkeeper.settings import Settings


@dataclass(frozen=True)
class PooledRole:
    """A role that logs in through the pooler, with its password (never written out)."""

    name: str
    password: str

    def __repr__(self) -> str:
        return f"PooledRole({self.name!r})"


def owner_reference(view: ResourceView) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "name": view.name,
        "uid": view.uid or "",
        "controller": True,
        "blockOwnerDeletion": True,
    }


def pooler_tls_secrets(spec: DatabaseSchemaSpec) -> PoolerTlsSecrets:
    """The TLS Secrets the pooler pods mount: only those the chosen sslModes use.

    Client TLS off means no client Secret is needed, even when one is still named; the
    server CA is mounted whenever server TLS may be used, so moving between require and
    the verify modes is a reload, not a restart.
    """
    client, server = spec.pooler.client_tls, spec.pooler.server_tls
    client_on = client.ssl_mode != "disable"
    return PoolerTlsSecrets(
        client_certificate=client.certificate_secret if client_on else None,
        client_ca=client.ca_secret if client_on else None,
        server_ca=server.ca_secret if server.ssl_mode != "disable" else None,
    )


def pgbouncer_settings(spec: DatabaseSchemaSpec, host: str, port: int) -> PgBouncerSettings:
    """``spec.pooler`` as PgBouncer settings, pooling ``spec.database.name`` at host:port.

    TLS files are named where the pods mount them (see :func:`pooler_tls_secrets`).
    """
    pooler = spec.pooler
    name = spec.database.name
    return PgBouncerSettings(
        databases=(DatabaseTarget(alias=name, host=host, port=port, dbname=name),),
        listen_port=pooler.port,
        pool_mode=pooler.pool_mode,
        default_pool_size=pooler.default_pool_size,
        min_pool_size=pooler.min_pool_size,
        reserve_pool_size=pooler.reserve_pool_size,
        max_client_conn=pooler.max_client_connections,
        max_db_connections=pooler.max_database_connections,
        query_wait_timeout=pooler.query_wait_timeout.total_seconds(),
        server_idle_timeout=pooler.server_idle_timeout.total_seconds(),
        max_prepared_statements=pooler.max_prepared_statements,
        server_tls_sslmode=pooler.server_tls.ssl_mode,
        client_tls_sslmode=pooler.client_tls.ssl_mode,
        **pooler_tls_secrets(spec).file_settings(),
    )


def _resources(spec: DatabaseSchemaSpec) -> dict[str, dict[str, str]] | None:
    wanted = spec.pooler.resources
    if wanted is None:
        return None
    result: dict[str, dict[str, str]] = {}
    for kind in ("requests", "limits"):
        values = getattr(wanted, kind)
        if values is None:
            continue
        amounts = {k: str(v) for k, v in (("cpu", values.cpu), ("memory", values.memory)) if v}
        if amounts:
            result[kind] = amounts
    return result or None


def pooler_input(
    view: ResourceView,
    spec: DatabaseSchemaSpec,
    host: str,
    port: int,
    roles: tuple[PooledRole, ...],
    settings: Settings,
    admin_user: str | None = None,
    stored: Mapping[str, str] | None = None,
) -> PoolerObjectsInput:
    """Everything the pooler's objects are built from (pure; raises PoolerSettingsError).

    ``admin_user`` (one of ``roles``) may use the pods' admin console. ``stored`` holds
    the verifiers the server has, by role, where the operator could read them.
    """
    pgbouncer = pgbouncer_settings(spec, host, port)
    if admin_user is not None:
        pgbouncer = pgbouncer.updated({"admin_users": (admin_user,)})
    known = stored or {}
    users = tuple(
        UserEntry(role.name, userlist_verifier(role.name, role.password, known.get(role.name)))
        for role in roles
    )
    extra: dict[str, Any] = {}
    resources = _resources(spec)
    if resources is not None:
        extra["resources"] = resources
    return PoolerObjectsInput(
        name=pooler_name(view.name),
        namespace=view.namespace,
        owner_reference=owner_reference(view),
        settings=pgbouncer,
        users=users,
        image=settings.image,
        replicas=spec.pooler.replicas,
        tls=pooler_tls_secrets(spec),
        **extra,
    )

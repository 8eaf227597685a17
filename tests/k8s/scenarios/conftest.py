"""Fixtures of the operator scenarios: a database with its owner role, a Secret for it,
and the dbkeeper operator running against the test control plane with short timings."""

from __future__ import annotations

import base64
import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from psycopg import sql

from dbkeeper.conninfo import ConnInfo
from dbkeeper.local.postgres import LocalPostgres
from dbkeeper.settings import Settings
from tests.k8s.conftest import WORKLOAD_IMAGE, RunOperator
from tests.k8s.harness import Cluster, OperatorRun
from tests.secret_watch import watched

API_VERSION = "dbkeeper.dev/v1alpha1"
KIND = "DatabaseSchema"
OPERATOR_MODULE = "dbkeeper.main"


@dataclass(frozen=True)
class OwnedDatabase:
    """A database owned by its own login role, as an application team would have."""

    conninfo: ConnInfo  # as the owner
    admin: ConnInfo  # as the cluster's superuser

    @property
    def username(self) -> str:
        return self.conninfo.user

    @property
    def password(self) -> str:
        assert self.conninfo.password is not None
        return self.conninfo.password


def create_owned_database(cluster: LocalPostgres) -> OwnedDatabase:
    suffix = uuid.uuid4().hex[:10]
    role, name, password = f"owner_{suffix}", f"db_{suffix}", watched(secrets.token_urlsafe(18))
    with psycopg.connect(cluster.admin_conninfo().dsn(), autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(role), sql.Literal(password)
            )
        )
        conn.execute(
            sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(name), sql.Identifier(role)
            )
        )
    admin = cluster.admin_conninfo(name)
    owner = ConnInfo(admin.host, admin.port, name, role, password)
    return OwnedDatabase(owner, admin)


@pytest.fixture
def owned_database(pg_cluster: LocalPostgres) -> Iterator[OwnedDatabase]:
    database = create_owned_database(pg_cluster)
    yield database
    pg_cluster.drop_database(database.conninfo.dbname)


def secret_manifest(namespace: str, name: str, username: str, password: str) -> dict[str, Any]:
    def encode(text: str) -> str:
        return base64.b64encode(text.encode()).decode()

    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "type": "Opaque",
        "data": {"username": encode(username), "password": encode(password)},
    }


def schema_manifest(
    namespace: str,
    name: str,
    database: OwnedDatabase,
    secret: str,
    *,
    migration_set: str = "healthcare",
    target: str = "head",
    **migrations: Any,
) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "database": {
                "host": database.conninfo.host,
                "port": database.conninfo.port,
                "name": database.conninfo.dbname,
                "credentialsSecret": secret,
                "sslMode": "disable",
            },
            "migrations": {"set": migration_set, "targetRevision": target, **migrations},
        },
    }


def test_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "recheck_interval": timedelta(seconds=1),
        "retry_delay": timedelta(milliseconds=500),
        "metrics_port": 0,
        "image": WORKLOAD_IMAGE,
        "health_port": 0,
        "workers": 32,
        "advisory_lock_wait": timedelta(seconds=30),
        # Below the harness's stop bound: a stopping operator abandons its passes first.
        "shutdown_timeout": timedelta(seconds=6),
    }
    values.update(overrides)
    return Settings(**values)


def status_of(cluster: Cluster, namespace: str, name: str) -> dict[str, Any]:
    found = cluster.get(API_VERSION, KIND, namespace, name)
    return dict((found or {}).get("status") or {})


def wait_for_phase(
    cluster: Cluster, namespace: str, name: str, phase: str, timeout: float = 60
) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        status = status_of(cluster, namespace, name)
        return status if status.get("phase") == phase else None

    return cluster.wait_for(
        check,
        timeout,
        f"{namespace}/{name} to reach phase {phase} (now: {status_of(cluster, namespace, name)})",
    )


def event_reasons(cluster: Cluster, namespace: str, name: str) -> list[str]:
    return [e["reason"] for e in cluster.events(namespace, name)]


@pytest.fixture
def start_dbkeeper(run_operator: RunOperator) -> Any:
    """Start dbkeeper's own operator module; keyword arguments override test settings."""

    def start(namespaces: list[str] | None = None, **overrides: Any) -> OperatorRun:
        peering = overrides.pop("peering", None)
        priority = overrides.pop("priority", 0)
        return run_operator(
            OPERATOR_MODULE,
            namespaces=namespaces,
            peering=peering,
            priority=priority,
            memo={
                "settings": test_settings(namespaces=tuple(namespaces or ()), **overrides),
                "metrics": bool(overrides.get("metrics_port")),
            },
        )

    return start


@pytest.fixture
def workload(k8s_cluster: Cluster, start_dbkeeper: Any, owned_database: OwnedDatabase) -> Any:
    """The workload scenarios' resource (tests/k8s/scenarios/workloads.py), with the
    operator running."""
    from tests.k8s.scenarios.workloads import Workload  # it imports this module

    with start_dbkeeper():
        yield Workload(k8s_cluster, owned_database)

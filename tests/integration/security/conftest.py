"""Fixtures for the security tests: migrated healthcare databases and their declared roles.

Roles are shared by every database of a PostgreSQL server, so each fixture names its
roles uniquely; passwords are random so a test can look for them in logs and errors.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest

from dbkeeper.conninfo import ConnInfo
from dbkeeper.local.postgres import LocalPostgres
from dbkeeper.migrate import MigrationOptions, MigrationSet, load_set, migrate
from dbkeeper.security import PrivilegeDeclaration, RoleDeclaration, RoleKind, load_privileges
from tests.secret_watch import watched


@dataclass(frozen=True)
class RoleSet:
    """The four declared roles of one test database."""

    owner: RoleDeclaration
    app: RoleDeclaration
    readonly: RoleDeclaration
    auditor: RoleDeclaration

    @property
    def declarations(self) -> list[RoleDeclaration]:
        return [self.owner, self.app, self.readonly, self.auditor]

    def by_kind(self, kind: RoleKind) -> RoleDeclaration:
        role: RoleDeclaration = getattr(self, kind)
        return role

    @property
    def passwords(self) -> list[str]:
        return [role.password for role in self.declarations]


def new_role_set() -> RoleSet:
    suffix = uuid.uuid4().hex[:8]

    def role(kind: RoleKind) -> RoleDeclaration:
        return RoleDeclaration(
            kind, f"hc_{kind}_{suffix}", watched(f"pw-{kind}-{secrets.token_hex(12)}")
        )

    return RoleSet(role("owner"), role("app"), role("readonly"), role("auditor"))


def login(cluster: LocalPostgres, database: str, role: RoleDeclaration) -> ConnInfo:
    """How ``role`` connects to ``database`` directly."""
    return ConnInfo(
        host="127.0.0.1", port=cluster.port, dbname=database, user=role.username,
        password=role.password,
    )  # fmt: skip


def connect(info: ConnInfo, **kwargs: Any) -> psycopg.Connection[tuple[Any, ...]]:
    return psycopg.connect(info.dsn(), **kwargs)


@pytest.fixture(scope="session")
def healthcare_set() -> MigrationSet:
    return load_set("healthcare")


@pytest.fixture(scope="session")
def privileges(healthcare_set: MigrationSet) -> PrivilegeDeclaration:
    return load_privileges(healthcare_set.path)


MakeDatabase = Callable[..., ConnInfo]


def migrated_database(
    cluster: LocalPostgres, migration_set: MigrationSet, name: str, target: str = "head"
) -> ConnInfo:
    info = cluster.create_database(name)
    migrate(info, migration_set, MigrationOptions(target=target, lint_mode="off"))
    return info


def copy_database(cluster: LocalPostgres, template: str, name: str) -> ConnInfo:
    with psycopg.connect(cluster.admin_conninfo().dsn(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    return cluster.admin_conninfo(name)


@pytest.fixture(scope="session")
def healthcare_template(pg_cluster: LocalPostgres, healthcare_set: MigrationSet) -> Iterator[str]:
    """A database at head, migrated once, that head databases are copied from (faster)."""
    name = f"sec_template_{uuid.uuid4().hex[:8]}"
    migrated_database(pg_cluster, healthcare_set, name)
    yield name
    pg_cluster.drop_database(name)


@pytest.fixture
def make_healthcare_db(
    pg_cluster: LocalPostgres,
    healthcare_set: MigrationSet,
    healthcare_template: str,
    roles: RoleSet,
) -> Iterator[MakeDatabase]:
    """Create databases migrated to a revision of the healthcare set; dropped afterwards
    (before ``roles`` are, which own objects in them)."""
    made: list[str] = []

    def make(target: str = "head") -> ConnInfo:
        name = f"sec_{uuid.uuid4().hex[:12]}"
        made.append(name)
        if target == "head":
            return copy_database(pg_cluster, healthcare_template, name)
        return migrated_database(pg_cluster, healthcare_set, name, target)

    yield make
    for name in made:
        pg_cluster.drop_database(name)


def drop_roles(cluster: LocalPostgres, roles: RoleSet) -> None:
    with psycopg.connect(cluster.admin_conninfo().dsn(), autocommit=True) as conn:
        for role in roles.declarations:
            conn.execute(f'DROP ROLE IF EXISTS "{role.username}"')


@pytest.fixture
def roles(pg_cluster: LocalPostgres) -> Iterator[RoleSet]:
    """Four new role declarations; the roles are dropped after the test's databases."""
    role_set = new_role_set()
    yield role_set
    drop_roles(pg_cluster, role_set)

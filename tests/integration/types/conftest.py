"""Fixtures of the generated-types tests: a healthcare database at head to copy, and the
pinned TypeScript toolchain."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import psycopg
import pytest
from psycopg import sql

from dbkeeper.conninfo import ConnInfo
from dbkeeper.local.postgres import LocalPostgres
from dbkeeper.migrate import MigrationOptions, load_set, migrate
from tests.integration.types.toolchain import Toolchain, install_toolchain


@pytest.fixture(scope="session")
def toolchain() -> Toolchain:
    return install_toolchain()


@pytest.fixture(scope="session")
def healthcare_template(pg_cluster: LocalPostgres) -> Iterator[ConnInfo]:
    """A database migrated once to the healthcare set's head; tests read it or copy it."""
    name = f"types_{uuid.uuid4().hex[:12]}"
    info = pg_cluster.create_database(name)
    migrate(info, load_set("healthcare"), MigrationOptions(target="head", lint_mode="off"))
    try:
        yield info
    finally:
        pg_cluster.drop_database(name)


CopyDatabase = Callable[[], ConnInfo]


@pytest.fixture
def copy_healthcare(
    pg_cluster: LocalPostgres, healthcare_template: ConnInfo
) -> Iterator[CopyDatabase]:
    """Make databases of their own, copied from the template; dropped afterwards."""
    made: list[str] = []

    def copy() -> ConnInfo:
        name = f"types_copy_{uuid.uuid4().hex[:12]}"
        made.append(name)
        with psycopg.connect(pg_cluster.admin_conninfo().dsn(), autocommit=True) as conn:
            conn.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                    sql.Identifier(name), sql.Identifier(healthcare_template.dbname)
                )
            )
        return pg_cluster.admin_conninfo(name)

    yield copy
    for name in made:
        pg_cluster.drop_database(name)

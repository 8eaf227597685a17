"""Fixtures for the healthcare schema: pytest-alembic's configuration, migrated databases."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import psycopg
import pytest
from alembic import command
from alembic.config import Config as AlembicConfig
from pytest_alembic import Config
from sqlalchemy import create_engine, pool
from sqlalchemy.engine import URL, Engine

from dbkeeper.conninfo import ConnInfo
from dbkeeper.local.postgres import LocalPostgres
from dbkeeper.paths import migrations_root

SCRIPT_LOCATION = str(migrations_root() / "healthcare")


def sqlalchemy_url(info: ConnInfo) -> URL:
    return URL.create(
        "postgresql+psycopg",
        username=info.user,
        password=info.password,
        host=info.host,
        port=info.port,
        database=info.dbname,
    )


def _migrate(info: ConnInfo, move: Callable[[AlembicConfig, str], None], target: str) -> None:
    engine = create_engine(sqlalchemy_url(info), poolclass=pool.NullPool)
    try:
        config = AlembicConfig()
        config.set_main_option("script_location", SCRIPT_LOCATION)
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            move(config, target)
    finally:
        engine.dispose()


def upgrade(info: ConnInfo, target: str = "head") -> None:
    """Migrate the database the way the engine does: a connection passed in, one commit."""
    _migrate(info, command.upgrade, target)


def downgrade(info: ConnInfo, target: str) -> None:
    _migrate(info, command.downgrade, target)


@pytest.fixture
def alembic_config() -> Config:
    return Config(config_options={"script_location": SCRIPT_LOCATION})


@pytest.fixture
def alembic_engine(database: ConnInfo) -> Iterator[Engine]:
    engine = create_engine(sqlalchemy_url(database), poolclass=pool.NullPool)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def healthcare_db(database: ConnInfo) -> ConnInfo:
    """A fresh database of its own at the healthcare set's head revision."""
    upgrade(database)
    return database


@pytest.fixture(scope="module")
def shared_healthcare_db(pg_cluster: LocalPostgres) -> Iterator[ConnInfo]:
    """One database at head for a whole module whose tests each roll back their changes."""
    name = f"hc_{uuid.uuid4().hex[:12]}"
    info = pg_cluster.create_database(name)
    try:
        upgrade(info)
        yield info
    finally:
        pg_cluster.drop_database(name)


@pytest.fixture
def rollback_conn(
    shared_healthcare_db: ConnInfo,
) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """A connection to the shared database whose transaction is rolled back afterwards."""
    with psycopg.connect(shared_healthcare_db.dsn()) as conn:
        try:
            yield conn
        finally:
            conn.rollback()

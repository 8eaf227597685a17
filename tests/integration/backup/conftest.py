"""Fixtures of the backup tests: a populated database, a destination, one backup of it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dbkeeper.backup.catalog import BackupCatalog
from dbkeeper.backup.create import create_backup
from dbkeeper.backup.manifest import BackupManifest
from dbkeeper.conninfo import ConnInfo
from dbkeeper.local.postgres import LocalPostgres
from tests.integration.backup.sample_schema import create_sample_schema, databases_like


@pytest.fixture
def populated(database: ConnInfo) -> ConnInfo:
    """A database with the sample schema, rows, audit entries and a revision."""
    create_sample_schema(database)
    return database


@pytest.fixture
def destination(tmp_path: Path) -> Path:
    return tmp_path / "backups"


@pytest.fixture
def catalog(destination: Path) -> BackupCatalog:
    return BackupCatalog(destination)


@pytest.fixture
def backup(populated: ConnInfo, destination: Path) -> BackupManifest:
    return create_backup(populated, destination, jobs=2)


@pytest.fixture
def admin(pg_cluster: LocalPostgres) -> Iterator[ConnInfo]:
    """The superuser on the maintenance database; drops what restores left behind."""
    info = pg_cluster.admin_conninfo()
    yield info
    for name in databases_like(info, "restore\\_%") + databases_like(info, "copy\\_%"):
        pg_cluster.drop_database(name)

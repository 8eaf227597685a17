"""Fixtures of the backup tests: a populated database, a destination, one backup of it."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import LiteralString

import psycopg
import pytest
from psycopg import sql

from dbkeeper.backup.catalog import BackupCatalog
from dbkeeper.backup.create import create_backup
from dbkeeper.backup.manifest import BackupManifest
from dbkeeper.conninfo import ConnInfo
from dbkeeper.local.postgres import LocalPostgres
from tests.integration.backup.sample_schema import create_sample_schema, databases_like
from tests.secret_watch import watched

# A writer that dies (like a killed pod) once its dump is on disk, just before it would
# write the manifest: the kernel releases its lock, its folder stays as it was.
_DIE_BEFORE_THE_MANIFEST = """
import os, sys
from pathlib import Path
from dbkeeper.backup.catalog import BackupCatalog
from dbkeeper.backup.create import create_backup
from dbkeeper.cli.common import conninfo_from_dsn
BackupCatalog.write = lambda self, manifest: os._exit(9)
create_backup(conninfo_from_dsn(os.environ["BACKUP_DSN"]), Path(sys.argv[1]), jobs=1)
"""

RoleFactory = Callable[[LiteralString], ConnInfo]

DBKEEPER = str(Path(sys.executable).parent / "dbkeeper")


def backup_cli(
    args: list[str], dsn: ConnInfo | None, destination: Path, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``dbkeeper backup ARGS`` as a user runs it, with the destination and DSN in the
    environment (never on the command line)."""
    env = dict(os.environ, DBKEEPER_BACKUP_DIR=str(destination))
    env.pop("DBKEEPER_DSN", None)
    if dsn is not None:
        env["DBKEEPER_DSN"] = dsn.dsn()
    return subprocess.run(
        [DBKEEPER, "backup", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


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


@pytest.fixture
def login_role(admin: ConnInfo) -> Iterator[RoleFactory]:
    """Make login roles with given options (``"NOCREATEDB"``, ``"CREATEDB CONNECTION
    LIMIT 1"``…), as connection parameters on the maintenance database; the roles and
    any database they own are dropped afterwards."""
    made: list[str] = []

    def make(options: LiteralString) -> ConnInfo:
        name = f"drill_{uuid.uuid4().hex[:10]}"
        password = secrets.token_urlsafe(18)
        watched(password)
        with psycopg.connect(admin.dsn(), autocommit=True) as conn:
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {} " + options).format(
                    sql.Identifier(name), sql.Literal(password)
                )
            )
        made.append(name)
        return replace(admin, user=name, password=password)

    yield make
    with psycopg.connect(admin.dsn(), autocommit=True) as conn:
        for name in made:
            owned = conn.execute(
                "SELECT datname FROM pg_database WHERE datdba = to_regrole(%s)", (name,)
            ).fetchall()
            for (database,) in owned:
                conn.execute(
                    sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(str(database)))
                )
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))


def backup_whose_writer_died(info: ConnInfo, destination: Path) -> str:
    """Start a backup in a process that dies before writing the manifest; its id."""
    before = set(os.listdir(destination)) if destination.is_dir() else set()
    died = subprocess.run(
        [sys.executable, "-c", _DIE_BEFORE_THE_MANIFEST, str(destination)],
        env=dict(os.environ, BACKUP_DSN=info.dsn()),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert died.returncode == 9, died.stderr
    (left_behind,) = set(os.listdir(destination)) - before - {".locks"}
    return left_behind

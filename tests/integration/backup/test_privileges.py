"""Restores and drills check the privileges of their role before they create anything.

The role is an application's owner as it usually is: not a superuser, the owner of its
database and of every object in it. Without CREATEDB a drill or a restore stops with
one line naming the role, the privilege and the statement that grants it; nothing is
created and the backup's recorded verdict stays as it was.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import LiteralString

import psycopg
import pytest
from psycopg import sql

from dbkeeper.backup.catalog import BackupCatalog
from dbkeeper.backup.create import create_backup
from dbkeeper.backup.drill import verify_backup
from dbkeeper.backup.errors import DRILL_NOT_RUN_EXIT_CODE, DrillNotRun, MissingPrivilege
from dbkeeper.backup.manifest import BackupManifest
from dbkeeper.backup.restore import restore_backup
from dbkeeper.conninfo import ConnInfo
from tests.cli_output import error_lines
from tests.integration.backup.conftest import RoleFactory, backup_cli
from tests.integration.backup.sample_schema import create_sample_schema

FIRST_DRILL = datetime(2026, 11, 2, 4, 0, tzinfo=UTC)
LATER_DRILL = datetime(2026, 11, 9, 4, 0, tzinfo=UTC)


@dataclass(frozen=True)
class OwnedBackup:
    """A backup of a database that a non-superuser role owns, with all its objects."""

    owner: ConnInfo
    manifest: BackupManifest
    catalog: BackupCatalog


OwnedBackupFactory = Callable[[LiteralString], OwnedBackup]


def _databases(admin: ConnInfo) -> set[str]:
    with psycopg.connect(admin.dsn(), autocommit=True) as conn:
        return {str(row[0]) for row in conn.execute("SELECT datname FROM pg_database")}


def _alter_role(admin: ConnInfo, role: str, options: LiteralString) -> None:
    with psycopg.connect(admin.dsn(), autocommit=True) as conn:
        conn.execute(sql.SQL("ALTER ROLE {} " + options).format(sql.Identifier(role)))


@pytest.fixture
def owned_backup(admin: ConnInfo, login_role: RoleFactory, destination: Path) -> OwnedBackupFactory:
    """Make an owner role with ``options``, its database with the sample schema (created
    as the owner), and one backup of it taken as the owner."""

    def make(options: LiteralString) -> OwnedBackup:
        owner = login_role(options)
        database = f"owned_{owner.user}"
        with psycopg.connect(admin.dsn(), autocommit=True) as conn:
            conn.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(database), sql.Identifier(owner.user)
                )
            )
        owner = owner.with_database(database)
        create_sample_schema(owner)
        manifest = create_backup(owner, destination, jobs=1)
        return OwnedBackup(owner, manifest, BackupCatalog(destination))

    return make


def test_a_drill_by_an_owner_without_createdb_names_the_fix_and_creates_nothing(
    owned_backup: OwnedBackupFactory, admin: ConnInfo
) -> None:
    owned = owned_backup("CREATEDB")
    first = verify_backup(owned.catalog, owned.manifest.id, owned.owner, clock=lambda: FIRST_DRILL)
    assert first.passed, first.message
    _alter_role(admin, owned.owner.user, "NOCREATEDB")
    before = _databases(admin)

    with pytest.raises(DrillNotRun) as raised:
        verify_backup(owned.catalog, owned.manifest.id, owned.owner, clock=lambda: LATER_DRILL)

    message = str(raised.value)
    assert "\n" not in message
    assert f"role {owned.owner.user!r} lacks CREATEDB" in message
    assert f"run ALTER ROLE {owned.owner.user} CREATEDB" in message
    assert "nothing was created" in message
    assert _databases(admin) == before
    stored = owned.catalog.read(owned.manifest.id)
    assert (stored.verify_result, stored.verified_at) == ("passed", FIRST_DRILL)
    assert stored.drill_error is not None
    assert f"ALTER ROLE {owned.owner.user} CREATEDB" in stored.drill_error


def test_the_drill_command_exits_drill_not_run_with_the_one_line(
    owned_backup: OwnedBackupFactory, admin: ConnInfo, destination: Path
) -> None:
    owned = owned_backup("NOCREATEDB")
    before = _databases(admin)

    drill = backup_cli(["verify", owned.manifest.id], owned.owner, destination)

    assert drill.returncode == DRILL_NOT_RUN_EXIT_CODE, drill.stderr
    (line,) = error_lines(drill.stderr)
    assert f"role {owned.owner.user!r} lacks CREATEDB" in line
    assert f"ALTER ROLE {owned.owner.user} CREATEDB" in line
    assert "the backup's own verdict is unchanged (never verified" in line
    assert _databases(admin) == before
    assert owned.catalog.read(owned.manifest.id).verify_result is None


def test_a_drill_by_an_owner_with_createdb_runs_and_passes(
    owned_backup: OwnedBackupFactory, admin: ConnInfo
) -> None:
    owned = owned_backup("CREATEDB")

    result = verify_backup(owned.catalog, owned.manifest.id, owned.owner)

    assert result.passed, result.message
    assert owned.catalog.read(owned.manifest.id).verify_result == "passed"


def test_a_restore_by_an_owner_without_createdb_names_the_fix_and_creates_nothing(
    owned_backup: OwnedBackupFactory, admin: ConnInfo, destination: Path
) -> None:
    owned = owned_backup("NOCREATEDB")
    before = _databases(admin)

    restore = backup_cli(["restore", owned.manifest.id], owned.owner, destination)

    assert restore.returncode == 1, restore.stderr
    (line,) = error_lines(restore.stderr)
    assert f"role {owned.owner.user!r} lacks CREATEDB" in line
    assert f"run ALTER ROLE {owned.owner.user} CREATEDB" in line
    assert _databases(admin) == before


def test_a_restore_by_an_owner_with_createdb_restores(
    owned_backup: OwnedBackupFactory, admin: ConnInfo
) -> None:
    owned = owned_backup("CREATEDB")

    result = restore_backup(
        owned.catalog, owned.manifest.id, owned.owner, target_database=f"copy_{owned.owner.user}"
    )

    assert result.target_database in _databases(admin)


def test_a_restore_in_place_by_a_role_that_does_not_own_the_database_is_refused(
    owned_backup: OwnedBackupFactory, login_role: RoleFactory, admin: ConnInfo
) -> None:
    owned = owned_backup("CREATEDB")
    stranger = login_role("CREATEDB")
    before = _databases(admin)

    with pytest.raises(MissingPrivilege) as raised:
        restore_backup(owned.catalog, owned.manifest.id, stranger, in_place=True)

    assert raised.value.privileges == [
        f"membership in role {owned.owner.user!r} (the owner of database "
        f"{owned.manifest.database!r})"
    ]
    assert f"run GRANT {owned.owner.user} TO {stranger.user}" in str(raised.value)
    assert _databases(admin) == before


def test_a_restore_in_place_that_would_end_other_roles_sessions_needs_pg_signal_backend(
    owned_backup: OwnedBackupFactory, login_role: RoleFactory, admin: ConnInfo
) -> None:
    owned = owned_backup("CREATEDB")
    application = login_role("")
    before = _databases(admin)

    with psycopg.connect(application.with_database(owned.manifest.database).dsn()):
        with pytest.raises(
            MissingPrivilege,
            match=re.escape(f"run GRANT pg_signal_backend TO {owned.owner.user}"),
        ):
            restore_backup(owned.catalog, owned.manifest.id, owned.owner, in_place=True)
        assert _databases(admin) == before

        with psycopg.connect(admin.dsn(), autocommit=True) as conn:
            conn.execute(
                sql.SQL("GRANT pg_signal_backend TO {}").format(sql.Identifier(owned.owner.user))
            )
        result = restore_backup(owned.catalog, owned.manifest.id, owned.owner, in_place=True)

    assert result.in_place


def test_a_superuser_needs_no_further_privileges(
    owned_backup: OwnedBackupFactory, admin: ConnInfo
) -> None:
    owned = owned_backup("CREATEDB")

    result = verify_backup(owned.catalog, owned.manifest.id, admin)

    assert result.passed, result.message

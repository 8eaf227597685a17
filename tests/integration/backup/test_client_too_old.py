"""Client tools that do not fit the server: a pg_dump older than the server, or a
pg_restore older than the backup, is refused before it runs, in one line that names both
majors, and nothing is written or created; a pg_restore too new for the server is not
blamed on the backup.

Real tools: Debian's PostgreSQL 15 client against a PostgreSQL 18 server, and the 18
client against a PostgreSQL 16 server (builds ``make tools`` installs; see
``tests.postgres_builds``).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from dbkeeper.backup.catalog import BackupCatalog
from dbkeeper.backup.create import create_backup
from dbkeeper.backup.drill import verify_backup
from dbkeeper.backup.errors import (
    CLIENT_TOO_OLD_EXIT_CODE,
    DrillNotRun,
    DumpClientTooOld,
    RestoreClientTooOld,
)
from dbkeeper.backup.pg_tools import CLIENT_BINDIR_ENV
from dbkeeper.backup.restore import restore_backup
from dbkeeper.conninfo import ConnInfo
from dbkeeper.local.postgres import LocalPostgres
from tests import postgres_builds
from tests.cli_output import error_lines
from tests.integration.backup.conftest import backup_cli
from tests.integration.backup.sample_schema import create_sample_schema, table_checksums
from tests.secret_watch import watched
from tests.tool_binaries import require_binary, tool_missing

NEW_MAJOR = 18


@pytest.fixture(scope="module")
def old_client() -> tuple[int, Path]:
    """The system's PostgreSQL client tools, older than PostgreSQL 18: (major, folder)."""
    folders = [
        path
        for path in Path("/usr/lib/postgresql").glob("*/bin")
        if path.parent.name.isdigit() and int(path.parent.name) < NEW_MAJOR
    ]
    if not folders:
        tool_missing(
            "a PostgreSQL client older than 18",
            Path("/usr/lib/postgresql"),
            "install the postgresql package",
        )
    folder = max(folders, key=lambda path: int(path.parent.name))
    require_binary(folder / "pg_restore", "the system's pg_restore")
    return int(folder.parent.name), require_binary(folder / "pg_dump", "the system's pg_dump")


def _server(major: int) -> Iterator[LocalPostgres]:
    build = postgres_builds.select(major)
    require_binary(build.server_bindir / "initdb", build.description)
    cluster = LocalPostgres(
        Path(tempfile.mkdtemp(prefix=f"dbkeeper-test-pg{major}-")), bindir=build.server_bindir
    )
    try:
        cluster.init(preload=["pg_stat_statements"])
        cluster.start()
        watched(cluster.password)
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture(scope="module")
def new_server() -> Iterator[LocalPostgres]:
    yield from _server(NEW_MAJOR)


@pytest.fixture(scope="module")
def server_before_17() -> Iterator[LocalPostgres]:
    yield from _server(16)


@pytest.fixture
def clinic(new_server: LocalPostgres) -> Iterator[ConnInfo]:
    info = new_server.create_database("clinic")
    create_sample_schema(info)
    try:
        yield info
    finally:
        new_server.drop_database("clinic")


def _uses(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    monkeypatch.setenv(CLIENT_BINDIR_ENV, str(folder))


def _exists(server: LocalPostgres, database: str) -> bool:
    with psycopg.connect(server.admin_conninfo().dsn()) as conn:
        row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,))
        return row.fetchone() is not None


def test_an_older_pg_dump_is_refused_before_the_destination_is_touched(
    clinic: ConnInfo,
    old_client: tuple[int, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    major, pg_dump = old_client
    _uses(monkeypatch, pg_dump.parent)
    destination = tmp_path / "backups"

    with pytest.raises(DumpClientTooOld) as refused:
        create_backup(clinic, destination)

    assert str(refused.value) == (
        f"pg_dump {major} cannot dump PostgreSQL {NEW_MAJOR} ({clinic.describe()}): the "
        f"client tools are too old; use a dbkeeper image whose pg_dump is {NEW_MAJOR} or "
        "newer; no backup was taken"
    )
    assert not destination.exists()


def test_the_cli_refuses_an_older_pg_dump_with_its_own_exit_code(
    clinic: ConnInfo,
    old_client: tuple[int, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    major, pg_dump = old_client
    _uses(monkeypatch, pg_dump.parent)
    destination = tmp_path / "backups"

    result = backup_cli(["create"], clinic, destination)

    assert result.returncode == CLIENT_TOO_OLD_EXIT_CODE
    (line,) = error_lines(result.stderr)
    assert f"pg_dump {major} cannot dump PostgreSQL {NEW_MAJOR}" in line
    assert not destination.exists()


def test_an_older_pg_restore_is_refused_and_creates_nothing(
    new_server: LocalPostgres,
    clinic: ConnInfo,
    old_client: tuple[int, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    destination = tmp_path / "backups"
    _uses(monkeypatch, postgres_builds.select(NEW_MAJOR).client_bindir)
    backup = create_backup(clinic, destination)
    major, pg_dump = old_client
    _uses(monkeypatch, pg_dump.parent)
    admin = new_server.admin_conninfo()

    with pytest.raises(RestoreClientTooOld) as refused:
        restore_backup(BackupCatalog(destination), backup.id, admin, target_database="copy")
    cli = backup_cli(["restore", backup.id, "--target-database", "copy"], admin, destination)

    assert str(refused.value) == (
        f"pg_restore {major} cannot restore backup {backup.id!r}, taken from PostgreSQL "
        f"{NEW_MAJOR}: the client tools are too old; use a dbkeeper image whose pg_restore "
        f"is {NEW_MAJOR} or newer; nothing was restored"
    )
    assert cli.returncode == CLIENT_TOO_OLD_EXIT_CODE
    assert cli.stderr.strip().splitlines() == [f"dbkeeper: error: {refused.value}"]
    assert not _exists(new_server, "copy")


def test_a_drill_with_an_older_pg_restore_did_not_run_and_judges_nothing(
    new_server: LocalPostgres,
    clinic: ConnInfo,
    old_client: tuple[int, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    destination = tmp_path / "backups"
    _uses(monkeypatch, postgres_builds.select(NEW_MAJOR).client_bindir)
    backup = create_backup(clinic, destination)
    _uses(monkeypatch, old_client[1].parent)

    with pytest.raises(DrillNotRun) as not_run:
        verify_backup(BackupCatalog(destination), backup.id, new_server.admin_conninfo())

    assert f"pg_restore {old_client[0]} cannot restore backup" in str(not_run.value)
    assert BackupCatalog(destination).read(backup.id).verify_result is None


def test_the_newest_pg_restore_restores_and_drills_into_a_server_before_17(
    server_before_17: LocalPostgres, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # pg_restore 18 opens every connection with SET transaction_timeout, which a 16
    # server refuses; everything else of the dump it runs, and the copy is whole.
    _uses(monkeypatch, postgres_builds.select(NEW_MAJOR).client_bindir)
    destination = tmp_path / "backups"
    info = server_before_17.create_database("clinic16")
    create_sample_schema(info)
    backup = create_backup(info, destination)
    admin = server_before_17.admin_conninfo()

    restore_backup(BackupCatalog(destination), backup.id, admin, target_database="copy")
    verify_backup(BackupCatalog(destination), backup.id, admin)

    assert table_checksums(admin.with_database("copy")) == table_checksums(info)
    assert BackupCatalog(destination).read(backup.id).verify_result == "passed"

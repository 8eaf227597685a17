"""Restore drills: recorded in the manifest, failures reported and recorded too.

Only what the backup can be blamed for fails it; a drill stopped by its surroundings
(login, privileges, connections) is an error of the drill, and the verdict of the last
completed drill stays.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import LiteralString

import psycopg
import pytest

from dbkeeper.backup.catalog import BackupCatalog
from dbkeeper.backup.create import create_backup, sha256_of
from dbkeeper.backup.drill import verify_backup
from dbkeeper.backup.errors import DrillNotRun
from dbkeeper.backup.manifest import BackupManifest
from dbkeeper.conninfo import ConnInfo
from tests.integration.backup.conftest import RoleFactory
from tests.integration.backup.sample_schema import databases_like

DRILL_TIME = datetime(2026, 11, 2, 4, 0, tzinfo=UTC)
LATER_DRILL_TIME = datetime(2026, 11, 9, 4, 0, tzinfo=UTC)
WRONG_PASSWORD = "not-the-password-4f1c"


def _at_drill_time() -> datetime:
    return DRILL_TIME


def _later() -> datetime:
    return LATER_DRILL_TIME


def test_a_passing_drill_is_recorded_in_the_manifest(
    backup: BackupManifest, catalog: BackupCatalog, admin: ConnInfo
) -> None:
    result = verify_backup(catalog, backup.id, admin, clock=_at_drill_time)

    assert result.passed, result.message
    assert {c.name: c.passed for c in result.checks} == {
        "restore": True,
        "schema revision": True,
        "row counts": True,
        "audit chain": True,
    }
    stored = catalog.read(backup.id)
    assert stored.verified_at == DRILL_TIME
    assert stored.verify_result == "passed"
    assert stored.verify_duration_s == result.duration_s
    assert stored.is_verified


def test_the_scratch_database_is_dropped_after_the_drill(
    backup: BackupManifest, catalog: BackupCatalog, admin: ConnInfo
) -> None:
    verify_backup(catalog, backup.id, admin)

    assert databases_like(admin, "dbkeeper\\_drill\\_%") == []


def test_without_an_id_the_newest_backup_is_drilled(
    populated: ConnInfo, catalog: BackupCatalog, admin: ConnInfo
) -> None:
    older = create_backup(
        populated, catalog.destination, clock=lambda: datetime(2026, 1, 1, tzinfo=UTC)
    )
    newer = create_backup(
        populated, catalog.destination, clock=lambda: datetime(2026, 1, 2, tzinfo=UTC)
    )

    result = verify_backup(catalog, None, admin)

    assert result.backup_id == newer.id
    assert catalog.read(older.id).verified_at is None


def test_a_drill_of_a_corrupted_backup_fails_and_the_failure_is_recorded(
    backup: BackupManifest, catalog: BackupCatalog, admin: ConnInfo
) -> None:
    toc = catalog.backup_dir(backup.id) / "dump/toc.dat"
    toc.write_bytes(toc.read_bytes()[:-1])

    result = verify_backup(catalog, backup.id, admin, clock=_at_drill_time)

    assert not result.passed
    assert "dump/toc.dat" in result.message
    stored = catalog.read(backup.id)
    assert stored.verify_result == "failed"
    assert stored.verified_at == DRILL_TIME
    assert stored.verify_message is not None
    assert "dump/toc.dat" in stored.verify_message
    assert not stored.is_verified


def test_a_drill_finds_a_broken_audit_chain(
    populated: ConnInfo, catalog: BackupCatalog, admin: ConnInfo
) -> None:
    with psycopg.connect(populated.dsn(), autocommit=True) as conn:
        conn.execute("UPDATE audit.log SET detail = 'rewritten' WHERE id = 7")
    manifest = create_backup(populated, catalog.destination)

    result = verify_backup(catalog, manifest.id, admin)

    assert not result.passed
    audit = next(c for c in result.checks if c.name == "audit chain")
    assert audit.passed is False
    assert "row 7" in audit.detail
    assert catalog.read(manifest.id).verify_result == "failed"


def test_a_drill_finds_row_counts_that_differ_from_the_manifest(
    backup: BackupManifest, catalog: BackupCatalog, admin: ConnInfo
) -> None:
    wrong = dict(backup.row_counts, **{"clinic.visits": backup.row_counts["clinic.visits"] + 1})
    catalog.write(backup.model_copy(update={"row_counts": wrong}))

    result = verify_backup(catalog, backup.id, admin)

    assert not result.passed
    assert "clinic.visits" in result.message


def test_a_drill_that_cannot_log_in_is_an_error_and_keeps_the_last_verdict(
    backup: BackupManifest, catalog: BackupCatalog, admin: ConnInfo
) -> None:
    assert verify_backup(catalog, backup.id, admin, clock=_at_drill_time).passed
    passed = catalog.read(backup.id)

    with pytest.raises(DrillNotRun) as raised:
        verify_backup(catalog, backup.id, replace(admin, password=WRONG_PASSWORD), clock=_later)

    stored = catalog.read(backup.id)
    assert stored.verify_result == "passed"
    assert stored.verified_at == DRILL_TIME
    assert stored.verify_message == passed.verify_message
    assert stored.is_verified
    assert stored.drill_error_at == LATER_DRILL_TIME
    assert stored.drill_error is not None
    assert "password authentication failed" in stored.drill_error
    message = str(raised.value)
    assert "could not run" in message
    assert "verdict is unchanged (passed at 2026-11-02 04:00 UTC)" in message
    assert WRONG_PASSWORD not in message + stored.to_json()
    assert databases_like(admin, "dbkeeper\\_drill\\_%") == []


@pytest.mark.parametrize(
    ("role_options", "cause"),
    [
        pytest.param("NOCREATEDB", "lacks CREATEDB", id="no-createdb"),
        # The drill's own connection takes the only slot, so pg_restore cannot connect.
        pytest.param("CREATEDB CONNECTION LIMIT 1", "too many connections", id="pg_restore"),
    ],
)
def test_a_drill_the_server_stops_before_the_data_is_an_error_not_a_failure(
    backup: BackupManifest,
    catalog: BackupCatalog,
    login_role: RoleFactory,
    role_options: LiteralString,
    cause: str,
) -> None:
    with pytest.raises(DrillNotRun, match=cause):
        verify_backup(catalog, backup.id, login_role(role_options), clock=_later)

    stored = catalog.read(backup.id)
    assert stored.verify_result is None
    assert stored.verified_at is None
    assert stored.drill_error is not None
    assert cause in stored.drill_error
    assert stored.drill_error_at == LATER_DRILL_TIME


def test_a_completed_drill_clears_an_earlier_drill_error(
    backup: BackupManifest, catalog: BackupCatalog, admin: ConnInfo
) -> None:
    with pytest.raises(DrillNotRun):
        verify_backup(catalog, backup.id, replace(admin, password=WRONG_PASSWORD))

    assert verify_backup(catalog, backup.id, admin, clock=_later).passed

    stored = catalog.read(backup.id)
    assert (stored.verify_result, stored.verified_at) == ("passed", LATER_DRILL_TIME)
    assert (stored.drill_error, stored.drill_error_at) == (None, None)
    assert "drill_error" not in json.loads(stored.to_json())


def test_a_dump_that_pg_restore_rejects_fails_the_backup(
    backup: BackupManifest, catalog: BackupCatalog, admin: ConnInfo
) -> None:
    # Damaged before its checksums were taken: the files check out, the content does not.
    toc = catalog.backup_dir(backup.id) / "dump/toc.dat"
    toc.write_bytes(b"not a pg_dump archive")
    files = dict(backup.files, **{"dump/toc.dat": sha256_of(toc)})
    catalog.write(backup.model_copy(update={"files": files}))

    result = verify_backup(catalog, backup.id, admin, clock=_at_drill_time)

    assert not result.passed
    assert "pg_restore" in result.message
    stored = catalog.read(backup.id)
    assert (stored.verify_result, stored.verified_at) == ("failed", DRILL_TIME)
    assert stored.drill_error is None

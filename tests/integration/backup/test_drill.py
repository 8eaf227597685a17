"""Restore drills: recorded in the manifest, failures reported and recorded too."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg

from dbkeeper.backup.catalog import BackupCatalog
from dbkeeper.backup.create import create_backup
from dbkeeper.backup.drill import verify_backup
from dbkeeper.backup.manifest import BackupManifest
from dbkeeper.conninfo import ConnInfo
from tests.integration.backup.sample_schema import databases_like

DRILL_TIME = datetime(2026, 11, 2, 4, 0, tzinfo=UTC)


def _at_drill_time() -> datetime:
    return DRILL_TIME


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

"""A backup records the audit checkpoint its dump extends; the restore drill verifies
the restored log against it, and fails when the log is not the one it vouches for."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from dbkeeper.audit import chain
from dbkeeper.audit.checkpoint import generate_key, load_signing_key, make_checkpoint
from dbkeeper.backup.catalog import BackupCatalog
from dbkeeper.backup.create import create_backup
from dbkeeper.backup.drill import verify_backup
from dbkeeper.conninfo import ConnInfo
from dbkeeper.local.postgres import LocalPostgres
from tests.integration.healthcare.conftest import upgrade

PATIENTS = (
    "INSERT INTO organizations (identifier, name, kind) VALUES ('ORG-1', 'General', 'hospital');"
    "INSERT INTO patients (organization_id, mrn, given_name, family_name, birth_date, sex) "
    "SELECT 1, 'MRN' || n, 'Ann', 'Lee', date '1975-03-04', 'female' "
    "FROM generate_series(1, 20) n"
)

CHECKPOINT_TIME = datetime(2026, 12, 1, tzinfo=UTC)


def _healthcare(info: ConnInfo) -> ConnInfo:
    upgrade(info)
    with psycopg.connect(info.dsn(), autocommit=True) as conn:
        conn.execute(PATIENTS)
    return info


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "audit-key.pem"
    generate_key(path)
    return path


def _audit_check(catalog: BackupCatalog, backup_id: str, admin: ConnInfo) -> tuple[bool, str]:
    result = verify_backup(catalog, backup_id, admin)
    check = next(c for c in result.checks if c.name == "audit chain")
    assert check.passed is not None
    return check.passed, check.detail


def test_a_backup_with_a_key_records_a_fresh_checkpoint_the_drill_verifies(
    database: ConnInfo,
    pg_cluster: LocalPostgres,
    key_file: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    info = _healthcare(database)
    monkeypatch.setenv("DBKEEPER_AUDIT_KEY_FILE", str(key_file))
    catalog = BackupCatalog(tmp_path / "backups")
    manifest = create_backup(info, catalog.destination)

    assert manifest.audit_checkpoint is not None
    assert manifest.audit_checkpoint["rows"] == 20
    on_disk = json.loads((catalog.destination / manifest.id / "manifest.json").read_text())
    assert on_disk["audit_checkpoint"]["signature"] == manifest.audit_checkpoint["signature"]
    passed, detail = _audit_check(catalog, manifest.id, pg_cluster.admin_conninfo())
    assert passed, detail
    assert "extends the backup's checkpoint" in detail
    assert "verified" in detail

    monkeypatch.delenv("DBKEEPER_AUDIT_KEY_FILE")
    passed, detail = _audit_check(catalog, manifest.id, pg_cluster.admin_conninfo())
    assert passed, detail
    assert "signature not checked" in detail


def test_a_drill_fails_when_the_restored_log_does_not_extend_the_recorded_checkpoint(
    pg_cluster: LocalPostgres,
    key_file: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The checkpoint handed to the backup is from the database's earlier history; the
    database was recreated and re-filled since, so its log does not extend it."""
    name = "drill_recreated"
    info = _healthcare(pg_cluster.create_database(name))
    try:
        with psycopg.connect(info.dsn(), autocommit=True) as conn:
            earlier = make_checkpoint(conn, load_signing_key(key_file), CHECKPOINT_TIME)
        pg_cluster.drop_database(name)
        info = _healthcare(pg_cluster.create_database(name))
        with psycopg.connect(info.dsn(), autocommit=True) as conn:
            chain.seal(conn)
        monkeypatch.setenv("DBKEEPER_AUDIT_CHECKPOINT", earlier.to_line())
        catalog = BackupCatalog(tmp_path / "backups")
        manifest = create_backup(info, catalog.destination)
    finally:
        pg_cluster.drop_database(name)
    assert manifest.audit_checkpoint == earlier.to_dict()
    passed, detail = _audit_check(catalog, manifest.id, pg_cluster.admin_conninfo())
    assert not passed
    assert "no longer has the hash this checkpoint signed" in detail


def test_a_backup_without_key_or_checkpoint_says_so_in_the_drill(
    database: ConnInfo, pg_cluster: LocalPostgres, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DBKEEPER_AUDIT_KEY_FILE", raising=False)
    monkeypatch.delenv("DBKEEPER_AUDIT_CHECKPOINT", raising=False)
    info = _healthcare(database)
    with psycopg.connect(info.dsn(), autocommit=True) as conn:
        chain.seal(conn)
    catalog = BackupCatalog(tmp_path / "backups")
    manifest = create_backup(info, catalog.destination)
    assert manifest.audit_checkpoint is None
    passed, detail = _audit_check(catalog, manifest.id, pg_cluster.admin_conninfo())
    assert passed, detail
    assert "recorded no checkpoint" in detail

"""What a backup's manifest records, checked against the files and the database."""

from __future__ import annotations

import hashlib
import json
import threading

import psycopg

from dbkeeper.backup.catalog import BackupCatalog
from dbkeeper.backup.create import create_backup
from dbkeeper.backup.drill import verify_backup
from dbkeeper.backup.manifest import BackupManifest
from dbkeeper.conninfo import ConnInfo
from tests.integration.backup.sample_schema import REVISION


def test_manifest_lists_every_dump_file_with_its_sha256(
    backup: BackupManifest, catalog: BackupCatalog
) -> None:
    folder = catalog.backup_dir(backup.id)
    on_disk = {
        path.relative_to(folder).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in folder.rglob("*")
        if path.is_file() and path.name != "manifest.json"
    }
    assert "dump/toc.dat" in on_disk
    assert backup.files == on_disk
    assert backup.size_bytes == sum((folder / name).stat().st_size for name in on_disk)


def test_manifest_records_exact_row_counts_per_table(
    backup: BackupManifest, populated: ConnInfo
) -> None:
    with psycopg.connect(populated.dsn()) as conn:
        actual = {
            table: int(str(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]))  # type: ignore[index]
            for table in ("clinic.patients", "clinic.visits", "audit.log", "public.alembic_version")
        }
    assert backup.row_counts == actual
    assert backup.row_counts["clinic.visits"] == 600


def test_manifest_records_revision_server_version_and_database(
    backup: BackupManifest, populated: ConnInfo
) -> None:
    with psycopg.connect(populated.dsn()) as conn:
        (server_version,) = conn.execute("SHOW server_version").fetchone() or ("",)
    assert backup.schema_revision == REVISION
    assert backup.server_version == server_version
    assert backup.database == populated.dbname
    assert backup.format == "directory"
    assert backup.finished_at >= backup.created_at


def test_revision_is_none_without_an_alembic_version_table(
    database: ConnInfo, catalog: BackupCatalog
) -> None:
    with psycopg.connect(database.dsn(), autocommit=True) as conn:
        conn.execute("CREATE TABLE notes (id int)")

    manifest = create_backup(database, catalog.destination)

    assert manifest.schema_revision is None
    assert manifest.row_counts == {"public.notes": 0}


def test_the_manifest_on_disk_is_the_returned_one(
    backup: BackupManifest, catalog: BackupCatalog
) -> None:
    stored = json.loads((catalog.backup_dir(backup.id) / "manifest.json").read_text())

    assert stored["id"] == backup.id
    assert catalog.read(backup.id) == backup
    assert [m.id for m in catalog.list()] == [backup.id]


def test_row_counts_match_the_dump_while_the_application_writes(
    populated: ConnInfo, catalog: BackupCatalog, admin: ConnInfo
) -> None:
    stop = threading.Event()
    inserted = 0

    def keep_writing() -> None:
        nonlocal inserted
        with psycopg.connect(populated.dsn(), autocommit=True) as conn:
            while not stop.is_set():
                conn.execute(
                    "INSERT INTO clinic.patients (name, born) VALUES ('new', '2000-01-01')"
                )
                inserted += 1

    writer = threading.Thread(target=keep_writing)
    writer.start()
    try:
        manifest = create_backup(populated, catalog.destination)
    finally:
        stop.set()
        writer.join(timeout=10)

    drill = verify_backup(catalog, manifest.id, admin)
    assert inserted > 0
    assert drill.passed, drill.message

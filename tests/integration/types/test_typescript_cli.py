"""``dbkeeper types typescript`` against migrated healthcare databases: what it writes,
``--check``, determinism, the bookkeeping left out, and the errors it gives."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest

from dbkeeper.conninfo import ConnInfo
from dbkeeper.local.postgres import LocalPostgres
from dbkeeper.migrate import MigrationOptions, load_set, migrate
from tests.integration.types.conftest import CopyDatabase

_PATIENT = 300.0


def run_types(
    database: ConnInfo | None, *args: str, **env: str
) -> subprocess.CompletedProcess[str]:
    clean = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    clean.pop("DBKEEPER_DSN", None)
    if database is not None:
        clean["DBKEEPER_DSN"] = database.dsn()
    return subprocess.run(
        [sys.executable, "-m", "dbkeeper.cli", "types", "typescript", *args],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=_PATIENT,
        check=False,
    )


def _execute(database: ConnInfo, statement: str) -> None:
    with psycopg.connect(database.dsn(), autocommit=True) as conn:
        conn.execute(statement)


def test_writes_the_module_naming_the_set_and_revision(
    healthcare_template: ConnInfo, tmp_path: Path
) -> None:
    out = tmp_path / "src" / "db" / "schema.ts"

    done = run_types(healthcare_template, "--out", str(out))

    assert done.returncode == 0, done.stderr
    assert done.stdout == f"wrote {out}: 13 tables of set healthcare at revision 0007\n"
    text = out.read_text()
    assert text.startswith(
        "// The tables of migration set healthcare at revision 0007, for Drizzle ORM.\n"
    )
    assert 'export const patients = pgTable(\n  "patients",\n' in text
    assert 'export const auditLog = auditSchema.table(\n  "log",\n' in text
    assert 'sex: text("sex").$type<"female" | "male" | "other" | "unknown">().notNull(),' in text


def test_leaves_the_migrators_bookkeeping_out(healthcare_template: ConnInfo) -> None:
    done = run_types(healthcare_template)

    assert done.returncode == 0, done.stderr
    assert "alembic_version" not in done.stdout
    assert "migration_history" not in done.stdout
    assert 'pgSchema("dbkeeper")' not in done.stdout


def test_the_same_catalog_gives_the_same_bytes(
    healthcare_template: ConnInfo, pg_cluster: LocalPostgres
) -> None:
    first = run_types(healthcare_template)
    second = run_types(healthcare_template)
    # Another database migrated on its own: other object ids, other creation order.
    name = f"types_fresh_{uuid.uuid4().hex[:12]}"
    fresh = pg_cluster.create_database(name)
    try:
        migrate(fresh, load_set("healthcare"), MigrationOptions(target="head", lint_mode="off"))
        third = run_types(fresh)
    finally:
        pg_cluster.drop_database(name)

    assert first.returncode == second.returncode == third.returncode == 0
    assert first.stdout == second.stdout == third.stdout


def test_check_passes_on_a_fresh_file_and_names_the_file_once_a_column_is_added(
    copy_healthcare: CopyDatabase, tmp_path: Path
) -> None:
    database = copy_healthcare()
    module = tmp_path / "schema.ts"
    assert run_types(database, "--out", str(module)).returncode == 0

    fresh = run_types(database, "--check", str(module))
    _execute(database, "ALTER TABLE patients ADD COLUMN preferred_language text")
    stale = run_types(database, "--check", str(module))

    assert fresh.returncode == 0, fresh.stderr
    assert fresh.stdout == f"{module} is up to date: 13 tables of set healthcare at revision 0007\n"
    assert stale.returncode == 1
    assert stale.stdout == ""
    assert stale.stderr.count("\n") == 1
    assert stale.stderr.startswith(f"dbkeeper: error: {module} is stale: ")
    assert database.password is not None
    assert database.password not in stale.stderr
    regenerated = run_types(database, "--out", str(module))
    assert regenerated.returncode == 0
    assert 'preferredLanguage: text("preferred_language"),' in module.read_text()
    assert run_types(database, "--check", str(module)).returncode == 0


def test_check_of_a_missing_file_fails_naming_it(
    healthcare_template: ConnInfo, tmp_path: Path
) -> None:
    missing = tmp_path / "schema.ts"

    done = run_types(healthcare_template, "--check", str(missing))

    assert done.returncode == 1
    assert done.stderr == (
        f"dbkeeper: error: {missing} is missing: write it with --out {missing}\n"
    )


@pytest.mark.parametrize("sql_type", ["tsvector", "tsvector[]", "money", "int4range"])
def test_a_column_of_a_type_without_a_declaration_is_one_line_naming_it(
    copy_healthcare: CopyDatabase, tmp_path: Path, sql_type: str
) -> None:
    database = copy_healthcare()
    _execute(database, f"ALTER TABLE patients ADD COLUMN oddity {sql_type}")
    out = tmp_path / "schema.ts"

    done = run_types(database, "--out", str(out))

    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1
    assert f"column public.patients.oddity has type {sql_type}, " in done.stderr
    assert not out.exists()


def test_reads_libpq_variables_when_no_dsn_is_given(healthcare_template: ConnInfo) -> None:
    assert healthcare_template.password is not None
    done = run_types(
        None,
        PGHOST=healthcare_template.host,
        PGPORT=str(healthcare_template.port),
        PGDATABASE=healthcare_template.dbname,
        PGUSER=healthcare_template.user,
        PGPASSWORD=healthcare_template.password,
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("// The tables of migration set healthcare at revision 0007")


def test_a_database_dbkeeper_never_migrated_is_refused(database: ConnInfo) -> None:
    done = run_types(database)

    assert done.returncode == 1
    assert done.stderr == (
        f"dbkeeper: error: database {database.dbname} on {database.host}:{database.port}: "
        f"database {database.dbname} has never been migrated by dbkeeper "
        "(no dbkeeper.migration_history)\n"
    )


def test_schema_limits_the_module_to_the_schemas_named(healthcare_template: ConnInfo) -> None:
    done = run_types(healthcare_template, "--schema", "audit")

    assert done.returncode == 0, done.stderr
    assert "pgTable(" not in done.stdout
    assert done.stdout.count("auditSchema.table(") == 3

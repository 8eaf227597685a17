"""Each declared role can do exactly what the healthcare declaration allows, nothing more.

Every row of the table is tried for real as that role against a migrated healthcare
database after ``apply_roles``, inside a transaction that is rolled back.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest

from dbkeeper.conninfo import ConnInfo
from dbkeeper.local.postgres import LocalPostgres
from dbkeeper.security import PrivilegeDeclaration, RoleKind, apply_roles
from tests.integration.security.conftest import (
    RoleSet,
    connect,
    copy_database,
    drop_roles,
    login,
    new_role_set,
)

NEW_ORGANIZATION = (
    "INSERT INTO organizations (identifier, name, kind) VALUES ('org-x', 'Clinic X', 'clinic')"
)
NEW_PATIENT = (
    NEW_ORGANIZATION + "; INSERT INTO patients (organization_id, mrn, given_name, family_name, "
    "birth_date, sex) SELECT id, 'MRN-0001', 'Ada', 'Lovelace', DATE '1990-01-01', 'female' "
    "FROM organizations WHERE identifier = 'org-x'"
)

# (role class, statement, allowed?)
TABLE: list[tuple[RoleKind, str, bool]] = [
    ("owner", "CREATE TABLE public.scratch (id int)", True),
    ("owner", "ALTER TABLE patients ADD COLUMN nickname text", True),
    ("owner", "CREATE SCHEMA reporting", True),
    ("app", "SELECT count(*) FROM patients", True),
    ("app", "SELECT count(*) FROM organizations", True),
    ("app", NEW_ORGANIZATION, True),
    ("app", NEW_PATIENT, True),
    ("app", "UPDATE patients SET phone = '555' WHERE id = -1", True),
    ("app", "DELETE FROM encounters WHERE id = -1", True),
    ("app", "SELECT setval('public.organizations_id_seq', 1)", False),  # USAGE, not UPDATE
    ("app", "SELECT count(*) FROM audit.log", False),
    ("app", "UPDATE audit.log SET actor = 'someone' WHERE id = -1", False),
    ("app", "DELETE FROM audit.log WHERE id = -1", False),
    ("app", "SELECT count(*) FROM audit.seal_batch", False),
    ("app", "SELECT * FROM audit.seal()", False),
    ("app", "SELECT * FROM audit.verify_chain()", False),
    # The migrator's bookkeeping is readable (dbkeeper wait), never writable.
    ("app", "SELECT count(*) FROM alembic_version", True),
    ("app", "SELECT count(*) FROM dbkeeper.migration_history", True),
    ("app", "UPDATE alembic_version SET version_num = 'x'", False),
    ("app", "DELETE FROM dbkeeper.migration_history", False),
    ("readonly", "SELECT count(*) FROM alembic_version", True),
    ("readonly", "SELECT count(*) FROM dbkeeper.migration_history", True),
    ("readonly", "INSERT INTO alembic_version VALUES ('x')", False),
    ("auditor", "SELECT count(*) FROM public.alembic_version", False),
    ("auditor", "SELECT count(*) FROM dbkeeper.migration_history", False),
    ("app", "CREATE TABLE public.scratch (id int)", False),
    ("app", "ALTER TABLE patients ADD COLUMN nickname text", False),
    ("app", "DROP TABLE consents", False),
    ("app", "TRUNCATE organizations", False),
    ("app", "CREATE SCHEMA reporting", False),
    ("readonly", "SELECT count(*) FROM patients", True),
    ("readonly", "SELECT count(*) FROM practitioners", True),
    ("readonly", NEW_ORGANIZATION, False),
    ("readonly", "UPDATE patients SET phone = '555' WHERE id = -1", False),
    ("readonly", "DELETE FROM patients WHERE id = -1", False),
    ("readonly", "SELECT count(*) FROM audit.log", False),
    ("readonly", "CREATE TABLE public.scratch (id int)", False),
    ("auditor", "SELECT count(*) FROM audit.log", True),
    ("auditor", "SELECT max(batch) FROM audit.seal_batch", True),
    ("auditor", "SELECT count(*) FROM audit.sealed_xact", True),
    ("auditor", "SELECT * FROM audit.verify_chain()", True),
    ("auditor", "SELECT count(*) FROM audit.verify_entries()", True),
    ("auditor", "SELECT * FROM audit.seal()", False),
    ("auditor", "SELECT count(*) FROM public.patients", False),
    ("auditor", "SELECT count(*) FROM public.organizations", False),
    ("auditor", "UPDATE audit.log SET actor = 'someone' WHERE id = -1", False),
    ("auditor", "DELETE FROM audit.log WHERE id = -1", False),
    ("auditor", "INSERT INTO audit.sealed_xact VALUES (1, 1)", False),
    ("auditor", "CREATE TABLE audit.scratch (id int)", False),
]


@pytest.fixture(scope="module")
def secured(
    pg_cluster: LocalPostgres, healthcare_template: str, privileges: PrivilegeDeclaration
) -> Iterator[tuple[ConnInfo, RoleSet]]:
    """One migrated database with the four roles applied, shared by the whole table."""
    role_set = new_role_set()
    name = f"sec_{uuid.uuid4().hex[:12]}"
    try:
        info = copy_database(pg_cluster, healthcare_template, name)
        apply_roles(pg_cluster.admin_conninfo(), name, role_set.declarations, privileges)
        yield info, role_set
    finally:
        pg_cluster.drop_database(name)
        drop_roles(pg_cluster, role_set)


def _try(info: ConnInfo, statement: str) -> psycopg.Error | None:
    with connect(info) as conn:
        try:
            for part in statement.split("; "):
                conn.execute(part)
        except psycopg.Error as exc:
            return exc
        finally:
            conn.rollback()
    return None


@pytest.mark.parametrize(
    ("kind", "statement", "allowed"),
    TABLE,
    ids=[f"{kind}-{'allowed' if ok else 'refused'}-{stmt[:40]}" for kind, stmt, ok in TABLE],
)
def test_role_may_do_exactly_what_is_declared(
    pg_cluster: LocalPostgres,
    secured: tuple[ConnInfo, RoleSet],
    kind: RoleKind,
    statement: str,
    allowed: bool,
) -> None:
    info, role_set = secured
    error = _try(login(pg_cluster, info.dbname, role_set.by_kind(kind)), statement)
    if allowed:
        assert error is None, f"{kind} was refused: {error}"
    else:
        assert isinstance(error, psycopg.errors.InsufficientPrivilege), (
            f"{kind} was not refused for lack of privilege: {error!r}"
        )


def test_app_writes_are_recorded_with_the_acting_user_or_the_login_role(
    pg_cluster: LocalPostgres, secured: tuple[ConnInfo, RoleSet]
) -> None:
    info, role_set = secured
    app = role_set.app
    with connect(login(pg_cluster, info.dbname, app)) as conn:
        conn.execute(
            "INSERT INTO organizations (identifier, name, kind) VALUES ('org-a', 'A', 'clinic')"
        )
        org = conn.execute("SELECT id FROM organizations WHERE identifier = 'org-a'").fetchone()
        assert org is not None
        insert = (
            "INSERT INTO patients (organization_id, mrn, given_name, family_name, birth_date, "
            "sex) VALUES (%s, %s, 'A', 'B', DATE '1980-01-01', 'other')"
        )
        conn.execute(insert, (org[0], "MRN-A001"))
        conn.execute("SET dbkeeper.actor = 'dr.grey'")
        conn.execute(insert, (org[0], "MRN-A002"))
        conn.commit()
    with connect(info) as admin:
        rows = admin.execute(
            "SELECT new_values->>'mrn', actor FROM audit.log WHERE table_name = 'patients' "
            "AND new_values->>'mrn' IN ('MRN-A001', 'MRN-A002') ORDER BY id"
        ).fetchall()
    assert rows == [("MRN-A001", app.username), ("MRN-A002", "dr.grey")]

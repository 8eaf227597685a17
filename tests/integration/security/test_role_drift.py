"""Drift between the database and the declaration is reported by check_roles and repaired
by apply_roles, which is idempotent and changes nothing when it fails."""

from __future__ import annotations

import psycopg
import pytest

from dbkeeper.local.postgres import LocalPostgres
from dbkeeper.migrate import MigrationOptions, MigrationSet, migrate
from dbkeeper.security import (
    PrivilegeDeclaration,
    RoleDeclaration,
    SecurityError,
    apply_roles,
    check_roles,
)
from tests.integration.security.conftest import MakeDatabase, RoleSet, connect, login


def _as_admin(cluster: LocalPostgres, database: str, statement: str) -> None:
    with psycopg.connect(cluster.admin_conninfo(database).dsn(), autocommit=True) as conn:
        conn.execute(statement)


@pytest.fixture
def applied(
    pg_cluster: LocalPostgres,
    make_healthcare_db: MakeDatabase,
    roles: RoleSet,
    privileges: PrivilegeDeclaration,
) -> str:
    database = make_healthcare_db().dbname
    apply_roles(pg_cluster.admin_conninfo(), database, roles.declarations, privileges)
    return database


def test_new_roles_are_reported_missing_then_created_in_sync(
    pg_cluster: LocalPostgres,
    make_healthcare_db: MakeDatabase,
    roles: RoleSet,
    privileges: PrivilegeDeclaration,
) -> None:
    admin = pg_cluster.admin_conninfo()
    database = make_healthcare_db().dbname
    before = check_roles(admin, database, roles.declarations, privileges)
    assert {d.role for d in before if d.kind == "missing_role"} == {
        r.username for r in roles.declarations
    }
    report = apply_roles(admin, database, roles.declarations, privileges)
    assert set(report.created) == {r.username for r in roles.declarations}
    assert check_roles(admin, database, roles.declarations, privileges) == []


def test_reports_and_drift_never_hold_a_password(
    pg_cluster: LocalPostgres,
    make_healthcare_db: MakeDatabase,
    roles: RoleSet,
    privileges: PrivilegeDeclaration,
) -> None:
    admin = pg_cluster.admin_conninfo()
    database = make_healthcare_db().dbname
    drifts = check_roles(admin, database, roles.declarations, privileges)
    report = apply_roles(admin, database, roles.declarations, privileges)
    shown = repr(report) + repr(drifts) + " ".join(map(str, drifts)) + " ".join(report.changes)
    assert not [password for password in roles.passwords if password in shown]
    assert "SCRAM-SHA-256$" not in shown


def test_apply_is_idempotent(
    pg_cluster: LocalPostgres, applied: str, roles: RoleSet, privileges: PrivilegeDeclaration
) -> None:
    report = apply_roles(pg_cluster.admin_conninfo(), applied, roles.declarations, privileges)
    assert not report.changed, report


def test_extra_grant_made_by_hand_is_reported_and_revoked(
    pg_cluster: LocalPostgres, applied: str, roles: RoleSet, privileges: PrivilegeDeclaration
) -> None:
    admin = pg_cluster.admin_conninfo()
    app = roles.app.username
    _as_admin(pg_cluster, applied, f'GRANT USAGE ON SCHEMA audit TO "{app}"')
    _as_admin(pg_cluster, applied, f'GRANT UPDATE, DELETE ON audit.log TO "{app}"')
    drifts = check_roles(admin, applied, roles.declarations, privileges)
    messages = [str(d) for d in drifts]
    assert {d.kind for d in drifts} == {"extra_grant"}, messages
    assert any("UPDATE on table audit.log" in m and app in m for m in messages), messages
    assert any("DELETE on table audit.log" in m for m in messages), messages
    assert any("USAGE on schema audit" in m for m in messages), messages

    report = apply_roles(admin, applied, roles.declarations, privileges)
    assert any(c.startswith("revoked:") and "audit.log" in c for c in report.changes)
    assert check_roles(admin, applied, roles.declarations, privileges) == []
    with (
        connect(login(pg_cluster, applied, roles.app)) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        conn.execute("DELETE FROM audit.log WHERE id = -1")


def test_grant_revoked_by_hand_is_reported_and_granted_again(
    pg_cluster: LocalPostgres, applied: str, roles: RoleSet, privileges: PrivilegeDeclaration
) -> None:
    admin = pg_cluster.admin_conninfo()
    readonly = roles.readonly.username
    _as_admin(pg_cluster, applied, f'REVOKE SELECT ON patients FROM "{readonly}"')
    drifts = check_roles(admin, applied, roles.declarations, privileges)
    assert [(d.kind, d.role) for d in drifts] == [("missing_grant", readonly)]
    assert "lacks SELECT on table public.patients" in str(drifts[0])

    apply_roles(admin, applied, roles.declarations, privileges)
    assert check_roles(admin, applied, roles.declarations, privileges) == []
    with connect(login(pg_cluster, applied, roles.readonly)) as conn:
        conn.execute("SELECT count(*) FROM patients")


def test_the_migrator_bookkeeping_is_readable_and_nothing_more(
    pg_cluster: LocalPostgres, applied: str, roles: RoleSet, privileges: PrivilegeDeclaration
) -> None:
    """What ``dbkeeper wait`` needs is granted like any declared privilege: a write
    granted by hand is an extra grant, a revoked read a missing one."""
    admin = pg_cluster.admin_conninfo()
    app, readonly = roles.app.username, roles.readonly.username
    _as_admin(pg_cluster, applied, f'GRANT INSERT ON dbkeeper.migration_history TO "{app}"')
    _as_admin(pg_cluster, applied, f'REVOKE SELECT ON alembic_version FROM "{readonly}"')
    drifts = sorted(str(d) for d in check_roles(admin, applied, roles.declarations, privileges))

    assert drifts == [
        f"extra grant: app role {app} has INSERT on table dbkeeper.migration_history, "
        "which the declaration does not grant",
        f"missing grant: readonly role {readonly} lacks SELECT on table public.alembic_version",
    ]
    apply_roles(admin, applied, roles.declarations, privileges)
    assert check_roles(admin, applied, roles.declarations, privileges) == []


def test_grant_to_public_on_a_patient_table_is_an_extra_grant(
    pg_cluster: LocalPostgres, applied: str, roles: RoleSet, privileges: PrivilegeDeclaration
) -> None:
    admin = pg_cluster.admin_conninfo()
    _as_admin(pg_cluster, applied, "GRANT SELECT ON patients TO PUBLIC")
    drifts = check_roles(admin, applied, roles.declarations, privileges)
    assert [(d.kind, d.role) for d in drifts] == [("extra_grant", "PUBLIC")]
    apply_roles(admin, applied, roles.declarations, privileges)
    assert check_roles(admin, applied, roles.declarations, privileges) == []


def test_column_grant_is_an_extra_grant(
    pg_cluster: LocalPostgres, applied: str, roles: RoleSet, privileges: PrivilegeDeclaration
) -> None:
    admin = pg_cluster.admin_conninfo()
    auditor = roles.auditor.username
    _as_admin(pg_cluster, applied, f'GRANT SELECT (mrn) ON patients TO "{auditor}"')
    drifts = check_roles(admin, applied, roles.declarations, privileges)
    assert [str(d) for d in drifts] == [
        f"extra grant: auditor role {auditor} has SELECT on column mrn of table "
        "public.patients, which the declaration does not grant"
    ]
    apply_roles(admin, applied, roles.declarations, privileges)
    assert check_roles(admin, applied, roles.declarations, privileges) == []


def test_role_attributes_and_memberships_are_repaired(
    pg_cluster: LocalPostgres, applied: str, roles: RoleSet, privileges: PrivilegeDeclaration
) -> None:
    admin = pg_cluster.admin_conninfo()
    app = roles.app.username
    _as_admin(pg_cluster, applied, f'ALTER ROLE "{app}" CREATEDB')
    _as_admin(pg_cluster, applied, f'GRANT pg_read_all_data TO "{app}"')
    drifts = check_roles(admin, applied, roles.declarations, privileges)
    assert sorted(d.kind for d in drifts) == ["attributes", "membership"]
    assert any("has CREATEDB; declared: NOCREATEDB" in str(d) for d in drifts)
    assert any("member of role pg_read_all_data" in str(d) for d in drifts)

    apply_roles(admin, applied, roles.declarations, privileges)
    assert check_roles(admin, applied, roles.declarations, privileges) == []


def test_changed_password_is_reported_and_set(
    pg_cluster: LocalPostgres, applied: str, roles: RoleSet, privileges: PrivilegeDeclaration
) -> None:
    admin = pg_cluster.admin_conninfo()
    new_app = RoleDeclaration("app", roles.app.username, "a-new-password-123")
    declared = [roles.owner, new_app, roles.readonly, roles.auditor]
    drifts = check_roles(admin, applied, declared, privileges)
    assert [(d.kind, d.role) for d in drifts] == [("password", new_app.username)]

    report = apply_roles(admin, applied, declared, privileges)
    assert report.passwords_set == (new_app.username,)
    with connect(login(pg_cluster, applied, new_app)):
        pass
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        connect(login(pg_cluster, applied, roles.app))


def test_tables_added_by_a_later_revision_are_reported_until_applied(
    pg_cluster: LocalPostgres,
    make_healthcare_db: MakeDatabase,
    healthcare_set: MigrationSet,
    roles: RoleSet,
    privileges: PrivilegeDeclaration,
) -> None:
    admin = pg_cluster.admin_conninfo()
    info = make_healthcare_db("0002")
    apply_roles(admin, info.dbname, roles.declarations, privileges)
    assert check_roles(admin, info.dbname, roles.declarations, privileges) == []
    migrate(info, healthcare_set, MigrationOptions(target="0003", lint_mode="off"))
    drifts = check_roles(admin, info.dbname, roles.declarations, privileges)
    assert "ownership" in {d.kind for d in drifts}
    assert any("lacks SELECT on table public.patients" in str(d) for d in drifts)
    apply_roles(admin, info.dbname, roles.declarations, privileges)
    assert check_roles(admin, info.dbname, roles.declarations, privileges) == []


def test_a_failed_apply_changes_nothing(
    pg_cluster: LocalPostgres, applied: str, roles: RoleSet, privileges: PrivilegeDeclaration
) -> None:
    # dbkeeper connecting as the owner role (with CREATEROLE, no superuser): it can reset
    # the app role's attributes but cannot take over a table a superuser made by hand.
    owner, app = roles.owner.username, roles.app.username
    _as_admin(pg_cluster, applied, f'ALTER ROLE "{owner}" CREATEROLE')
    _as_admin(pg_cluster, applied, f'ALTER ROLE "{app}" CREATEDB')
    _as_admin(pg_cluster, applied, "CREATE TABLE public.made_by_hand (id int)")
    as_owner = login(pg_cluster, "postgres", roles.owner)
    with pytest.raises(SecurityError) as caught:
        apply_roles(as_owner, applied, roles.declarations, privileges)
    assert caught.value.reason == "PermissionDenied"
    assert "nothing was changed" in str(caught.value)
    assert not any(password in str(caught.value) for password in roles.passwords)
    drifts = check_roles(pg_cluster.admin_conninfo(), applied, roles.declarations, privileges)
    assert sorted(d.kind for d in drifts) == ["attributes", "ownership"]


def test_declaring_two_roles_of_one_class_is_refused(
    pg_cluster: LocalPostgres, applied: str, roles: RoleSet, privileges: PrivilegeDeclaration
) -> None:
    twice = [*roles.declarations, RoleDeclaration("app", "hc_other_app", "pw-other-secret")]
    with pytest.raises(SecurityError, match="role class app is declared twice") as caught:
        apply_roles(pg_cluster.admin_conninfo(), applied, twice, privileges)
    assert "pw-other-secret" not in str(caught.value)

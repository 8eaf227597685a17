"""Roles, privileges, password rotation and read auditing managed from ``spec.roles``.

On the test control plane and real PostgreSQL (pgaudit preloaded). The credentials Secret
names a superuser that owns the test database: dbkeeper needs CREATEROLE to manage
roles, and a superuser to compare stored passwords and to configure pgaudit.
"""

from __future__ import annotations

import base64
import secrets
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from dbkeeper.conninfo import ConnInfo
from dbkeeper.local.postgres import LocalPostgres
from dbkeeper.pooler.scram import verifier_matches
from tests.k8s.harness import Cluster, OperatorRun
from tests.k8s.scenarios.conftest import (
    OwnedDatabase,
    schema_manifest,
    secret_manifest,
    status_of,
    wait_for_phase,
)
from tests.k8s.scenarios.test_metrics_and_secrets import _assert_no_secret_anywhere
from tests.secret_watch import watched

NAMESPACE = "roles"
NAME = "clinic"
POOLER_SECRET = f"{NAME}-pooler"
ROLE_KINDS = ("app", "readonly", "auditor")

NEW_PATIENT = (
    "INSERT INTO organizations (identifier, name, kind) VALUES ('org-r', 'Clinic R', 'clinic');"
    " INSERT INTO patients (organization_id, mrn, given_name, family_name, birth_date, sex)"
    " SELECT id, 'MRN-R001', 'Ada', 'Lovelace', DATE '1990-01-01', 'female'"
    " FROM organizations WHERE identifier = 'org-r'"
)


@dataclass
class SecuredDatabase:
    """A database owned by a superuser role, and the app/readonly/auditor logins."""

    owner: OwnedDatabase
    usernames: dict[str, str]
    passwords: dict[str, str]

    def login(self, kind: str, password: str | None = None) -> ConnInfo:
        info = self.owner.conninfo
        return ConnInfo(
            info.host,
            info.port,
            info.dbname,
            self.usernames[kind],
            password if password is not None else self.passwords[kind],
        )

    @property
    def all_passwords(self) -> list[str]:
        return [self.owner.password, *self.passwords.values()]


def _secured_database(cluster: LocalPostgres, attributes: str) -> Iterator[SecuredDatabase]:
    suffix = uuid.uuid4().hex[:10]
    owner, name, password = f"sowner_{suffix}", f"sdb_{suffix}", watched(secrets.token_urlsafe(18))
    admin_dsn = cluster.admin_conninfo().dsn()
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN {} PASSWORD {}").format(
                sql.Identifier(owner), sql.SQL(attributes), sql.Literal(password)
            )
        )
        conn.execute(
            sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(name), sql.Identifier(owner)
            )
        )
    admin = cluster.admin_conninfo(name)
    database = SecuredDatabase(
        OwnedDatabase(ConnInfo(admin.host, admin.port, name, owner, password), admin),
        usernames={kind: f"{kind}_{suffix}" for kind in ROLE_KINDS},
        passwords={kind: watched(f"pw-{kind}-{secrets.token_hex(12)}") for kind in ROLE_KINDS},
    )
    yield database
    cluster.drop_database(name)
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        for role in [*database.usernames.values(), owner]:
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


@pytest.fixture
def secured(pg_cluster: LocalPostgres) -> Iterator[SecuredDatabase]:
    """Owned by a superuser: every check and pgaudit are available to dbkeeper."""
    yield from _secured_database(pg_cluster, "SUPERUSER")


@pytest.fixture
def least_privileged(pg_cluster: LocalPostgres) -> Iterator[SecuredDatabase]:
    """Owned by a role with CREATEROLE only, as docs/security.md recommends at least."""
    yield from _secured_database(pg_cluster, "CREATEROLE")


@pytest.fixture
def operator(start_dbkeeper: Any) -> Iterator[OperatorRun]:
    with start_dbkeeper() as run:
        yield run


def _create(cluster: Cluster, database: SecuredDatabase, **spec: Any) -> None:
    cluster.ensure_namespace(NAMESPACE)
    owner = database.owner
    cluster.create(secret_manifest(NAMESPACE, "clinic-owner", owner.username, owner.password))
    for kind in ROLE_KINDS:
        cluster.create(
            secret_manifest(
                NAMESPACE, f"clinic-{kind}", database.usernames[kind], database.passwords[kind]
            )
        )
    manifest = schema_manifest(NAMESPACE, NAME, owner, "clinic-owner")
    manifest["spec"]["roles"] = {kind: {"secret": f"clinic-{kind}"} for kind in ROLE_KINDS}
    manifest["spec"].update(spec)
    cluster.create(manifest)


def _condition(cluster: Cluster, type_: str) -> dict[str, Any] | None:
    conditions = status_of(cluster, NAMESPACE, NAME).get("conditions") or []
    return next((c for c in conditions if c["type"] == type_), None)


def _wait_condition(
    cluster: Cluster, type_: str, status: str, reason: str, timeout: float = 60
) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        found = _condition(cluster, type_)
        matches = found is not None and (found["status"], found["reason"]) == (status, reason)
        return found if matches else None

    return cluster.wait_for(
        check, timeout, f"{type_} {status}/{reason} (now: {_condition(cluster, type_)})"
    )


def _wait_event(cluster: Cluster, reason: str, timeout: float = 60) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        found = [e for e in cluster.events(NAMESPACE, NAME) if e["reason"] == reason]
        return found[-1] if found else None

    return cluster.wait_for(check, timeout, f"an Event {reason}")


def _ready_with_roles(cluster: Cluster, database: SecuredDatabase, **spec: Any) -> None:
    _create(cluster, database, **spec)
    wait_for_phase(cluster, NAMESPACE, NAME, "Ready", timeout=60)
    _wait_condition(cluster, "RolesInSync", "True", "RolesInSync")


def _refused(info: ConnInfo, statement: str) -> bool:
    with psycopg.connect(info.dsn()) as conn:
        try:
            conn.execute(statement)
        except psycopg.errors.InsufficientPrivilege:
            return True
        conn.rollback()
    return False


def _userlist_verifier(cluster: Cluster, username: str) -> str | None:
    secret = cluster.get("v1", "Secret", NAMESPACE, POOLER_SECRET)
    if secret is None:
        return None
    userlist = base64.b64decode(secret["data"]["userlist.txt"]).decode()
    for line in userlist.splitlines():
        name, _, verifier = line.partition('" "')
        if name.strip('"') == username:
            return verifier.rstrip('"')
    return None


def _set_secret_password(cluster: Cluster, name: str, password: str) -> None:
    encoded = base64.b64encode(password.encode()).decode()
    cluster.patch("v1", "Secret", NAMESPACE, name, {"data": {"password": encoded}})


def test_declared_roles_get_exactly_their_privileges(
    k8s_cluster: Cluster, operator: OperatorRun, secured: SecuredDatabase
) -> None:
    _ready_with_roles(k8s_cluster, secured)
    with psycopg.connect(secured.login("app").dsn()) as conn:
        conn.execute(NEW_PATIENT)
        conn.commit()
        count = conn.execute("SELECT count(*) FROM patients").fetchone()
    assert count == (1,), "the app role inserted a patient"
    assert _refused(secured.login("app"), "DELETE FROM audit.log")
    assert _refused(secured.login("readonly"), NEW_PATIENT)
    assert not _refused(secured.login("readonly"), "SELECT count(*) FROM patients")
    assert _refused(secured.login("auditor"), "SELECT count(*) FROM public.patients")


def test_an_extra_grant_is_reported_as_drift_and_revoked(
    k8s_cluster: Cluster, operator: OperatorRun, secured: SecuredDatabase
) -> None:
    _ready_with_roles(k8s_cluster, secured)
    app = secured.usernames["app"]
    with psycopg.connect(secured.owner.admin.dsn(), autocommit=True) as conn:
        conn.execute(sql.SQL("GRANT DELETE ON audit.log TO {}").format(sql.Identifier(app)))
    drift = _wait_condition(k8s_cluster, "RolesInSync", "False", "RoleDrift")
    assert f"extra grant: app role {app} has DELETE on table audit.log" in drift["message"]
    event = _wait_event(k8s_cluster, "RoleDrift")
    assert event["type"] == "Warning"
    assert "DELETE on table audit.log" in event["message"]
    assert "repaired" in event["message"]
    _wait_condition(k8s_cluster, "RolesInSync", "True", "RolesInSync", timeout=60)
    with psycopg.connect(secured.owner.admin.dsn()) as conn:
        held = conn.execute(
            "SELECT has_table_privilege(%s, 'audit.log', 'DELETE')", (app,)
        ).fetchone()
    assert held == (False,)
    warnings = [e for e in k8s_cluster.events(NAMESPACE, NAME) if e["reason"] == "RoleDrift"]
    assert len(warnings) == 1, "one Event for one drift"


def test_a_changed_role_secret_rotates_the_password_in_the_database_and_the_pooler(
    k8s_cluster: Cluster, operator: OperatorRun, secured: SecuredDatabase
) -> None:
    _ready_with_roles(k8s_cluster, secured, pooler={"enabled": True})
    app = secured.usernames["app"]
    before = k8s_cluster.wait_for(
        lambda: _userlist_verifier(k8s_cluster, app), 20, "the app role in the pooler's userlist"
    )
    assert verifier_matches(secured.passwords["app"], before)
    old, new = secured.passwords["app"], watched(f"pw-new-{secrets.token_hex(12)}")
    secured.passwords["rotated"] = old  # scanned for leaks at the end as well
    secured.passwords["app"] = new
    _set_secret_password(k8s_cluster, "clinic-app", new)

    event = _wait_event(k8s_cluster, "RoleSecretChanged")
    assert f"password of role {app} rotated" in event["message"]
    with psycopg.connect(secured.login("app", new).dsn()) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(secured.login("app", old).dsn()).close()
    after = k8s_cluster.wait_for(
        lambda: (v := _userlist_verifier(k8s_cluster, app)) != before and v,
        20,
        "the pooler's userlist to follow the new password",
    )
    assert isinstance(after, str)
    assert verifier_matches(new, after)
    assert not verifier_matches(old, after)


def test_reads_of_patient_data_by_the_app_role_are_audited(
    k8s_cluster: Cluster,
    operator: OperatorRun,
    secured: SecuredDatabase,
    pg_cluster: LocalPostgres,
) -> None:
    _ready_with_roles(k8s_cluster, secured)
    active = _wait_condition(k8s_cluster, "ReadAuditActive", "True", "ReadAuditActive")
    assert "patient-data tables" in active["message"]
    marker = f"read-{uuid.uuid4().hex}"
    with psycopg.connect(secured.login("app").dsn()) as conn:
        conn.execute(f"SELECT count(*) FROM patients /* {marker} */")
    app = secured.usernames["app"]

    def audited() -> list[str] | None:
        text = pg_cluster.log_file.read_text(errors="replace")
        lines = [line for line in text.splitlines() if marker in line and "AUDIT:" in line]
        return lines or None

    lines = k8s_cluster.wait_for(audited, 60, "the read in the server log")
    assert any(f"{app}@" in line and "READ,SELECT" in line for line in lines), lines


def test_no_role_password_in_logs_events_status_or_stored_objects(
    k8s_cluster: Cluster, operator: OperatorRun, secured: SecuredDatabase
) -> None:
    _ready_with_roles(k8s_cluster, secured, pooler={"enabled": True})
    old = secured.passwords["readonly"]
    _set_secret_password(
        k8s_cluster, "clinic-readonly", watched(f"pw-next-{secrets.token_hex(12)}")
    )
    _wait_event(k8s_cluster, "RoleSecretChanged")
    # A failing pass too: a Secret taken away.
    k8s_cluster.delete("v1", "Secret", NAMESPACE, "clinic-auditor")
    _wait_condition(k8s_cluster, "RolesInSync", "False", "SecretMissing")
    secret = k8s_cluster.get("v1", "Secret", NAMESPACE, "clinic-readonly")
    assert secret is not None
    new = base64.b64decode(secret["data"]["password"]).decode()
    _assert_no_secret_anywhere(k8s_cluster, operator.log_text(), [*secured.all_passwords, old, new])


def test_a_createrole_owner_manages_roles_and_rotation_but_reports_audit_unavailable(
    k8s_cluster: Cluster, operator: OperatorRun, least_privileged: SecuredDatabase
) -> None:
    _ready_with_roles(k8s_cluster, least_privileged)
    in_sync = _condition(k8s_cluster, "RolesInSync")
    assert in_sync is not None
    assert "stored passwords are not compared" in in_sync["message"]
    audit = _wait_condition(k8s_cluster, "ReadAuditActive", "False", "NotConfigured")
    assert "superuser" in audit["message"]
    assert _refused(least_privileged.login("app"), "DELETE FROM audit.log")

    old, new = least_privileged.passwords["readonly"], watched(f"pw-new-{secrets.token_hex(12)}")
    least_privileged.passwords["readonly"] = new
    _set_secret_password(k8s_cluster, "clinic-readonly", new)
    _wait_event(k8s_cluster, "RoleSecretChanged")
    with psycopg.connect(least_privileged.login("readonly", new).dsn()) as conn:
        assert conn.execute("SELECT count(*) FROM patients").fetchone() == (0,)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(least_privileged.login("readonly", old).dsn()).close()


@pytest.fixture
def cluster_without_pgaudit() -> Iterator[LocalPostgres]:
    cluster = LocalPostgres(Path(tempfile.mkdtemp(prefix="dbkeeper-no-pgaudit-")))
    cluster.init(preload=["pg_stat_statements"])
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.destroy()


def test_a_server_without_pgaudit_is_reported_as_not_auditing_reads(
    k8s_cluster: Cluster, operator: OperatorRun, cluster_without_pgaudit: LocalPostgres
) -> None:
    # The whole server goes away after the test, with the database and its roles.
    database = next(_secured_database(cluster_without_pgaudit, "SUPERUSER"))
    _ready_with_roles(k8s_cluster, database)
    missing = _wait_condition(k8s_cluster, "ReadAuditActive", "False", "PgauditMissing")
    assert "shared_preload_libraries" in missing["message"]
    event = _wait_event(k8s_cluster, "PgauditMissing")
    assert event["type"] == "Warning"

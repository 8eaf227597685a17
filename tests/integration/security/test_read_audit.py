"""Reads of patient data are audited by pgaudit; a server without pgaudit is reported.

Each statement carries a unique comment so the test finds its own lines in the shared
server log.
"""

from __future__ import annotations

import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from dbkeeper.healthcare.models import PATIENT_DATA_TABLES
from dbkeeper.local.postgres import LocalPostgres
from dbkeeper.security import (
    PrivilegeDeclaration,
    apply_roles,
    check_roles,
    configure_read_audit,
    read_audit_state,
)
from tests.integration.security.conftest import MakeDatabase, RoleSet, connect, login


def _lines_with(log: Path, marker: str, timeout: float = 60.0, expect: bool = True) -> list[str]:
    """The server log's lines holding ``marker``; waits for one when ``expect``."""
    deadline = time.monotonic() + timeout
    while True:
        lines = [line for line in log.read_text(errors="replace").splitlines() if marker in line]
        if lines or not expect or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


@pytest.fixture
def audited(
    pg_cluster: LocalPostgres,
    make_healthcare_db: MakeDatabase,
    roles: RoleSet,
    privileges: PrivilegeDeclaration,
) -> str:
    admin = pg_cluster.admin_conninfo()
    database = make_healthcare_db().dbname
    apply_roles(admin, database, roles.declarations, privileges)
    state = configure_read_audit(admin, database, roles.app.username, PATIENT_DATA_TABLES)
    assert state.active, state.reason
    return database


@pytest.mark.pgaudit
def test_select_on_a_patient_table_is_logged_with_the_role(
    pg_cluster: LocalPostgres, audited: str, roles: RoleSet
) -> None:
    marker = f"read-{uuid.uuid4().hex}"
    with connect(login(pg_cluster, audited, roles.app)) as conn:
        conn.execute(f"SELECT count(*) FROM patients /* {marker} */")
    lines = _lines_with(pg_cluster.log_file, marker)
    audit = [line for line in lines if "AUDIT: OBJECT" in line]
    assert audit, lines
    assert "READ,SELECT,TABLE,public.patients" in audit[0]
    assert f"{roles.app.username}@{audited}" in audit[0]


@pytest.mark.pgaudit
def test_the_acting_user_is_logged_in_the_same_session(
    pg_cluster: LocalPostgres, audited: str, roles: RoleSet
) -> None:
    actor = f"dr_{uuid.uuid4().hex[:10]}"
    with connect(login(pg_cluster, audited, roles.app)) as conn:
        conn.execute(f"SET LOCAL dbkeeper.actor = '{actor}'")
        pid = conn.execute("SELECT pg_backend_pid()").fetchone()
        conn.execute(f"SELECT count(*) FROM observations /* {actor} */")
    assert pid is not None
    lines = _lines_with(pg_cluster.log_file, actor)
    set_lines = [line for line in lines if "MISC,SET" in line]
    read_lines = [line for line in lines if "READ,SELECT,TABLE,public.observations" in line]
    assert set_lines, lines
    assert read_lines, lines
    assert all(f"[{pid[0]}]" in line for line in set_lines + read_lines)


@pytest.mark.pgaudit
def test_select_on_a_non_patient_table_is_not_logged(
    pg_cluster: LocalPostgres, audited: str, roles: RoleSet
) -> None:
    marker = f"read-{uuid.uuid4().hex}"
    witness = f"witness-{uuid.uuid4().hex}"
    with connect(login(pg_cluster, audited, roles.app)) as conn:
        conn.execute(f"SELECT count(*) FROM organizations /* {marker} */")
        conn.execute(f"SELECT count(*) FROM patients /* {witness} */")
    # Once the later statement's line is there, the earlier one would be too.
    assert _lines_with(pg_cluster.log_file, witness)
    assert _lines_with(pg_cluster.log_file, marker, expect=False) == []


@pytest.mark.pgaudit
def test_read_audit_state_follows_the_configuration(
    pg_cluster: LocalPostgres, make_healthcare_db: MakeDatabase, roles: RoleSet,
    privileges: PrivilegeDeclaration,
) -> None:  # fmt: skip
    admin = pg_cluster.admin_conninfo()
    database = make_healthcare_db().dbname
    apply_roles(admin, database, roles.declarations, privileges)
    before = read_audit_state(admin, database, PATIENT_DATA_TABLES)
    assert (before.active, before.code) == (False, "NotConfigured")
    configure_read_audit(admin, database, roles.app.username, PATIENT_DATA_TABLES)
    assert read_audit_state(admin, database, PATIENT_DATA_TABLES).active
    # The pgaudit extension and its audit role are no drift of the declared roles.
    assert check_roles(admin, database, roles.declarations, privileges) == []


@pytest.mark.pgaudit
def test_no_role_password_reaches_the_server_log(
    pg_cluster: LocalPostgres, audited: str, roles: RoleSet
) -> None:
    with connect(login(pg_cluster, audited, roles.app)) as conn:
        conn.execute("SELECT count(*) FROM patients")
    text = pg_cluster.log_file.read_text(errors="replace")
    assert not [password for password in roles.passwords if password in text]


@pytest.fixture(scope="module")
def cluster_without_pgaudit() -> Iterator[LocalPostgres]:
    cluster = LocalPostgres(Path(tempfile.mkdtemp(prefix="dbkeeper-test-nopgaudit-")))
    try:
        cluster.init(preload=["pg_stat_statements"])
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()


def test_a_server_without_pgaudit_is_reported_not_ignored(
    cluster_without_pgaudit: LocalPostgres,
) -> None:
    admin = cluster_without_pgaudit.admin_conninfo()
    state = configure_read_audit(admin, "postgres", "hc_app", PATIENT_DATA_TABLES)
    assert (state.active, state.code) == (False, "PgauditNotLoaded")
    assert "shared_preload_libraries = 'pg_stat_statements'" in state.reason
    with psycopg.connect(admin.dsn()) as conn:
        assert conn.execute("SELECT 1 FROM pg_roles WHERE rolname = 'dbkeeper_read_audit'")\
            .fetchone() is None  # fmt: skip

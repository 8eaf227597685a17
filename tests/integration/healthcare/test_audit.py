"""The audit trail: who changed what is recorded, the application cannot rewrite it; and
the v1 chain of a database not yet at revision 0007, where tampering by anyone who can
is found at the row where it happened (v2: test_audit_chain.py)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import date
from typing import Any

import psycopg
import pytest
from psycopg import sql

from dbkeeper.cli import main as dbkeeper_main
from dbkeeper.conninfo import ConnInfo
from dbkeeper.healthcare.audit import verify_audit_chain, verify_chain_in_database
from tests.cli_output import json_output
from tests.integration.healthcare.conftest import upgrade

V1_HEAD = "0006"

Conn = psycopg.Connection[tuple[Any, ...]]


def _add_patients(conn: Conn, count: int, org_id: int) -> list[int]:
    ids = []
    for _ in range(count):
        row = conn.execute(
            "INSERT INTO patients (organization_id, mrn, given_name, family_name, birth_date, sex) "
            "VALUES (%s, %s, 'Ann', 'Lee', %s, 'female') RETURNING id",
            (org_id, f"M{uuid.uuid4().hex[:10].upper()}", date(1975, 3, 4)),
        ).fetchone()
        assert row is not None
        ids.append(int(row[0]))
    return ids


@pytest.fixture
def admin(healthcare_db: ConnInfo) -> Iterator[Conn]:
    """A superuser connection in autocommit mode, with one organization created."""
    with psycopg.connect(healthcare_db.dsn(), autocommit=True) as conn:
        conn.execute(
            "INSERT INTO organizations (identifier, name, kind) "
            "VALUES ('ORG-1', 'General', 'hospital')"
        )
        yield conn


@pytest.fixture
def v1_db(database: ConnInfo) -> ConnInfo:
    """A fresh database at the last revision with the v1 audit chain."""
    upgrade(database, V1_HEAD)
    return database


@pytest.fixture
def v1_admin(v1_db: ConnInfo) -> Iterator[Conn]:
    with psycopg.connect(v1_db.dsn(), autocommit=True) as conn:
        conn.execute(
            "INSERT INTO organizations (identifier, name, kind) "
            "VALUES ('ORG-1', 'General', 'hospital')"
        )
        yield conn


def _org_id(conn: Conn) -> int:
    row = conn.execute("SELECT id FROM organizations ORDER BY id LIMIT 1").fetchone()
    assert row is not None
    return int(row[0])


def _audit_rows(conn: Conn) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT id, table_name, row_key, action, old_values, new_values, actor "
        "FROM audit.log ORDER BY id"
    ).fetchall()


def test_actor_is_taken_from_the_session_setting(admin: Conn) -> None:
    admin.execute("SET dbkeeper.actor = 'dr.grey@clinic'")
    [patient] = _add_patients(admin, 1, _org_id(admin))
    rows = _audit_rows(admin)
    assert [(r[1], r[2], r[3], r[6]) for r in rows] == [
        ("patients", str(patient), "INSERT", "dr.grey@clinic")
    ]


def test_actor_falls_back_to_the_session_user(admin: Conn) -> None:
    _add_patients(admin, 1, _org_id(admin))
    assert [r[6] for r in _audit_rows(admin)] == ["postgres"]


def test_update_records_only_the_changed_columns(admin: Conn) -> None:
    [patient] = _add_patients(admin, 1, _org_id(admin))
    admin.execute(
        "UPDATE patients SET phone = '555-0100', sex = 'female' WHERE id = %s", (patient,)
    )
    update = _audit_rows(admin)[-1]
    assert (update[3], update[4], update[5]) == ("UPDATE", {"phone": None}, {"phone": "555-0100"})


def test_delete_records_the_removed_row(admin: Conn) -> None:
    [patient] = _add_patients(admin, 1, _org_id(admin))
    admin.execute("DELETE FROM patients WHERE id = %s", (patient,))
    delete = _audit_rows(admin)[-1]
    assert (delete[2], delete[3], delete[4]["mrn"] is not None, delete[5]) == (
        str(patient),
        "DELETE",
        True,
        None,
    )


def test_one_statement_changing_many_rows_records_each_row(admin: Conn) -> None:
    _add_patients(admin, 3, _org_id(admin))
    admin.execute("UPDATE patients SET phone = '555-0199'")
    updates = [r for r in _audit_rows(admin) if r[3] == "UPDATE"]
    assert sorted(r[2] for r in updates) == sorted(
        str(r[0]) for r in admin.execute("SELECT id FROM patients")
    )


@pytest.fixture
def app_role(healthcare_db: ConnInfo, admin: Conn) -> Iterator[ConnInfo]:
    """A login role with DML on the application's tables and nothing on the audit schema."""
    name = f"app_{uuid.uuid4().hex[:8]}"
    password = uuid.uuid4().hex
    role = sql.Identifier(name)
    admin.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(role, sql.Literal(password)))
    admin.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(role))
    admin.execute(
        sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {}").format(
            role
        )
    )
    try:
        yield ConnInfo(
            host=healthcare_db.host,
            port=healthcare_db.port,
            dbname=healthcare_db.dbname,
            user=name,
            password=password,
        )
    finally:
        admin.execute(sql.SQL("DROP OWNED BY {}").format(role))
        admin.execute(sql.SQL("DROP ROLE {}").format(role))


def test_application_role_writes_are_audited_under_its_name(
    admin: Conn, app_role: ConnInfo
) -> None:
    with psycopg.connect(app_role.dsn(), autocommit=True) as app:
        [patient] = _add_patients(app, 1, _org_id(admin))
        app.execute("UPDATE patients SET phone = '555-0142' WHERE id = %s", (patient,))
    rows = _audit_rows(admin)
    assert [(r[2], r[3], r[6]) for r in rows] == [
        (str(patient), "INSERT", app_role.user),
        (str(patient), "UPDATE", app_role.user),
    ]


@pytest.mark.parametrize(
    "statement",
    ["UPDATE audit.log SET actor = 'nobody'", "DELETE FROM audit.log", "TRUNCATE audit.log"],
)
def test_application_role_cannot_change_audit_rows(
    statement: str, admin: Conn, app_role: ConnInfo
) -> None:
    with psycopg.connect(app_role.dsn(), autocommit=True) as app:
        _add_patients(app, 1, _org_id(admin))
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            app.execute(statement)
    assert len(_audit_rows(admin)) == 1


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit.log SET actor = 'nobody'",
        "DELETE FROM audit.log",
        "TRUNCATE audit.log",
        "TRUNCATE patients CASCADE",
    ],
)
def test_even_the_owner_cannot_change_audit_rows_while_the_guard_is_on(
    statement: str, admin: Conn
) -> None:
    _add_patients(admin, 1, _org_id(admin))
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
        admin.execute(statement)
    assert len(_audit_rows(admin)) == 1


def _both_verdicts(conn: Conn) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    python = verify_audit_chain(conn)
    database = verify_chain_in_database(conn)
    return (python.ok, python.first_broken_id), (database.ok, database.first_broken_id)


def test_v1_untouched_chain_verifies_in_python_and_sql(v1_admin: Conn) -> None:
    v1_admin.execute("SET dbkeeper.actor = 'Dr. Müller; 3:x|y'")
    ids = _add_patients(v1_admin, 4, _org_id(v1_admin))
    v1_admin.execute("UPDATE patients SET given_name = 'Zoë 🩺' WHERE id = %s", (ids[0],))
    v1_admin.execute("DELETE FROM patients WHERE id = %s", (ids[1],))
    verdict = verify_audit_chain(v1_admin)
    assert (verdict.ok, verdict.rows_checked) == (True, 6)
    assert verify_chain_in_database(v1_admin).ok


def _tamper(conn: Conn, statement: str, *params: Any) -> None:
    with conn.transaction():
        conn.execute("ALTER TABLE audit.log DISABLE TRIGGER log_append_only")
        conn.execute(statement, params)
        conn.execute("ALTER TABLE audit.log ENABLE TRIGGER log_append_only")


def test_v1_altering_a_middle_row_is_found_at_that_row(v1_admin: Conn) -> None:
    _add_patients(v1_admin, 5, _org_id(v1_admin))
    _tamper(v1_admin, "UPDATE audit.log SET actor = 'someone-else' WHERE id = 3")
    assert _both_verdicts(v1_admin) == ((False, 3), (False, 3))


def test_v1_rehashing_an_altered_row_is_found_at_the_next_row(v1_admin: Conn) -> None:
    _add_patients(v1_admin, 5, _org_id(v1_admin))
    _tamper(
        v1_admin,
        "UPDATE audit.log SET actor = 'x', row_hash = audit.entry_hash(prev_hash, id, table_name, "
        "row_key, action, old_values, new_values, 'x', txid, occurred_at) WHERE id = 3",
    )
    assert _both_verdicts(v1_admin) == ((False, 4), (False, 4))


def test_v1_deleting_a_middle_row_is_found_at_the_row_after_it(v1_admin: Conn) -> None:
    _add_patients(v1_admin, 5, _org_id(v1_admin))
    _tamper(v1_admin, "DELETE FROM audit.log WHERE id = 3")
    assert _both_verdicts(v1_admin) == ((False, 4), (False, 4))


def test_v1_deleting_the_last_row_is_found_through_the_chain_head(v1_admin: Conn) -> None:
    _add_patients(v1_admin, 5, _org_id(v1_admin))
    _tamper(v1_admin, "DELETE FROM audit.log WHERE id = 5")
    assert _both_verdicts(v1_admin) == ((False, 5), (False, 5))


def test_v1_concurrent_writers_extend_one_chain(v1_db: ConnInfo, v1_admin: Conn) -> None:
    org = _org_id(v1_admin)
    errors: list[BaseException] = []

    def write() -> None:
        try:
            with psycopg.connect(v1_db.dsn(), autocommit=True) as conn:
                _add_patients(conn, 15, org)
        except BaseException as exc:  # reported by the test below
            errors.append(exc)

    writers = [threading.Thread(target=write) for _ in range(3)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(timeout=60)
    assert errors == []
    verdict = verify_audit_chain(v1_admin)
    assert (verdict.ok, verdict.rows_checked) == (True, 45)


def test_v1_cli_verify_reports_an_intact_chain(
    v1_admin: Conn, v1_db: ConnInfo, capsys: pytest.CaptureFixture[str]
) -> None:
    _add_patients(v1_admin, 2, _org_id(v1_admin))
    code = dbkeeper_main(["audit", "verify", "--dsn", v1_db.dsn(), "-o", "json"])
    report = json_output(["audit", "verify"], capsys.readouterr().out)
    assert (code, report["ok"], report["rows_checked"]) == (0, True, 2)


def test_v1_cli_verify_fails_and_names_the_broken_row(
    v1_admin: Conn, v1_db: ConnInfo, capsys: pytest.CaptureFixture[str]
) -> None:
    [first, _second] = _add_patients(v1_admin, 2, _org_id(v1_admin))
    _tamper(v1_admin, "UPDATE audit.log SET row_key = '999' WHERE id = 1")
    code = dbkeeper_main(["audit", "verify", "--dsn", v1_db.dsn()])
    out = capsys.readouterr().out
    assert code == 1
    assert "BROKEN at row 1" in out
    assert "patients key 999 INSERT" in out
    assert str(first) != "999"


def test_cli_verify_explains_a_database_without_the_audit_schema(
    database: ConnInfo, capsys: pytest.CaptureFixture[str]
) -> None:
    code = dbkeeper_main(["audit", "verify", "--dsn", database.dsn()])
    err = capsys.readouterr().err
    assert code == 1
    assert "no audit trail" in err
    assert database.password is not None
    assert database.password not in err

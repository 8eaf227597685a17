"""Auditing of reads of patient data with pgaudit's object-level logging.

pgaudit logs a statement on a table when the role named by ``pgaudit.role`` holds the
statement's privilege on that table. dbkeeper keeps one such role, with no login,
holding SELECT on exactly the patient-data tables, and sets ``pgaudit.role`` on the
database: from then on every new session's SELECT on those tables is written to the
server log as ``AUDIT: OBJECT,...,READ,SELECT,TABLE,public.patients,<statement>``, the
log line prefix naming the login role (``%u``). The application role also gets
``pgaudit.log = 'misc_set'``, so its ``SET [LOCAL] dbkeeper.actor = '...'`` (the acting
person, as the write audit trail records it) is logged in the same session.

A server without pgaudit in ``shared_preload_libraries`` cannot audit reads: that is
reported as an inactive state with the reason, never passed over.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

import psycopg
from psycopg import sql

from dbkeeper.conninfo import ConnInfo
from dbkeeper.security.connection import Connection, admin_connection, first_line, take_lock
from dbkeeper.security.errors import SecurityError

AUDIT_ROLE: Final = "dbkeeper_read_audit"

ReadAuditReason = Literal[
    "Active",
    "PgauditNotLoaded",
    "NotConfigured",
    "AuditLinesLackRole",
    "NoTables",
    "PermissionDenied",
]


@dataclass(frozen=True)
class ReadAuditState:
    """Whether reads of the patient tables are audited; ``reason`` says why not."""

    active: bool
    reason: str
    """A sentence for the ReadAuditActive condition's message."""
    code: ReadAuditReason = "Active"
    """The condition's reason: a closed set of CamelCase words."""


def _inactive(code: ReadAuditReason, reason: str) -> ReadAuditState:
    return ReadAuditState(active=False, reason=reason, code=code)


def _pgaudit_loaded(conn: Connection) -> bool:
    # pgaudit's settings exist (are listed in pg_settings) only when the library is loaded.
    row = conn.execute("SELECT count(*) FROM pg_settings WHERE name = 'pgaudit.log'").fetchone()
    return bool(row and row[0])


def _preloaded(conn: Connection) -> str:
    row = conn.execute(
        "SELECT setting FROM pg_settings WHERE name = 'shared_preload_libraries'"
    ).fetchone()
    return str(row[0]) if row and row[0] is not None else "unknown"


def _not_loaded(conn: Connection) -> ReadAuditState:
    return _inactive(
        "PgauditNotLoaded",
        "pgaudit is not loaded on the server (shared_preload_libraries = "
        f"'{_preloaded(conn)}'): install it, add pgaudit to shared_preload_libraries and "
        "restart PostgreSQL; until then reads of patient data are not audited",
    )


def _resolve_tables(conn: Connection, tables: Sequence[str]) -> list[str]:
    """The tables that exist, schema-qualified and quoted as PostgreSQL prints them."""
    found: list[str] = []
    for table in tables:
        row = conn.execute("SELECT to_regclass(%s)::text", (table,)).fetchone()
        if row and row[0]:
            found.append(str(row[0]))
    return found


def _state(
    conn: Connection, database: str, tables: Sequence[str], audit_role: str
) -> ReadAuditState:
    if not _pgaudit_loaded(conn):
        return _not_loaded(conn)
    existing = _resolve_tables(conn, tables)
    if not existing:
        return _inactive(
            "NoTables",
            f"none of the patient-data tables ({', '.join(tables)}) exists in {database} yet",
        )
    setting = conn.execute(
        """SELECT 1 FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase
            WHERE d.datname = %s AND s.setrole = 0 AND %s = ANY(s.setconfig)""",
        (database, f"pgaudit.role={audit_role}"),
    ).fetchone()
    role = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (audit_role,)).fetchone()
    if setting is None or role is None:
        return _inactive(
            "NotConfigured", f"pgaudit.role is not set to {audit_role} on database {database}"
        )
    unaudited = [
        table
        for table in existing
        if not conn.execute(
            "SELECT has_table_privilege(%s, %s::regclass, 'SELECT')", (audit_role, table)
        ).fetchone()[0]  # type: ignore[index]
    ]
    if unaudited:
        return _inactive(
            "NotConfigured",
            f"reads of {', '.join(unaudited)} are not audited: {audit_role} lacks SELECT on them",
        )
    prefix = conn.execute("SELECT current_setting('log_line_prefix')").fetchone()
    if prefix is None or "%u" not in str(prefix[0]):
        return _inactive(
            "AuditLinesLackRole",
            "log_line_prefix does not contain %u, so audit lines would not name the role "
            "that read: add %u (and %p to match a session's lines) to log_line_prefix",
        )
    return ReadAuditState(
        active=True,
        reason=f"SELECTs on {len(existing)} patient-data tables of {database} are logged "
        "by pgaudit",
    )


def read_audit_state(
    admin: ConnInfo, database: str, tables: Sequence[str], audit_role: str = AUDIT_ROLE
) -> ReadAuditState:
    """Whether reads of ``tables`` in ``database`` are audited now; changes nothing."""
    with admin_connection(admin, database) as conn:
        try:
            return _state(conn, database, tables, audit_role)
        except psycopg.Error as exc:
            return _inactive(
                "PermissionDenied", f"cannot read the audit settings: {first_line(exc)}"
            )
        finally:
            conn.rollback()


_OTHER_GRANTS = """
SELECT c.oid::regclass::text
  FROM pg_class c, aclexplode(c.relacl) a
 WHERE c.relacl IS NOT NULL AND a.grantee = (SELECT oid FROM pg_roles WHERE rolname = %s)
   AND NOT (c.oid::regclass::text = ANY(%s::text[]))
"""


def _configure(
    conn: Connection, database: str, app_role: str, tables: Sequence[str], audit_role: str
) -> None:
    take_lock(conn)
    conn.execute("CREATE EXTENSION IF NOT EXISTS pgaudit")
    exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (audit_role,)).fetchone()
    role = sql.Identifier(audit_role)
    if exists is None:
        # Roles are shared by all databases of the server: another database may create
        # it at the same moment.
        try:
            with conn.transaction():
                conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(role))
        except psycopg.errors.UniqueViolation:
            pass
    existing = _resolve_tables(conn, tables)
    for table in existing:
        conn.execute(sql.SQL("GRANT SELECT ON TABLE {} TO {}").format(sql.SQL(table), role))
    for (other,) in conn.execute(_OTHER_GRANTS, (audit_role, existing)).fetchall():
        conn.execute(sql.SQL("REVOKE ALL ON TABLE {} FROM {}").format(sql.SQL(str(other)), role))
    conn.execute(
        sql.SQL("ALTER DATABASE {} SET pgaudit.role = {}").format(
            sql.Identifier(database), sql.Literal(audit_role)
        )
    )
    app = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (app_role,)).fetchone()
    if app is None:
        raise SecurityError(
            "RoleNotFound", f"application role {app_role} does not exist: apply the roles first"
        )
    conn.execute(
        sql.SQL("ALTER ROLE {} IN DATABASE {} SET pgaudit.log = 'misc_set'").format(
            sql.Identifier(app_role), sql.Identifier(database)
        )
    )


def configure_read_audit(
    admin: ConnInfo,
    database: str,
    app_role: str,
    tables: Sequence[str],
    audit_role: str = AUDIT_ROLE,
) -> ReadAuditState:
    """Audit every SELECT on ``tables`` in ``database``; idempotent.

    Needs a superuser ``admin`` (pgaudit is not a trusted extension and its settings are
    superuser-only). The settings apply to sessions started afterwards: the pooler's
    server connections opened before keep reading unaudited until they are reconnected.
    Returns the state after the change; when pgaudit is not loaded, nothing is changed
    and the state says so.
    """
    if not tables:
        raise SecurityError("InvalidDeclaration", "no patient-data tables to audit were given")
    with admin_connection(admin, database) as conn:
        try:
            if not _pgaudit_loaded(conn):
                state = _not_loaded(conn)
                conn.rollback()
                return state
            _configure(conn, database, app_role, tables, audit_role)
            state = _state(conn, database, tables, audit_role)
        except psycopg.errors.InsufficientPrivilege as exc:
            conn.rollback()
            return _inactive(
                "PermissionDenied",
                f"configuring pgaudit on {database} needs a superuser: {first_line(exc)}",
            )
        except psycopg.Error as exc:
            conn.rollback()
            raise SecurityError(
                "ApplyFailed", f"configuring read auditing on {database} failed: {first_line(exc)}"
            ) from None
        except SecurityError:
            conn.rollback()
            raise
    return state

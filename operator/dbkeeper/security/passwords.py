"""Which declared roles' Secrets hold a password the database does not have yet.

Nothing about a password is kept outside its Secret, not even a hash: the database is
the record. When the role dbkeeper connects as can read stored verifiers (a
superuser), the drift check compares each Secret with its role's SCRAM verifier. When it
cannot, dbkeeper logs in as each role with its Secret's password; a refused login means
the Secret changed. Either way the password itself is only ever handed to libpq or to
the SCRAM computation.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import psycopg

from dbkeeper.conninfo import ConnInfo
from dbkeeper.security.connection import admin_connection
from dbkeeper.security.roles import RoleDeclaration, RoleDrift

_REFUSED_LOGIN = ("password authentication failed", "SASL authentication failed")


def verifiers_readable(admin: ConnInfo) -> bool:
    """Whether ``admin``'s role can read stored verifiers (pg_authid): a superuser."""
    with admin_connection(admin, admin.dbname) as conn:
        row = conn.execute("SELECT has_table_privilege('pg_authid', 'SELECT')").fetchone()
        conn.rollback()
    return bool(row and row[0])


def _login_refused(admin: ConnInfo, role: RoleDeclaration) -> bool:
    """Whether the server refuses ``role``'s password; other failures say nothing."""
    info = dataclasses.replace(admin, user=role.username, password=role.password)
    try:
        with psycopg.connect(info.dsn()):
            return False
    except psycopg.OperationalError as exc:
        text = str(exc)
        return any(marker in text for marker in _REFUSED_LOGIN)


def changed_passwords(
    admin: ConnInfo,
    roles: Sequence[RoleDeclaration],
    drifts: Sequence[RoleDrift],
    existing: set[str],
    readable: bool,
) -> list[RoleDeclaration]:
    """The declared roles (among ``existing`` ones) whose Secret's password is new.

    ``drifts`` are the drift check's findings: when stored verifiers are ``readable``
    they already name the roles whose verifier does not match; otherwise each role's
    login is tried.
    """
    if readable:
        names = {drift.role for drift in drifts if drift.kind == "password"}
        return [role for role in roles if role.username in names]
    return [role for role in roles if role.username in existing and _login_refused(admin, role)]

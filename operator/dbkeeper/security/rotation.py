"""Password rotation: a new SCRAM verifier for a role, to be shared with the pooler.

The order that keeps clients working: first the database gets the new verifier (open
sessions, including the pooler's server connections, are not affected), then the
pooler's userlist gets the very same string and is RELOADed (clients already connected
stay; new ones must use the new password). Between the two steps new clients still
log in to the pooler with the old password and are served by existing server
connections.
"""

from __future__ import annotations

from collections.abc import Iterable

import psycopg
from psycopg import sql

from dbkeeper.conninfo import ConnInfo
from dbkeeper.pooler.render import UserEntry
from dbkeeper.pooler.scram import scram_verifier, verifier_matches
from dbkeeper.security.connection import admin_connection, first_line
from dbkeeper.security.errors import SecurityError, SecurityReason


def rotate_password(admin: ConnInfo, role: str, new_password: str) -> str:
    """Give ``role`` the password ``new_password``; returns its SCRAM verifier.

    When the role already has that password (and ``admin`` can read stored verifiers)
    the stored verifier is returned unchanged, so an unchanged Secret causes no RELOAD.
    """
    if not new_password:
        raise SecurityError("InvalidRole", f"the new password of role {role} is empty")
    with admin_connection(admin, admin.dbname) as conn:
        try:
            row = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
            if row is None:
                raise SecurityError(
                    "RoleNotFound", f"role {role} does not exist: create it (apply_roles) first"
                )
            readable = conn.execute("SELECT has_table_privilege('pg_authid', 'SELECT')").fetchone()
            if readable and readable[0]:
                stored = conn.execute(
                    "SELECT rolpassword FROM pg_authid WHERE rolname = %s", (role,)
                ).fetchone()
                if stored and stored[0] and verifier_matches(new_password, str(stored[0])):
                    return str(stored[0])
            verifier = scram_verifier(new_password)
            conn.execute(
                sql.SQL("ALTER ROLE {} WITH PASSWORD {}").format(
                    sql.Identifier(role), sql.Literal(verifier)
                )
            )
        except psycopg.Error as exc:
            conn.rollback()
            reason: SecurityReason = (
                "PermissionDenied"
                if isinstance(exc, psycopg.errors.InsufficientPrivilege)
                else "ApplyFailed"
            )
            raise SecurityError(
                reason, f"setting the password of role {role} failed: {first_line(exc)}"
            ) from None
    return verifier


def with_verifier(users: Iterable[UserEntry], role: str, verifier: str) -> list[UserEntry]:
    """A pooler userlist where ``role`` has ``verifier`` (added when it was missing)."""
    entries = [entry for entry in users if entry.name != role]
    return [*entries, UserEntry(role, verifier)]

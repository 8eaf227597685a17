"""Password rotation: a new SCRAM verifier for a role, to be shared with the pooler.

The order that keeps clients working: first the database gets the new verifier (open
sessions, including the pooler's server connections, are not affected), then the
pooler's userlist gets the very same string and is RELOADed (clients already connected
stay; new ones must use the new password). Between the two steps new clients still
log in to the pooler with the old password and are served by existing server
connections.

The new verifier is the shared one (:func:`dbkeeper.pooler.scram.shared_verifier`): any
other dbkeeper pooler given the new password computes the same string, so none of them
has to store a verifier of its own afterwards.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence

import psycopg
from psycopg import sql

from dbkeeper.conninfo import ConnInfo
from dbkeeper.pooler.render import UserEntry
from dbkeeper.pooler.scram import shared_verifier, verifier_matches
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
            verifier = shared_verifier(role, new_password)
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


def store_verifiers(server: ConnInfo, roles: Sequence[tuple[str, str, str]]) -> None:
    """Store each ``(role, password, verifier)``'s verifier in PostgreSQL, logged in as
    that role.

    PgBouncer logs in to the server with the verifier it holds, so the server must hold
    the very same string. ``ALTER ROLE CURRENT_USER PASSWORD`` is allowed to every role
    and leaves the password itself unchanged. Nothing is connected to for an empty
    ``roles``.
    """
    for role, password, verifier in roles:
        target = dataclasses.replace(server, user=role, password=password)
        try:
            with psycopg.connect(target.dsn(), autocommit=True) as conn:
                conn.execute(
                    sql.SQL("ALTER ROLE CURRENT_USER PASSWORD {}").format(sql.Literal(verifier))
                )
        except psycopg.Error as exc:
            raise SecurityError(
                "ApplyFailed",
                f"cannot give role {role} the pooler's verifier: {first_line(exc)}",
            ) from None

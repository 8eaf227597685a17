"""The privileges a restore or a restore drill needs, checked before either starts.

A restore creates a database (a new one, or a staging copy beside the one it replaces)
and a drill restores into a scratch database, so the role they run as needs CREATEDB
(or superuser). Replacing a database in place also renames and drops it, which only its
owner may do, and ends the sessions connected to it, which for sessions of other roles
takes membership in ``pg_signal_backend``. The role's attributes are read from
``pg_roles`` and its memberships with ``pg_has_role``, so a refusal names the missing
privilege and the statement that grants it, and nothing has been created yet.

Restoring a dump whose objects belong to a role other than the one restoring also takes
membership in that role; pg_restore reports that one itself (see ``environment_faults``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import psycopg

from dbkeeper.backup.errors import MissingPrivilege
from dbkeeper.conninfo import ConnInfo

REFUSAL_OPENING = "missing privilege"
"""How every refusal of this module begins; the operator recognises a drill's error line
by it."""
SIGNAL_BACKEND_ROLE = "pg_signal_backend"
_PLAIN_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")


@dataclass(frozen=True)
class Missing:
    """One privilege the role lacks, why it is needed, and the statement that grants it."""

    privilege: str
    needed_for: str
    fix: str


def sql_name(name: str) -> str:
    """``name`` as it is written in a statement a person copies: quoted only if needed."""
    if _PLAIN_IDENTIFIER.match(name):
        return name
    return '"' + name.replace('"', '""') + '"'


def describe(role: str, missing: list[Missing]) -> str:
    """One line naming the role, each missing privilege, and how to grant it."""
    parts = [f"{m.privilege}, which {m.needed_for}: run {m.fix}" for m in missing]
    return (
        f"{REFUSAL_OPENING}: role {role!r} lacks "
        + "; and ".join(parts)
        + " (as a superuser), then try again; nothing was created"
    )


def _role(conn: psycopg.Connection[tuple[object, ...]]) -> tuple[str, bool, bool]:
    row = conn.execute(
        "SELECT rolname, rolsuper, rolcreatedb FROM pg_roles WHERE rolname = current_user"
    ).fetchone()
    assert row is not None  # the connected role always exists
    return str(row[0]), bool(row[1]), bool(row[2])


def _createdb(role: str, needed_for: str) -> Missing:
    return Missing("CREATEDB", needed_for, f"ALTER ROLE {sql_name(role)} CREATEDB")


def missing_for_drill(conn: psycopg.Connection[tuple[object, ...]]) -> tuple[str, list[Missing]]:
    """The connected role and what it lacks to run a restore drill."""
    role, superuser, createdb = _role(conn)
    if superuser or createdb:
        return role, []
    return role, [_createdb(role, "a restore drill needs to create its scratch database")]


def missing_for_restore(
    conn: psycopg.Connection[tuple[object, ...]], target: str, *, in_place: bool
) -> tuple[str, list[Missing]]:
    """The connected role and what it lacks to restore into ``target`` (a new database,
    or with ``in_place`` the existing one it replaces)."""
    role, superuser, createdb = _role(conn)
    if superuser:
        return role, []
    missing = []
    if not createdb:
        what = "a staging copy of the database" if in_place else f"database {target!r}"
        missing.append(_createdb(role, f"a restore needs to create {what}"))
    if in_place:
        missing += _missing_to_replace(conn, role, target)
    return role, missing


def _missing_to_replace(
    conn: psycopg.Connection[tuple[object, ...]], role: str, target: str
) -> list[Missing]:
    row = conn.execute(
        "SELECT pg_get_userbyid(datdba), pg_has_role(current_user, datdba, 'MEMBER') "
        "FROM pg_database WHERE datname = %s",
        (target,),
    ).fetchone()
    if row is None:
        return []  # the restore refuses a target that does not exist, with its own line
    owner, owns = str(row[0]), bool(row[1])
    missing = []
    if not owns:
        missing.append(
            Missing(
                f"membership in role {owner!r} (the owner of database {target!r})",
                "a restore in place needs to rename and drop the database it replaces",
                f"GRANT {sql_name(owner)} TO {sql_name(role)}",
            )
        )
    # Sessions of roles this one is not a member of can only be ended with
    # pg_signal_backend; the restore ends every session on the target before the swap.
    blocked = conn.execute(
        "SELECT NOT pg_has_role(current_user, %s, 'MEMBER') AND EXISTS ("
        " SELECT 1 FROM pg_stat_activity WHERE datname = %s AND usesysid IS NOT NULL"
        " AND NOT pg_has_role(current_user, usesysid, 'MEMBER'))",
        (SIGNAL_BACKEND_ROLE, target),
    ).fetchone()
    if blocked and blocked[0]:
        missing.append(
            Missing(
                SIGNAL_BACKEND_ROLE,
                f"a restore in place needs to end the other roles' sessions on {target!r}",
                f"GRANT {SIGNAL_BACKEND_ROLE} TO {sql_name(role)}",
            )
        )
    return missing


def names_missing_privilege(line: str) -> bool:
    """Whether a command's error line is a refusal of this module."""
    return f"{REFUSAL_OPENING}: role " in line


def drill_refusal(conninfo: ConnInfo) -> str | None:
    """The one line a drill run as ``conninfo``'s role would stop with for want of a
    privilege; None when it has them. Raises psycopg.Error when the server cannot be
    asked."""
    with psycopg.connect(conninfo.dsn(), autocommit=True) as conn:
        role, missing = missing_for_drill(conn)
    return describe(role, missing) if missing else None


def refuse_if_missing(role: str, missing: list[Missing]) -> None:
    """Raise MissingPrivilege with the one line of :func:`describe` when ``missing``."""
    if missing:
        raise MissingPrivilege(
            describe(role, missing), role=role, privileges=[m.privilege for m in missing]
        )

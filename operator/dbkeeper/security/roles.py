"""Least-privilege database roles from a declaration: create, repair, and report drift.

``apply_roles`` makes the database match the declared roles and the migration set's
privilege declaration, in one transaction: it creates missing login roles with a SCRAM
verifier computed here (the same string the pooler's userlist carries), resets role
attributes, removes role memberships, gives the owner role every object of the managed
schemas, and grants exactly the declared privileges while revoking the rest.
``check_roles`` finds the same differences and changes nothing: the timer's drift check.

Roles are cluster-wide in PostgreSQL: two databases of one server must not declare the
same role name with different passwords.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, Literal

import psycopg
from psycopg import sql

from dbkeeper.conninfo import ConnInfo
from dbkeeper.pooler.scram import shared_verifier, verifier_matches
from dbkeeper.security.connection import Connection, admin_connection, first_line, take_lock
from dbkeeper.security.errors import SecurityError, SecurityReason
from dbkeeper.security.grants import Grant, desired_grants, grant_scope, read_grants
from dbkeeper.security.privileges import ROLE_KINDS, PrivilegeDeclaration, RoleKind

_ROLE_NAME: Final = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

# Attribute column of pg_roles -> the ALTER ROLE keyword that turns it on.
_ATTRIBUTES: Final = {
    "rolcanlogin": "LOGIN",
    "rolsuper": "SUPERUSER",
    "rolcreatedb": "CREATEDB",
    "rolcreaterole": "CREATEROLE",
    "rolreplication": "REPLICATION",
    "rolbypassrls": "BYPASSRLS",
    "rolinherit": "INHERIT",
}
_LEAST_PRIVILEGE: Final = {
    "rolcanlogin": True,
    "rolsuper": False,
    "rolcreatedb": False,
    "rolcreaterole": False,
    "rolreplication": False,
    "rolbypassrls": False,
    "rolinherit": True,
}


@dataclass(frozen=True)
class RoleDeclaration:
    """One role the resource declares: its class, its name, its password (never shown)."""

    kind: RoleKind
    username: str
    password: str = field(repr=False)

    def __post_init__(self) -> None:
        if self.kind not in ROLE_KINDS:
            raise SecurityError(
                "InvalidRole", f"role class {self.kind!r} unknown; allowed: {', '.join(ROLE_KINDS)}"
            )
        if not isinstance(self.username, str) or not _ROLE_NAME.match(self.username):
            raise SecurityError(
                "InvalidRole",
                f"{self.kind} role name {self.username!r} is not allowed: use lower-case "
                "letters, digits and '_', not starting with a digit, at most 63 characters",
            )
        if self.username.startswith("pg_"):
            raise SecurityError(
                "InvalidRole",
                f"{self.kind} role name {self.username!r} is reserved: names starting with "
                "pg_ belong to PostgreSQL",
            )
        if not isinstance(self.password, str) or not self.password:
            raise SecurityError(
                "InvalidRole", f"{self.kind} role {self.username} has an empty password"
            )


DriftKind = Literal[
    "missing_role",
    "attributes",
    "password",
    "membership",
    "ownership",
    "missing_grant",
    "extra_grant",
]


@dataclass(frozen=True)
class RoleDrift:
    """One difference between the database and the declaration, as a sentence."""

    kind: DriftKind
    role: str
    message: str

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class RolesReport:
    """What ``apply_roles`` changed; role names and sentences only, never a password."""

    created: tuple[str, ...] = ()
    passwords_set: tuple[str, ...] = ()
    """Roles that got a new SCRAM verifier: the pooler's userlist must follow."""
    changes: tuple[str, ...] = ()
    """Every other repair, one sentence each (attributes, memberships, owners, grants)."""
    passwords_checked: bool = True
    """False when the admin role cannot read stored verifiers (not a superuser): then
    existing roles' passwords were neither checked nor changed."""

    @property
    def changed(self) -> bool:
        return bool(self.created or self.passwords_set or self.changes)


@dataclass(frozen=True)
class _Finding:
    drift: RoleDrift
    repair: tuple[sql.Composed, ...]


@dataclass(frozen=True)
class _RoleRow:
    attributes: Mapping[str, bool]
    verifier: str | None


def _validate(admin: ConnInfo, roles: Sequence[RoleDeclaration]) -> dict[str, RoleDeclaration]:
    by_name: dict[str, RoleDeclaration] = {}
    kinds: set[str] = set()
    for role in roles:
        if role.kind in kinds:
            raise SecurityError(
                "InvalidRole",
                f"role class {role.kind} is declared twice; declare each at most once",
            )
        if role.username in by_name:
            raise SecurityError(
                "InvalidRole",
                f"role name {role.username} is used by both {by_name[role.username].kind} and "
                f"{role.kind}; each role class needs its own role",
            )
        if role.username == admin.user and role.kind != "owner":
            raise SecurityError(
                "InvalidRole",
                f"{role.kind} role {role.username} is the role dbkeeper connects as; only the "
                "owner role may be that one",
            )
        kinds.add(role.kind)
        by_name[role.username] = role
    return by_name


def _desired_attributes(role: RoleDeclaration, admin: ConnInfo) -> dict[str, bool]:
    if role.kind != "owner":
        return dict(_LEAST_PRIVILEGE)
    # dbkeeper may connect as the owner (which then needs CREATEROLE to manage the other
    # roles); only login, and no superuser unless dbkeeper itself is that role, are kept.
    desired = {"rolcanlogin": True}
    if role.username != admin.user:
        desired["rolsuper"] = False
    return desired


def _can_read_verifiers(conn: Connection) -> bool:
    row = conn.execute("SELECT has_table_privilege('pg_authid', 'SELECT')").fetchone()
    return bool(row and row[0])


def _read_roles(
    conn: Connection, names: Sequence[str], with_verifiers: bool
) -> dict[str, _RoleRow]:
    columns = sql.SQL(", ").join(sql.Identifier(column) for column in _ATTRIBUTES)
    query = (
        sql.SQL("SELECT rolname, {}, rolpassword FROM pg_authid WHERE rolname = ANY(%s)")
        if with_verifiers
        else sql.SQL("SELECT rolname, {}, NULL FROM pg_roles WHERE rolname = ANY(%s)")
    ).format(columns)
    rows: dict[str, _RoleRow] = {}
    for row in conn.execute(query, (list(names),)).fetchall():
        values = row[1 : 1 + len(_ATTRIBUTES)]
        rows[str(row[0])] = _RoleRow(
            attributes=dict(zip(_ATTRIBUTES, (bool(v) for v in values), strict=True)),
            verifier=None if row[-1] is None else str(row[-1]),
        )
    return rows


def _attribute_sql(desired: Mapping[str, bool]) -> sql.Composed:
    return sql.SQL(" ").join(
        sql.SQL(keyword if desired[column] else f"NO{keyword}")
        for column, keyword in _ATTRIBUTES.items()
        if column in desired
    )


def _role_findings(
    conn: Connection, admin: ConnInfo, declared: Mapping[str, RoleDeclaration], with_verifiers: bool
) -> list[_Finding]:
    """Missing roles, wrong attributes, passwords that do not match their Secret."""
    rows = _read_roles(conn, list(declared), with_verifiers)
    findings: list[_Finding] = []
    for name, role in declared.items():
        desired = _desired_attributes(role, admin)
        ident = sql.Identifier(name)
        row = rows.get(name)
        if row is None:
            # The shared verifier: a pooler of this role then holds the very same string.
            verifier = shared_verifier(name, role.password)
            create = sql.SQL("CREATE ROLE {} WITH {} PASSWORD {}").format(
                ident, _attribute_sql(desired), sql.Literal(verifier)
            )
            drift = RoleDrift("missing_role", name, f"{role.kind} role {name} does not exist")
            findings.append(_Finding(drift, (create,)))
            continue
        wrong = {c: v for c, v in desired.items() if row.attributes[c] != v}
        if wrong:
            have = ", ".join(
                (_ATTRIBUTES[c] if row.attributes[c] else f"NO{_ATTRIBUTES[c]}")
                for c in sorted(wrong)
            )
            want = " ".join(
                _ATTRIBUTES[c] if wrong[c] else f"NO{_ATTRIBUTES[c]}" for c in sorted(wrong)
            )
            drift = RoleDrift(
                "attributes", name, f"{role.kind} role {name} has {have}; declared: {want}"
            )
            alter = sql.SQL("ALTER ROLE {} WITH {}").format(ident, _attribute_sql(wrong))
            findings.append(_Finding(drift, (alter,)))
        if with_verifiers and not (
            row.verifier is not None and verifier_matches(role.password, row.verifier)
        ):
            drift = RoleDrift(
                "password",
                name,
                f"the password of {role.kind} role {name} does not match its Secret",
            )
            alter = sql.SQL("ALTER ROLE {} WITH PASSWORD {}").format(
                ident, sql.Literal(shared_verifier(name, role.password))
            )
            findings.append(_Finding(drift, (alter,)))
    return findings


_MEMBERSHIPS = """
SELECT m.rolname, g.rolname
  FROM pg_auth_members am
  JOIN pg_roles g ON g.oid = am.roleid
  JOIN pg_roles m ON m.oid = am.member
 WHERE m.rolname = ANY(%s)
"""


def _membership_findings(
    conn: Connection, declared: Mapping[str, RoleDeclaration]
) -> list[_Finding]:
    """Memberships of non-owner roles: each one lends the role another role's privileges."""
    names = [name for name, role in declared.items() if role.kind != "owner"]
    findings: list[_Finding] = []
    for member, group in conn.execute(_MEMBERSHIPS, (names,)).fetchall():
        kind = declared[str(member)].kind
        drift = RoleDrift(
            "membership",
            str(member),
            f"{kind} role {member} is a member of role {group}, which the declaration "
            "does not allow",
        )
        revoke = sql.SQL("REVOKE {} FROM {}").format(
            sql.Identifier(str(group)), sql.Identifier(str(member))
        )
        findings.append(_Finding(drift, (revoke,)))
    return findings


_NOT_EXTENSION_MEMBER = """
NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = {catalog}::regclass
            AND e.objid = {oid} AND e.deptype = 'e')
"""
_OWNERS = f"""
SELECT 'SCHEMA', n.nspname::text, quote_ident(n.nspname), pg_get_userbyid(n.nspowner)::text
  FROM pg_namespace n WHERE n.nspname = ANY(%(schemas)s)
UNION ALL
SELECT CASE c.relkind WHEN 'S' THEN 'SEQUENCE' WHEN 'v' THEN 'VIEW'
                      WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'f' THEN 'FOREIGN TABLE'
                      ELSE 'TABLE' END,
       n.nspname || '.' || c.relname, quote_ident(n.nspname) || '.' || quote_ident(c.relname),
       pg_get_userbyid(c.relowner)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = ANY(%(schemas)s) AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
   AND {_NOT_EXTENSION_MEMBER.format(catalog="'pg_class'", oid="c.oid")}
   -- a sequence behind a column belongs to its table and changes owner with it
   AND NOT (c.relkind = 'S' AND EXISTS (
        SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
           AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')))
UNION ALL
SELECT CASE p.prokind WHEN 'p' THEN 'PROCEDURE' ELSE 'FUNCTION' END,
       p.oid::regprocedure::text, p.oid::regprocedure::text, pg_get_userbyid(p.proowner)
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname = ANY(%(schemas)s) AND p.prokind IN ('f', 'p')
   AND {_NOT_EXTENSION_MEMBER.format(catalog="'pg_proc'", oid="p.oid")}
"""


def _ownership_findings(
    conn: Connection, declared: Mapping[str, RoleDeclaration], privileges: PrivilegeDeclaration
) -> list[_Finding]:
    """Objects of the managed schemas the owner role does not own.

    Without a declared owner role only objects owned by another declared role are
    reported (an owner can do anything to its objects); they go to the schema's owner.
    """
    owner = next((name for name, role in declared.items() if role.kind == "owner"), None)
    rows = conn.execute(_OWNERS, {"schemas": list(privileges.schemas)}).fetchall()
    schema_owners = {str(name): str(who) for kind, name, _, who in rows if kind == "SCHEMA"}
    findings: list[_Finding] = []
    for kind, name, quoted, current in rows:
        current = str(current)
        if owner is not None:
            if current == owner:
                continue
            new_owner = owner
        elif current in declared:
            new_owner = schema_owners.get(str(name).partition(".")[0], "")
            if not new_owner or new_owner in declared:
                continue
        else:
            continue
        drift = RoleDrift(
            "ownership",
            new_owner,
            f"{str(kind).lower()} {name} is owned by {current}, not by {new_owner}",
        )
        alter = sql.SQL("ALTER {} {} OWNER TO {}").format(
            sql.SQL(str(kind)), sql.SQL(str(quoted)), sql.Identifier(new_owner)
        )
        findings.append(_Finding(drift, (alter,)))
    return findings


def _grant_drifts(
    missing: set[Grant], extra: set[Grant], kinds: Mapping[str, RoleKind]
) -> list[RoleDrift]:
    def who(grant: Grant) -> str:
        kind = kinds.get(grant.grantee)
        return f"{kind} role " if kind else ""

    drifts = [
        RoleDrift(
            "extra_grant",
            g.grantee,
            f"extra grant: {who(g)}{g.describe()}, which the declaration does not grant",
        )
        for g in sorted(extra)
    ]
    drifts += [
        RoleDrift(
            "missing_grant",
            g.grantee,
            f"missing grant: {who(g)}{g.grantee} lacks {g.privilege} on {g.target.describe()}",
        )
        for g in sorted(missing)
    ]
    return drifts


def _grant_diff(
    conn: Connection,
    database: str,
    privileges: PrivilegeDeclaration,
    managed: Mapping[str, RoleKind],
) -> tuple[set[Grant], set[Grant]]:
    """(missing, extra) grants of the existing ``managed`` roles."""
    actual = read_grants(conn, grant_scope(privileges), managed)
    wanted = desired_grants(conn, database, privileges, managed)
    return wanted - actual, actual - wanted


def _existing_managed(
    conn: Connection, declared: Mapping[str, RoleDeclaration]
) -> dict[str, RoleKind]:
    rows = conn.execute("SELECT rolname FROM pg_roles WHERE rolname = ANY(%s)", (list(declared),))
    existing = {str(row[0]) for row in rows}
    return {name: role.kind for name, role in declared.items() if name in existing}


def _failed(action: str, exc: psycopg.Error) -> SecurityError:
    reason: SecurityReason = (
        "PermissionDenied"
        if isinstance(exc, psycopg.errors.InsufficientPrivilege)
        else "ApplyFailed"
    )
    return SecurityError(reason, f"{action} failed, nothing was changed: {first_line(exc)}")


def check_roles(
    admin: ConnInfo,
    database: str,
    roles: Sequence[RoleDeclaration],
    privileges: PrivilegeDeclaration,
) -> list[RoleDrift]:
    """Every difference between ``database`` and the declaration; changes nothing."""
    declared = _validate(admin, roles)
    with admin_connection(admin, database) as conn:
        try:
            with_verifiers = _can_read_verifiers(conn)
            findings = _role_findings(conn, admin, declared, with_verifiers)
            findings += _membership_findings(conn, declared)
            findings += _ownership_findings(conn, declared, privileges)
            managed = _existing_managed(conn, declared)
            missing, extra = _grant_diff(conn, database, privileges, managed)
        except psycopg.Error as exc:
            raise _failed("reading the roles and privileges", exc) from None
        finally:
            conn.rollback()
    drifts = [finding.drift for finding in findings]
    return drifts + _grant_drifts(missing, extra, managed)


def apply_roles(
    admin: ConnInfo,
    database: str,
    roles: Sequence[RoleDeclaration],
    privileges: PrivilegeDeclaration,
) -> RolesReport:
    """Make ``database`` match the declaration, in one transaction; idempotent.

    ``admin`` must be able to create roles and grant on the managed objects (a superuser,
    or the schemas' owner with CREATEROLE); only a superuser can also check stored
    passwords. On any failure nothing is changed and :class:`SecurityError` says why.
    """
    declared = _validate(admin, roles)
    created: list[str] = []
    passwords: list[str] = []
    changes: list[str] = []
    with admin_connection(admin, database) as conn:
        try:
            take_lock(conn)
            with_verifiers = _can_read_verifiers(conn)
            findings = _role_findings(conn, admin, declared, with_verifiers)
            findings += _membership_findings(conn, declared)
            for finding in findings:
                for statement in finding.repair:
                    conn.execute(statement)
                drift = finding.drift
                if drift.kind == "missing_role":
                    created.append(drift.role)
                    passwords.append(drift.role)
                elif drift.kind == "password":
                    passwords.append(drift.role)
                else:
                    changes.append(f"repaired: {drift.message}")
            for finding in _ownership_findings(conn, declared, privileges):
                for statement in finding.repair:
                    conn.execute(statement)
                changes.append(f"repaired: {finding.drift.message}")
            managed = _existing_managed(conn, declared)
            _, extra = _grant_diff(conn, database, privileges, managed)
            for grant in sorted(extra):
                conn.execute(grant.revoke_sql())
                changes.append(f"revoked: {grant.describe()}")
            # Revoking with CASCADE may have taken more than the extras: diff again.
            missing, _ = _grant_diff(conn, database, privileges, managed)
            for grant in sorted(missing):
                conn.execute(grant.grant_sql())
                changes.append(
                    f"granted: {grant.grantee} {grant.privilege} on {grant.target.describe()}"
                )
        except psycopg.Error as exc:
            conn.rollback()
            raise _failed(f"applying the roles of {database}", exc) from None
    return RolesReport(
        created=tuple(created),
        passwords_set=tuple(passwords),
        changes=tuple(changes),
        passwords_checked=with_verifiers,
    )


def role_verifiers(admin: ConnInfo, usernames: Sequence[str]) -> dict[str, str]:
    """The stored SCRAM verifiers of ``usernames``: what the pooler's userlist must hold.

    Empty when ``admin`` may not read pg_authid (only superusers and roles granted
    SELECT on it may). Roles without a SCRAM verifier are left out.
    """
    with admin_connection(admin, admin.dbname) as conn:
        try:
            if not _can_read_verifiers(conn):
                return {}
            rows = conn.execute(
                "SELECT rolname, rolpassword FROM pg_authid WHERE rolname = ANY(%s)",
                (list(usernames),),
            ).fetchall()
        except psycopg.Error as exc:
            raise _failed("reading the stored verifiers", exc) from None
    return {
        str(name): str(verifier)
        for name, verifier in rows
        if verifier is not None and str(verifier).startswith("SCRAM-SHA-256$")
    }

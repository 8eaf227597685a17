"""Privileges as sets of grants: what a database holds, what a declaration wants, the SQL between.

A :class:`Grant` is one privilege of one grantee on one object. The actual grants are
read from the catalog ACLs (``aclexplode``, with the built-in defaults where an ACL was
never set), the desired ones are computed from a :class:`PrivilegeDeclaration` and the
objects that exist; their difference is the drift, and GRANT/REVOKE statements repair it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from psycopg import sql

from dbkeeper.security.connection import Connection
from dbkeeper.security.privileges import PrivilegeDeclaration, RoleKind
from dbkeeper.vocabulary import BOOKKEEPING_SCHEMA, HISTORY_TABLE, VERSION_TABLE

PUBLIC = "PUBLIC"
ObjectKind = Literal["DATABASE", "SCHEMA", "TABLE", "SEQUENCE", "COLUMN", "FUNCTION"]


@dataclass(frozen=True, order=True)
class ObjectRef:
    """A database object that privileges are held on."""

    kind: ObjectKind
    name: str
    """Database or schema name, ``schema.table``/``schema.sequence``, or a function's
    signature as PostgreSQL prints it (``audit.verify_chain()``)."""
    column: str = ""

    def describe(self) -> str:
        if self.kind == "COLUMN":
            return f"column {self.column} of table {self.name}"
        return f"{self.kind.lower()} {self.name}"

    def target(self) -> sql.Composable:
        """The ``ON ...`` part of GRANT/REVOKE."""
        if self.kind in ("TABLE", "SEQUENCE", "COLUMN"):
            schema, _, name = self.name.partition(".")
            kind = "SEQUENCE" if self.kind == "SEQUENCE" else "TABLE"
            return sql.SQL("{} {}").format(sql.SQL(kind), sql.Identifier(schema, name))
        if self.kind == "FUNCTION":
            # A signature PostgreSQL printed (regprocedure), identifiers already quoted.
            return sql.SQL("FUNCTION {}").format(sql.SQL(self.name))
        return sql.SQL("{} {}").format(sql.SQL(self.kind), sql.Identifier(self.name))


@dataclass(frozen=True, order=True)
class Grant:
    """``grantee`` holds ``privilege`` on ``target`` (with grant option when ``grantable``)."""

    grantee: str
    target: ObjectRef
    privilege: str
    grantable: bool = False

    def describe(self) -> str:
        option = " with grant option" if self.grantable else ""
        return f"{self.grantee} has {self.privilege}{option} on {self.target.describe()}"

    def _grantee_sql(self) -> sql.Composable:
        return sql.SQL(PUBLIC) if self.grantee == PUBLIC else sql.Identifier(self.grantee)

    def _privilege_sql(self) -> sql.Composable:
        if self.target.kind == "COLUMN":
            return sql.SQL("{} ({})").format(
                sql.SQL(self.privilege), sql.Identifier(self.target.column)
            )
        return sql.SQL(self.privilege)

    def grant_sql(self) -> sql.Composed:
        return sql.SQL("GRANT {} ON {} TO {}").format(
            self._privilege_sql(), self.target.target(), self._grantee_sql()
        )

    def revoke_sql(self) -> sql.Composed:
        # CASCADE: privileges this grantee passed on with a grant option go too.
        return sql.SQL("REVOKE {} ON {} FROM {} CASCADE").format(
            self._privilege_sql(), self.target.target(), self._grantee_sql()
        )


# Every query yields (kind, name, column, grantee, privilege, grantable); oid 0 is PUBLIC.
_GRANTEE = "CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END"
_ACTUAL_GRANTS = f"""
SELECT 'DATABASE', d.datname::text, '', {_GRANTEE}, a.privilege_type, a.is_grantable
  FROM pg_database d, aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) a
 WHERE d.datname = current_database()
UNION ALL
SELECT 'SCHEMA', n.nspname::text, '', {_GRANTEE}, a.privilege_type, a.is_grantable
  FROM pg_namespace n, aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) a
 WHERE n.nspname = ANY(%(schemas)s)
UNION ALL
SELECT CASE WHEN c.relkind = 'S' THEN 'SEQUENCE' ELSE 'TABLE' END,
       n.nspname || '.' || c.relname, '', {_GRANTEE}, a.privilege_type, a.is_grantable
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace,
       aclexplode(coalesce(c.relacl, acldefault(
           CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END::"char", c.relowner))) a
 WHERE n.nspname = ANY(%(schemas)s) AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
UNION ALL
SELECT 'COLUMN', n.nspname || '.' || c.relname, att.attname::text, {_GRANTEE},
       a.privilege_type, a.is_grantable
  FROM pg_attribute att
  JOIN pg_class c ON c.oid = att.attrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace,
       aclexplode(att.attacl) a
 WHERE n.nspname = ANY(%(schemas)s) AND att.attacl IS NOT NULL AND NOT att.attisdropped
UNION ALL
SELECT 'FUNCTION', p.oid::regprocedure::text, '', {_GRANTEE}, a.privilege_type, a.is_grantable
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace,
       aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
 WHERE n.nspname = ANY(%(schemas)s)
"""

_TABLE_SEQUENCES = """
SELECT tn.nspname || '.' || t.relname, sn.nspname || '.' || s.relname
  FROM pg_class s
  JOIN pg_namespace sn ON sn.oid = s.relnamespace
  JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = s.oid
                  AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
  JOIN pg_class t ON t.oid = d.refobjid
  JOIN pg_namespace tn ON tn.oid = t.relnamespace
 WHERE s.relkind = 'S' AND tn.nspname = ANY(%(schemas)s)
"""

_EXISTING = """
SELECT 'SCHEMA', n.nspname::text FROM pg_namespace n WHERE n.nspname = ANY(%(schemas)s)
UNION ALL
SELECT 'TABLE', n.nspname || '.' || c.relname
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = ANY(%(schemas)s) AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
"""


# The migrator's bookkeeping, which ``dbkeeper wait`` reads with an application's own
# credentials: every app and readonly role may read it, whatever the set declares.
BOOKKEEPING_READERS: frozenset[RoleKind] = frozenset({"app", "readonly"})
_BOOKKEEPING = """
SELECT 'SCHEMA', n.nspname::text FROM pg_namespace n WHERE n.nspname = %(bookkeeping)s
UNION ALL
SELECT 'TABLE', n.nspname || '.' || c.relname
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind = 'r' AND (
       (n.nspname = %(bookkeeping)s AND c.relname = %(history)s)
    OR (n.nspname = ANY(%(schemas)s) AND c.relname = %(version)s))
"""


def grant_scope(declaration: PrivilegeDeclaration) -> list[str]:
    """The schemas whose grants dbkeeper reads: the declared ones and its bookkeeping."""
    return [*declaration.schemas, BOOKKEEPING_SCHEMA]


def _bookkeeping_grants(
    conn: Connection, declaration: PrivilegeDeclaration, managed: Mapping[str, RoleKind]
) -> set[Grant]:
    params = {
        "bookkeeping": BOOKKEEPING_SCHEMA,
        "history": HISTORY_TABLE,
        "version": VERSION_TABLE,
        "schemas": list(declaration.schemas),
    }
    objects = [(str(kind), str(name)) for kind, name in conn.execute(_BOOKKEEPING, params)]
    readers = [role for role, kind in managed.items() if kind in BOOKKEEPING_READERS]
    return {
        Grant(role, ObjectRef(kind, name), "USAGE" if kind == "SCHEMA" else "SELECT")  # type: ignore[arg-type]
        for role in readers
        for kind, name in objects
    }


def _keep(kind: str, grantee: str, managed: Mapping[str, RoleKind]) -> bool:
    """Whether a grant is dbkeeper's business.

    Declared roles are managed everywhere except the owner's grants on what it owns
    (ownership is checked on its own); PUBLIC is managed on schemas and relations.
    """
    if grantee == PUBLIC:
        return kind in ("SCHEMA", "TABLE", "SEQUENCE", "COLUMN")
    role_kind = managed.get(grantee)
    if role_kind is None:
        return False
    return role_kind != "owner" or kind == "DATABASE"


def read_grants(
    conn: Connection, schemas: Iterable[str], managed: Mapping[str, RoleKind]
) -> set[Grant]:
    """The grants held by ``managed`` roles (name -> class) and PUBLIC, from the catalog."""
    rows = conn.execute(_ACTUAL_GRANTS, {"schemas": list(schemas)}).fetchall()
    grants: set[Grant] = set()
    for kind, name, column, grantee, privilege, grantable in rows:
        if _keep(str(kind), str(grantee), managed):
            target = ObjectRef(kind, str(name), str(column))  # type: ignore[arg-type]
            grants.add(Grant(str(grantee), target, str(privilege), bool(grantable)))
    return grants


def desired_grants(
    conn: Connection,
    database: str,
    declaration: PrivilegeDeclaration,
    managed: Mapping[str, RoleKind],
) -> set[Grant]:
    """What ``declaration`` grants the ``managed`` roles on the objects that exist now.

    Declared tables that do not exist yet (a database at an earlier revision) are left
    out: they get their grants once a migration creates them. App and readonly roles
    also read the migrator's bookkeeping (:data:`BOOKKEEPING_READERS`).
    """
    params = {"schemas": list(declaration.schemas)}
    existing = {(str(kind), str(name)) for kind, name in conn.execute(_EXISTING, params)}
    sequences: dict[str, list[str]] = {}
    for table, sequence in conn.execute(_TABLE_SEQUENCES, params):
        sequences.setdefault(str(table), []).append(str(sequence))
    wanted: set[Grant] = set()
    for role, kind in managed.items():
        declared = declaration.for_kind(kind)
        for privilege in declared.database:
            wanted.add(Grant(role, ObjectRef("DATABASE", database), privilege))
        for schema, privileges in declared.schemas.items():
            if ("SCHEMA", schema) in existing:
                wanted |= {Grant(role, ObjectRef("SCHEMA", schema), p) for p in privileges}
        for table, privileges in declared.tables.items():
            if ("TABLE", table) in existing:
                wanted |= {Grant(role, ObjectRef("TABLE", table), p) for p in privileges}
        for table, privileges in declared.sequences.items():
            for sequence in sequences.get(table, []):
                wanted |= {Grant(role, ObjectRef("SEQUENCE", sequence), p) for p in privileges}
    return wanted | _bookkeeping_grants(conn, declaration, managed)

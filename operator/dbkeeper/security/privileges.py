"""A migration set's privilege declaration: what each role class may do (privileges.yaml).

The file sits next to the set's ``env.py``. It names the managed schemas, groups of
tables, and per role class (owner, app, readonly, auditor) the privileges on the
database, schemas, tables and the sequences behind those tables. Anything a declared
role (or PUBLIC) holds in the managed schemas beyond this is an extra grant.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import yaml

from dbkeeper.security.errors import SecurityError
from dbkeeper.vocabulary import ROLE_KINDS as ROLE_KINDS
from dbkeeper.vocabulary import RoleKind as RoleKind

PRIVILEGES_FILE: Final = "privileges.yaml"


DATABASE_PRIVILEGES: Final = frozenset({"CONNECT", "CREATE", "TEMPORARY"})
SCHEMA_PRIVILEGES: Final = frozenset({"USAGE", "CREATE"})
TABLE_PRIVILEGES: Final = frozenset(
    {"SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER"}
)
SEQUENCE_PRIVILEGES: Final = frozenset({"USAGE", "SELECT", "UPDATE"})

_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_$]{0,62}$")


@dataclass(frozen=True)
class RolePrivileges:
    """What one role class may hold; tables are schema-qualified (``public.patients``)."""

    database: frozenset[str] = frozenset()
    schemas: Mapping[str, frozenset[str]] = field(default_factory=dict)
    tables: Mapping[str, frozenset[str]] = field(default_factory=dict)
    sequences: Mapping[str, frozenset[str]] = field(default_factory=dict)
    """Privileges on the sequences behind each named table's identity/serial columns."""


@dataclass(frozen=True)
class PrivilegeDeclaration:
    """A migration set's declaration, checked and with table groups expanded."""

    source: Path
    schemas: tuple[str, ...]
    table_groups: Mapping[str, tuple[str, ...]]
    roles: Mapping[RoleKind, RolePrivileges]
    read_audited: tuple[str, ...] = ()
    """Tables whose reads by the application role are audited (``read_audit``: a group)."""

    def for_kind(self, kind: RoleKind) -> RolePrivileges:
        """A role class's privileges; a class the file leaves out may hold nothing."""
        return self.roles.get(kind, RolePrivileges())


class _Reader:
    """Checks one parsed file, naming the offending field in every error."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, where: str, problem: str) -> SecurityError:
        return SecurityError("InvalidDeclaration", f"{self.path}: {where} {problem}")

    def mapping(self, value: object, where: str) -> Mapping[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
            raise self.fail(where, "must be a mapping of names to values")
        return value

    def names(self, value: object, where: str) -> list[str]:
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise self.fail(where, "must be a list of names")
        return list(value)

    def privileges(self, value: object, where: str, allowed: frozenset[str]) -> frozenset[str]:
        names = [name.upper() for name in self.names(value, where)]
        unknown = sorted(set(names) - allowed)
        if unknown:
            raise self.fail(
                where,
                f"has unknown privilege {', '.join(unknown)}; "
                f"allowed: {', '.join(sorted(allowed))}",
            )
        return frozenset(names)

    def schemas(self, raw: Mapping[str, Any]) -> tuple[str, ...]:
        schemas = self.names(raw.get("schemas"), "schemas")
        if not schemas:
            raise self.fail("schemas", "must name at least one schema")
        for name in schemas:
            if not _IDENTIFIER.match(name):
                raise self.fail("schemas", f"has {name!r}, which is not a plain schema name")
        return tuple(dict.fromkeys(schemas))

    def table_groups(
        self, raw: Mapping[str, Any], schemas: tuple[str, ...]
    ) -> dict[str, tuple[str, ...]]:
        groups: dict[str, tuple[str, ...]] = {}
        for group, tables in self.mapping(raw.get("tables"), "tables").items():
            where = f"tables.{group}"
            names = self.names(tables, where)
            for table in names:
                schema, _, name = table.partition(".")
                if not (_IDENTIFIER.match(schema) and _IDENTIFIER.match(name)):
                    raise self.fail(where, f"has {table!r}; write tables as schema.table")
                if schema not in schemas:
                    raise self.fail(
                        where, f"has {table!r} outside the managed schemas ({', '.join(schemas)})"
                    )
            groups[group] = tuple(dict.fromkeys(names))
        return groups

    def by_group(
        self,
        value: object,
        where: str,
        groups: Mapping[str, tuple[str, ...]],
        allowed: frozenset[str],
    ) -> dict[str, frozenset[str]]:
        result: dict[str, frozenset[str]] = {}
        for group, privileges in self.mapping(value, where).items():
            if group not in groups:
                raise self.fail(
                    where, f"names table group {group!r}; defined groups: {', '.join(groups)}"
                )
            granted = self.privileges(privileges, f"{where}.{group}", allowed)
            for table in groups[group]:
                result[table] = result.get(table, frozenset()) | granted
        return result

    def role(
        self,
        kind: RoleKind,
        value: object,
        schemas: tuple[str, ...],
        groups: Mapping[str, tuple[str, ...]],
    ) -> RolePrivileges:
        where = f"roles.{kind}"
        raw = self.mapping(value, where)
        known = {"database", "schemas", "tables", "sequences"}
        if kind == "owner":
            # The owner owns every managed object; object grants would mean nothing.
            known = {"database"}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise self.fail(
                where, f"has unknown key {', '.join(unknown)}; allowed: {', '.join(sorted(known))}"
            )
        schema_grants: dict[str, frozenset[str]] = {}
        for schema, privileges in self.mapping(raw.get("schemas"), f"{where}.schemas").items():
            if schema not in schemas:
                raise self.fail(
                    f"{where}.schemas",
                    f"names schema {schema!r}; managed schemas: {', '.join(schemas)}",
                )
            schema_grants[schema] = self.privileges(
                privileges, f"{where}.schemas.{schema}", SCHEMA_PRIVILEGES
            )
        database = raw.get("database")
        return RolePrivileges(
            database=(
                self.privileges(database, f"{where}.database", DATABASE_PRIVILEGES)
                if database is not None
                else frozenset()
            ),
            schemas=schema_grants,
            tables=self.by_group(raw.get("tables"), f"{where}.tables", groups, TABLE_PRIVILEGES),
            sequences=self.by_group(
                raw.get("sequences"), f"{where}.sequences", groups, SEQUENCE_PRIVILEGES
            ),
        )


def parse_privileges(text: str, source: Path) -> PrivilegeDeclaration:
    """A declaration from the YAML ``text`` of ``source``; raises :class:`SecurityError`."""
    reader = _Reader(source)
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise reader.fail("", f"is not valid YAML: {exc}") from None
    document = reader.mapping(raw, "the document")
    keys = ("version", "schemas", "tables", "roles", "read_audit")
    unknown = sorted(set(document) - set(keys))
    if unknown:
        raise reader.fail(
            "the document", f"has unknown key {', '.join(unknown)}; allowed: {', '.join(keys)}"
        )
    if document.get("version") != 1:
        raise reader.fail("version", "must be 1")
    schemas = reader.schemas(document)
    groups = reader.table_groups(document, schemas)
    roles_raw = reader.mapping(document.get("roles"), "roles")
    unknown_kinds = sorted(set(roles_raw) - set(ROLE_KINDS))
    if unknown_kinds:
        raise reader.fail(
            "roles",
            f"has unknown role class {', '.join(unknown_kinds)}; allowed: {', '.join(ROLE_KINDS)}",
        )
    roles = {
        kind: reader.role(kind, roles_raw[kind], schemas, groups)
        for kind in ROLE_KINDS
        if kind in roles_raw
    }
    audited = document.get("read_audit")
    if audited is not None and (not isinstance(audited, str) or audited not in groups):
        raise reader.fail(
            "read_audit", f"must name one of the table groups ({', '.join(sorted(groups))})"
        )
    return PrivilegeDeclaration(
        source=source,
        schemas=schemas,
        table_groups=groups,
        roles=roles,
        read_audited=groups[audited] if audited is not None else (),
    )


def load_privileges(migration_set_path: Path) -> PrivilegeDeclaration:
    """The declaration in ``<migration set folder>/privileges.yaml``."""
    path = migration_set_path / PRIVILEGES_FILE
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise SecurityError(
            "InvalidDeclaration",
            f"{path} not found: the migration set declares no privileges, so dbkeeper "
            "cannot manage its roles",
        ) from None
    return parse_privileges(text, path)

"""Render a :class:`~dbkeeper.types.catalog.Catalog` as one TypeScript module for
Drizzle ORM (``drizzle-orm/pg-core``).

A pure function of the catalog and where it came from: the same catalog always gives
the same bytes, so a committed module can be compared with a fresh one (``dbkeeper
types typescript --check``). Tables of ``public`` are ``pgTable``; tables of another
schema hang from its ``pgSchema``. Every table also gets its row types,
``<Table>Row`` (what a select returns) and ``<Table>Insert`` (what an insert takes).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from dbkeeper.types.allowed_values import allowed_values
from dbkeeper.types.catalog import (
    Catalog,
    CheckConstraint,
    Column,
    EnumType,
    ForeignKey,
    Index,
    IndexKey,
    Table,
)
from dbkeeper.types.drizzle_columns import UnmappableType, column_builder
from dbkeeper.types.naming import Names, column_keys, member, pascal, top_level

DEFAULT_SCHEMA = "public"
_SELF = "t"  # the parameter of each table's constraint callback
_TEXT_TYPES = frozenset({"text", "varchar", "bpchar"})
_NUMBER_TYPES = frozenset({"int2", "int4", "float4", "float8"})
_STRING_LITERAL = re.compile(r"^'((?:[^']|'')*)'::[A-Za-z_][\w .\"]*$")
_NUMBER_LITERAL = re.compile(r"^-?\d+(?:\.\d+)?$")
_CONSTRAINT_SUFFIXES = (" NOT VALID", " NO INHERIT")
_DEFAULT_ACTION = "no action"  # Drizzle's default too: not written


class UnmappableColumn(Exception):
    """A column that cannot be declared; the message names it and its type."""


@dataclass(frozen=True)
class Origin:
    """Where the catalog was read: the migration set and revision of the database."""

    migration_set: str
    revision: str | None


@dataclass
class _Module:
    """What the module being written needs: its imports and its top-level names."""

    core: set[str] = field(default_factory=set)
    uses_sql: bool = False
    names: Names = field(default_factory=Names)
    tables: dict[tuple[str, str], str] = field(default_factory=dict)
    enums: dict[tuple[str, str], str] = field(default_factory=dict)
    schemas: dict[str, str] = field(default_factory=dict)

    def sql(self, expression: str) -> str:
        self.uses_sql = True
        escaped = expression.replace("\\", "\\\\").replace("`", "\\`").replace("${", "\\${")
        return f"sql`{escaped}`"

    def call(self, function: str) -> str:
        self.core.add(function)
        return function

    def schema(self, name: str) -> str:
        if name not in self.schemas:
            variable = self.names.claim(top_level(name, "Schema"), f"schema {name}")
            self.schemas[name] = variable
        return self.schemas[name]


def _string(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _header(origin: Origin) -> str:
    at = f"revision {origin.revision}" if origin.revision else "base (no revision applied)"
    return (
        f"// The tables of migration set {origin.migration_set} at {at}, for Drizzle ORM.\n"
        "// Written by `dbkeeper types typescript` from the database's catalog: do not edit.\n"
        "// Regenerate it after each migration; `--check` exits 1 while it is stale.\n"
    )


def _enum_declaration(module: _Module, enum: EnumType) -> str:
    variable = module.names.claim(top_level(enum.name, "Enum"), f"enum {enum.schema}.{enum.name}")
    module.enums[(enum.schema, enum.name)] = variable
    labels = ", ".join(_string(label) for label in enum.labels)
    if enum.schema == DEFAULT_SCHEMA:
        maker = module.call("pgEnum")
    else:
        maker = f"{module.schema(enum.schema)}.enum"
    return f"export const {variable} = {maker}({_string(enum.name)}, [{labels}]);\n"


def _literal_default(column: Column, default: str) -> str | None:
    """``default`` as a TypeScript value when it is a plain literal of the column's type."""
    if column.type.dimensions:
        return None
    kind = column.type.name if column.type.kind != "e" else "enum"
    if kind == "bool" and default in ("true", "false"):
        return default
    if kind in _NUMBER_TYPES and _NUMBER_LITERAL.match(default):
        return default
    literal = _STRING_LITERAL.match(default)
    if (kind in _TEXT_TYPES or kind == "enum") and literal is not None:
        return _string(literal[1].replace("''", "'"))
    return None


def _allowed(table: Table, column: Column) -> tuple[str, ...] | None:
    if column.type.dimensions or column.type.name not in _TEXT_TYPES:
        return None
    allowed: tuple[str, ...] | None = None
    for check in table.checks:
        values = allowed_values(check.definition, column.name)
        if values is not None:
            allowed = values if allowed is None else tuple(v for v in allowed if v in values)
    return allowed


def _column(module: _Module, table: Table, column: Column, key: str) -> str:
    try:
        builder = column_builder(
            column.type, module.enums.get((column.type.schema, column.type.name))
        )
    except UnmappableType as exc:
        raise UnmappableColumn(
            f"column {table.qualified}.{column.name} has type {exc}, which dbkeeper cannot "
            "declare for Drizzle ORM; change the column's type, or name only the other "
            "schemas with --schema"
        ) from None
    if builder.function not in module.enums.values():
        module.call(builder.function)
    chain = [builder.call(column.name), *([".array()"] * column.type.dimensions)]
    allowed = _allowed(table, column)
    if allowed is not None:
        chain.append(f".$type<{' | '.join(_string(value) for value in allowed)}>()")
    primary = table.primary_key
    if primary is not None and primary.columns == (column.name,):
        chain.append(".primaryKey()")
    elif column.not_null:
        chain.append(".notNull()")
    if column.identity == "always":
        chain.append(".generatedAlwaysAsIdentity()")
    elif column.identity == "by default":
        chain.append(".generatedByDefaultAsIdentity()")
    elif column.generated is not None:
        chain.append(f".generatedAlwaysAs({module.sql(column.generated)})")
    elif column.default is not None:
        literal = _literal_default(column, column.default)
        chain.append(f".default({literal if literal is not None else module.sql(column.default)})")
    return f"    {key}: {''.join(chain)},\n"


def _columns_of(keys: dict[str, str], names: Iterable[str], owner: str = _SELF) -> str:
    return ", ".join(member(owner, keys[name]) for name in names)


def _foreign_key(
    module: _Module, table: Table, keys: dict[str, str], foreign: ForeignKey, catalog: Catalog
) -> str:
    target = next(
        (
            t
            for t in catalog.tables
            if (t.schema, t.name) == (foreign.target_schema, foreign.target_table)
        ),
        None,
    )
    if target is None:
        raise UnmappableColumn(
            f"foreign key {foreign.name} of {table.qualified} refers to "
            f"{foreign.target_schema}.{foreign.target_table}, which is not generated; "
            f"add its schema with --schema {foreign.target_schema}"
        )
    target_keys = column_keys([c.name for c in target.columns])
    owner = _SELF if target is table else module.tables[(target.schema, target.name)]
    text = (
        f"{module.call('foreignKey')}({{ name: {_string(foreign.name)}, "
        f"columns: [{_columns_of(keys, foreign.columns)}], "
        f"foreignColumns: [{_columns_of(target_keys, foreign.target_columns, owner)}] }})"
    )
    if foreign.on_delete != _DEFAULT_ACTION:
        text += f".onDelete({_string(foreign.on_delete)})"
    if foreign.on_update != _DEFAULT_ACTION:
        text += f".onUpdate({_string(foreign.on_update)})"
    return text


def _check(module: _Module, check: CheckConstraint) -> str:
    expression = check.definition.removeprefix("CHECK ")
    for suffix in _CONSTRAINT_SUFFIXES:
        expression = expression.removesuffix(suffix)
    return f"{module.call('check')}({_string(check.name)}, {module.sql(expression)})"


def _index_key(module: _Module, keys: dict[str, str], key: IndexKey, method: str) -> str:
    if key.column is None:
        return module.sql(key.expression)
    text = member(_SELF, keys[key.column])
    if method != "btree":
        return text
    if key.descending:  # DESC puts nulls first unless told otherwise
        return text + (".desc()" if key.nulls_first else ".desc().nullsLast()")
    return text + (".asc().nullsFirst()" if key.nulls_first else "")


def _index(module: _Module, keys: dict[str, str], index: Index) -> str:
    maker = module.call("uniqueIndex" if index.unique else "index")
    elements = ", ".join(_index_key(module, keys, key, index.method) for key in index.keys)
    if index.method == "btree":
        text = f"{maker}({_string(index.name)}).on({elements})"
    else:
        text = f"{maker}({_string(index.name)}).using({_string(index.method)}, {elements})"
    if index.predicate is not None:
        text += f".where({module.sql(index.predicate)})"
    return text


def _constraints(
    module: _Module, table: Table, keys: dict[str, str], catalog: Catalog
) -> list[str]:
    entries: list[str] = []
    primary = table.primary_key
    if primary is not None and len(primary.columns) > 1:
        entries.append(
            f"{module.call('primaryKey')}({{ name: {_string(primary.name)}, "
            f"columns: [{_columns_of(keys, primary.columns)}] }})"
        )
    entries += [_foreign_key(module, table, keys, fk, catalog) for fk in table.foreign_keys]
    for unique in table.uniques:
        columns = _columns_of(keys, unique.columns)
        text = f"{module.call('unique')}({_string(unique.name)}).on({columns})"
        entries.append(text + (".nullsNotDistinct()" if unique.nulls_not_distinct else ""))
    entries += [_check(module, check) for check in table.checks]
    entries += [_index(module, keys, index) for index in table.indexes]
    return entries


def _table_variable(module: _Module, table: Table) -> str:
    name = table.name if table.schema == DEFAULT_SCHEMA else f"{table.schema}_{table.name}"
    variable = module.names.claim(top_level(name), f"table {table.qualified}")
    module.tables[(table.schema, table.name)] = variable
    return variable


def _table(module: _Module, table: Table, catalog: Catalog) -> str:
    variable = module.tables[(table.schema, table.name)]
    keys = column_keys([column.name for column in table.columns])
    if table.schema == DEFAULT_SCHEMA:
        maker = module.call("pgTable")
    else:
        maker = f"{module.schema(table.schema)}.table"
    columns = "".join(_column(module, table, c, keys[c.name]) for c in table.columns)
    constraints = _constraints(module, table, keys, catalog)
    text = f"export const {variable} = {maker}(\n  {_string(table.name)},\n  {{\n{columns}  }},\n"
    if constraints:
        body = "".join(f"    {entry},\n" for entry in constraints)
        text += f"  ({_SELF}) => [\n{body}  ],\n"
    type_name = pascal(variable)
    return (
        f"{text});\n"
        f"export type {type_name}Row = typeof {variable}.$inferSelect;\n"
        f"export type {type_name}Insert = typeof {variable}.$inferInsert;\n"
    )


def _imports(module: _Module) -> str:
    lines = ['import { sql } from "drizzle-orm";\n'] if module.uses_sql else []
    if module.core:
        names = "".join(f"  {name},\n" for name in sorted(module.core))
        lines.append(f'import {{\n{names}}} from "drizzle-orm/pg-core";\n')
    return "".join(lines)


def render_module(catalog: Catalog, origin: Origin) -> str:
    """The TypeScript module declaring every table of ``catalog``.

    Raises :class:`UnmappableColumn` for a column whose type has no declaration, and
    :class:`~dbkeeper.types.naming.NameClash` when two objects would share a name.
    """
    module = _Module()
    for table in catalog.tables:
        _table_variable(module, table)
    enums = [_enum_declaration(module, enum) for enum in catalog.enums]
    tables = [_table(module, table, catalog) for table in catalog.tables]
    schemas = [
        f"export const {variable} = {module.call('pgSchema')}({_string(name)});\n"
        for name, variable in sorted(module.schemas.items())
    ]
    sections = [_header(origin), _imports(module), "".join(schemas), "".join(enums), *tables]
    return "\n".join(section for section in sections if section)

"""The tables of a migrated database as typed values, read from PostgreSQL's catalog.

What an application sees of its schema: tables (ordinary and partitioned, not their
partitions), their columns with types, defaults and identity, primary keys, foreign
keys, unique constraints, CHECK constraints and indexes. Views, sequences and functions
are not read. The migrator's own bookkeeping (the ``dbkeeper`` schema and every
``alembic_version`` table) is left out: applications never write it, and ``dbkeeper
wait`` reads it without types.

Everything is sorted here (schemas, tables, constraints and indexes by name; columns in
table order), so the same catalog always gives equal values.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from dbkeeper.vocabulary import BOOKKEEPING_SCHEMA, VERSION_TABLE

if TYPE_CHECKING:
    import psycopg
    from psycopg.rows import TupleRow

Identity = Literal["always", "by default"]
ReferentialAction = Literal["no action", "restrict", "cascade", "set null", "set default"]

_ACTIONS: dict[str, ReferentialAction] = {
    "a": "no action",
    "r": "restrict",
    "c": "cascade",
    "n": "set null",
    "d": "set default",
}
_IDENTITIES: dict[str, Identity] = {"a": "always", "d": "by default"}
# pg_index.indoption bits per key column.
_DESC, _NULLS_FIRST = 1, 2


@dataclass(frozen=True)
class ColumnType:
    """A column's type: the element type for arrays, with its modifiers decoded."""

    name: str
    """``pg_type.typname`` of the (element) type: ``int8``, ``timestamptz``, an enum's name."""
    schema: str
    """The schema of the (element) type: ``pg_catalog`` for built-in types."""
    kind: str
    """``pg_type.typtype``: ``b`` base, ``e`` enum, ``d`` domain, ``c`` composite, ``r`` range."""
    formatted: str
    """``format_type()``, as PostgreSQL spells it: ``numeric(10,2)``, ``text[]``."""
    modifier: int
    """``atttypmod`` (-1 when none)."""
    dimensions: int
    """0 for a scalar, else the number of array dimensions (at least 1)."""


@dataclass(frozen=True)
class Column:
    name: str
    type: ColumnType
    not_null: bool
    default: str | None
    """The default expression as PostgreSQL prints it (``now()``, ``0``, ``'a'::text``)."""
    identity: Identity | None
    generated: str | None
    """The expression of a ``GENERATED ALWAYS AS (…) STORED`` column."""


@dataclass(frozen=True)
class PrimaryKey:
    name: str
    columns: tuple[str, ...]


@dataclass(frozen=True)
class ForeignKey:
    name: str
    columns: tuple[str, ...]
    target_schema: str
    target_table: str
    target_columns: tuple[str, ...]
    on_delete: ReferentialAction
    on_update: ReferentialAction


@dataclass(frozen=True)
class UniqueConstraint:
    name: str
    columns: tuple[str, ...]
    nulls_not_distinct: bool


@dataclass(frozen=True)
class CheckConstraint:
    name: str
    columns: tuple[str, ...]
    definition: str
    """``pg_get_constraintdef()``: ``CHECK ((kind = ANY (ARRAY[…])))``."""


@dataclass(frozen=True)
class IndexKey:
    column: str | None
    """The column, or ``None`` for an expression."""
    expression: str
    """The column's name or the expression, as ``pg_get_indexdef()`` prints it."""
    descending: bool
    nulls_first: bool


@dataclass(frozen=True)
class Index:
    name: str
    unique: bool
    method: str
    keys: tuple[IndexKey, ...]
    predicate: str | None


@dataclass(frozen=True)
class Table:
    schema: str
    name: str
    columns: tuple[Column, ...]
    primary_key: PrimaryKey | None
    foreign_keys: tuple[ForeignKey, ...]
    uniques: tuple[UniqueConstraint, ...]
    checks: tuple[CheckConstraint, ...]
    indexes: tuple[Index, ...]

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"


@dataclass(frozen=True)
class EnumType:
    schema: str
    name: str
    labels: tuple[str, ...]


@dataclass(frozen=True)
class Catalog:
    tables: tuple[Table, ...]
    enums: tuple[EnumType, ...]


_SYSTEM_SCHEMAS = (
    "n.nspname NOT IN ('pg_catalog', 'information_schema') "
    "AND n.nspname NOT LIKE 'pg\\_toast%%' AND n.nspname NOT LIKE 'pg\\_temp\\_%%'"
)
_SCHEMAS = f"""
SELECT n.nspname FROM pg_namespace n
 WHERE {_SYSTEM_SCHEMAS} AND n.nspname <> %(bookkeeping)s
 ORDER BY n.nspname
"""
_TABLES = """
SELECT c.oid, n.nspname, c.relname
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = ANY(%(schemas)s) AND c.relkind IN ('r', 'p') AND NOT c.relispartition
   AND c.relname <> %(version)s
 ORDER BY n.nspname, c.relname
"""
_COLUMNS = """
SELECT a.attrelid, a.attname, a.attnotnull, a.attndims, format_type(a.atttypid, a.atttypmod),
       a.atttypmod, et.typname, etn.nspname, et.typtype::text, t.typcategory = 'A',
       CASE WHEN a.attgenerated = '' THEN pg_get_expr(d.adbin, d.adrelid) END,
       a.attidentity::text,
       CASE WHEN a.attgenerated <> '' THEN pg_get_expr(d.adbin, d.adrelid) END
  FROM pg_attribute a
  JOIN pg_type t ON t.oid = a.atttypid
  JOIN pg_type et ON et.oid = CASE WHEN t.typcategory = 'A' AND t.typelem <> 0
                                   THEN t.typelem ELSE t.oid END
  JOIN pg_namespace etn ON etn.oid = et.typnamespace
  LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
 WHERE a.attrelid = ANY(%(tables)s) AND a.attnum > 0 AND NOT a.attisdropped
 ORDER BY a.attrelid, a.attnum
"""
# Key columns in key order; the referenced columns of a foreign key likewise.
_CONSTRAINTS = """
SELECT c.conrelid, c.conname, c.contype::text,
       ARRAY(SELECT a.attname::text FROM unnest(c.conkey) WITH ORDINALITY k(num, pos)
               JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.num
              ORDER BY k.pos),
       tn.nspname, tc.relname,
       ARRAY(SELECT a.attname::text FROM unnest(c.confkey) WITH ORDINALITY k(num, pos)
               JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.num
              ORDER BY k.pos),
       c.confdeltype::text, c.confupdtype::text, pg_get_constraintdef(c.oid),
       -- indnullsnotdistinct is new in PostgreSQL 15; through jsonb, older servers read NULL
       (to_jsonb(i) ->> 'indnullsnotdistinct')::boolean
  FROM pg_constraint c
  LEFT JOIN pg_class tc ON tc.oid = c.confrelid
  LEFT JOIN pg_namespace tn ON tn.oid = tc.relnamespace
  LEFT JOIN pg_index i ON i.indexrelid = c.conindid AND c.contype = 'u'
 WHERE c.conrelid = ANY(%(tables)s) AND c.contype IN ('p', 'f', 'u', 'c')
 ORDER BY c.conrelid, c.conname
"""
# Indexes of their own: not the ones behind a primary key, unique or exclusion constraint.
_INDEXES = """
SELECT i.indrelid, ic.relname, i.indisunique, am.amname, pg_get_expr(i.indpred, i.indrelid),
       ARRAY(SELECT CASE WHEN i.indkey[k - 1] = 0 THEN NULL ELSE a.attname::text END
               FROM generate_series(1, i.indnkeyatts) k
               LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[k - 1]
              ORDER BY k),
       ARRAY(SELECT pg_get_indexdef(i.indexrelid, k, true)
               FROM generate_series(1, i.indnkeyatts) k ORDER BY k),
       ARRAY(SELECT i.indoption[k - 1]::int FROM generate_series(1, i.indnkeyatts) k ORDER BY k)
  FROM pg_index i
  JOIN pg_class ic ON ic.oid = i.indexrelid
  JOIN pg_am am ON am.oid = ic.relam
 WHERE i.indrelid = ANY(%(tables)s)
   AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid
                                                  AND c.conrelid = i.indrelid)
 ORDER BY i.indrelid, ic.relname
"""
_ENUM_LABELS = """
SELECT n.nspname, t.typname, e.enumlabel
  FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid
  JOIN pg_namespace n ON n.oid = t.typnamespace
 WHERE (n.nspname, t.typname) IN (SELECT * FROM unnest(%(schemas)s::text[], %(names)s::text[]))
 ORDER BY n.nspname, t.typname, e.enumsortorder
"""


def application_schemas(conn: psycopg.Connection[TupleRow]) -> list[str]:
    """Every schema of the database but PostgreSQL's own and dbkeeper's bookkeeping."""
    rows = conn.execute(_SCHEMAS, {"bookkeeping": BOOKKEEPING_SCHEMA}).fetchall()
    return [str(row[0]) for row in rows]


def _column(row: Sequence[Any]) -> Column:
    (_, name, not_null, ndims, formatted, modifier, type_name, type_schema, kind, is_array) = row[
        :10
    ]
    default, identity, generated = row[10:13]
    return Column(
        name=str(name),
        type=ColumnType(
            name=str(type_name),
            schema=str(type_schema),
            kind=str(kind),
            formatted=str(formatted),
            modifier=int(modifier),
            dimensions=max(int(ndims), 1) if is_array else 0,
        ),
        not_null=bool(not_null),
        default=None if default is None else str(default),
        identity=_IDENTITIES.get(str(identity or "")),
        generated=None if generated is None else str(generated),
    )


def _index(row: Sequence[Any]) -> Index:
    _, name, unique, method, predicate, columns, expressions, options = row
    keys = tuple(
        IndexKey(
            column=None if column is None else str(column),
            expression=str(expression),
            descending=bool(int(option) & _DESC),
            nulls_first=bool(int(option) & _NULLS_FIRST),
        )
        for column, expression, option in zip(columns, expressions, options, strict=True)
    )
    return Index(str(name), bool(unique), str(method), keys, predicate and str(predicate))


def read_catalog(conn: psycopg.Connection[TupleRow], schemas: Sequence[str]) -> Catalog:
    """The tables of ``schemas`` (never the bookkeeping ones) and the enums they use."""
    wanted = sorted(set(schemas) - {BOOKKEEPING_SCHEMA})
    tables = conn.execute(_TABLES, {"schemas": wanted, "version": VERSION_TABLE}).fetchall()
    oids = [int(row[0]) for row in tables]
    params = {"tables": oids}
    columns: dict[int, list[Column]] = defaultdict(list)
    for row in conn.execute(_COLUMNS, params):
        columns[int(row[0])].append(_column(row))
    primary: dict[int, PrimaryKey] = {}
    foreign: dict[int, list[ForeignKey]] = defaultdict(list)
    uniques: dict[int, list[UniqueConstraint]] = defaultdict(list)
    checks: dict[int, list[CheckConstraint]] = defaultdict(list)
    for row in conn.execute(_CONSTRAINTS, params):
        oid, name, kind, keys = int(row[0]), str(row[1]), str(row[2]), tuple(row[3] or ())
        if kind == "p":
            primary[oid] = PrimaryKey(name, keys)
        elif kind == "u":
            uniques[oid].append(UniqueConstraint(name, keys, bool(row[10])))
        elif kind == "c":
            checks[oid].append(CheckConstraint(name, keys, str(row[9])))
        else:
            foreign[oid].append(
                ForeignKey(
                    name=name,
                    columns=keys,
                    target_schema=str(row[4]),
                    target_table=str(row[5]),
                    target_columns=tuple(row[6]),
                    on_delete=_ACTIONS[str(row[7])],
                    on_update=_ACTIONS[str(row[8])],
                )
            )
    indexes: dict[int, list[Index]] = defaultdict(list)
    for row in conn.execute(_INDEXES, params):
        indexes[int(row[0])].append(_index(row))
    result = tuple(
        Table(
            schema=str(schema),
            name=str(name),
            columns=tuple(columns[oid]),
            primary_key=primary.get(oid),
            foreign_keys=tuple(foreign[oid]),
            uniques=tuple(uniques[oid]),
            checks=tuple(checks[oid]),
            indexes=tuple(indexes[oid]),
        )
        for oid, schema, name in ((int(r[0]), r[1], r[2]) for r in tables)
    )
    return Catalog(result, _enums(conn, result))


def _enums(conn: psycopg.Connection[TupleRow], tables: Sequence[Table]) -> tuple[EnumType, ...]:
    used = sorted(
        {(c.type.schema, c.type.name) for t in tables for c in t.columns if c.type.kind == "e"}
    )
    labels: dict[tuple[str, str], list[str]] = defaultdict(list)
    rows = conn.execute(
        _ENUM_LABELS, {"schemas": [s for s, _ in used], "names": [n for _, n in used]}
    )
    for schema, name, label in rows:
        labels[(str(schema), str(name))].append(str(label))
    return tuple(EnumType(schema, name, tuple(labels[(schema, name)])) for schema, name in used)

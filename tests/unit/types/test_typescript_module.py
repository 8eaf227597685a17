"""The module rendered from a catalog: names, keys, defaults, and refusals."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from dbkeeper.types.catalog import (
    Catalog,
    Column,
    ColumnType,
    ForeignKey,
    PrimaryKey,
    Table,
)
from dbkeeper.types.naming import NameClash, camel
from dbkeeper.types.typescript import Origin, UnmappableColumn, render_module

ORIGIN = Origin("clinic", "0003")
TEXT = ColumnType("text", "pg_catalog", "b", "text", -1, 0)
INT8 = ColumnType("int8", "pg_catalog", "b", "bigint", -1, 0)


def _column(name: str, column_type: ColumnType = TEXT, **fields: Any) -> Column:
    column = Column(name, column_type, not_null=False, default=None, identity=None, generated=None)
    return replace(column, **fields)


def _table(name: str, *columns: Column, schema: str = "public", **fields: Any) -> Table:
    table = Table(schema, name, columns, None, (), (), (), ())
    return replace(table, **fields)


def test_the_header_names_the_set_and_revision() -> None:
    text = render_module(Catalog((), ()), ORIGIN)

    assert text.startswith("// The tables of migration set clinic at revision 0003, for Drizzle")
    assert "base" in render_module(Catalog((), ()), Origin("clinic", None)).splitlines()[0]


def test_a_composite_primary_key_and_a_self_reference_use_the_table_itself() -> None:
    node = _table(
        "nodes",
        _column("tree", INT8, not_null=True),
        _column("id", INT8, not_null=True),
        _column("parent_id", INT8),
        primary_key=PrimaryKey("pk_nodes", ("tree", "id")),
        foreign_keys=(
            ForeignKey(
                "fk_parent",
                ("tree", "parent_id"),
                "public",
                "nodes",
                ("tree", "id"),
                "cascade",
                "no action",
            ),
        ),
    )

    text = render_module(Catalog((node,), ()), ORIGIN)

    assert 'primaryKey({ name: "pk_nodes", columns: [t.tree, t.id] })' in text
    assert (
        'foreignKey({ name: "fk_parent", columns: [t.tree, t.parentId], '
        'foreignColumns: [t.tree, t.id] }).onDelete("cascade"),'
    ) in text
    assert ".onUpdate(" not in text


def test_literal_defaults_are_values_and_other_defaults_are_sql() -> None:
    table = _table(
        "things",
        _column("label", default="'it''s'::text"),
        _column("flag", ColumnType("bool", "pg_catalog", "b", "boolean", -1, 0), default="true"),
        _column("count", ColumnType("int4", "pg_catalog", "b", "integer", -1, 0), default="0"),
        _column("made", ColumnType("timestamptz", "pg_catalog", "b", "x", -1, 0), default="now()"),
        _column("path", default="'a`b${c}\\d'::text || 'x'::text"),
    )

    text = render_module(Catalog((table,), ()), ORIGIN)

    assert 'label: text("label").default("it\'s"),' in text
    assert 'flag: boolean("flag").default(true),' in text
    assert 'count: integer("count").default(0),' in text
    assert ".default(sql`now()`)" in text
    assert ".default(sql`'a\\`b\\${c}\\\\d'::text || 'x'::text`)" in text
    assert text.count('import { sql } from "drizzle-orm";') == 1


def test_an_unmappable_column_names_schema_table_column_and_type() -> None:
    table = _table(
        "docs",
        _column("body", ColumnType("tsvector", "pg_catalog", "b", "tsvector", -1, 0)),
        schema="search",
    )

    with pytest.raises(UnmappableColumn) as raised:
        render_module(Catalog((table,), ()), ORIGIN)

    assert str(raised.value).startswith("column search.docs.body has type tsvector, ")


def test_a_foreign_key_to_a_table_left_out_is_refused_naming_its_schema() -> None:
    table = _table(
        "visits",
        _column("org_id", INT8),
        foreign_keys=(
            ForeignKey(
                "fk_org", ("org_id",), "directory", "orgs", ("id",), "no action", "no action"
            ),
        ),
    )

    with pytest.raises(UnmappableColumn, match="add its schema with --schema directory"):
        render_module(Catalog((table,), ()), ORIGIN)


def test_two_tables_with_the_same_typescript_name_are_refused() -> None:
    first = _table("audit_log", _column("id"))
    second = _table("log", _column("id"), schema="audit")

    with pytest.raises(NameClash, match="auditLog"):
        render_module(Catalog((first, second), ()), ORIGIN)


def test_columns_whose_camel_case_names_clash_keep_their_own_names() -> None:
    table = _table("pairs", _column("a_b"), _column("aB"))

    text = render_module(Catalog((table,), ()), ORIGIN)

    assert '"a_b": text("a_b"),' in text
    assert '"aB": text("aB"),' in text


@pytest.mark.parametrize(
    ("name", "camel_case"),
    [
        ("given_name", "givenName"),
        ("icd10_code", "icd10Code"),
        ("Odd Name", "oddName"),
        ("2fa", "_2fa"),
        ("__", "_"),
    ],
)
def test_camel_case(name: str, camel_case: str) -> None:
    assert camel(name) == camel_case


def test_a_table_named_like_a_reserved_word_gets_a_suffix() -> None:
    text = render_module(Catalog((_table("class", _column("id")),), ()), ORIGIN)

    assert "export const classTable = pgTable(" in text
    assert "export type ClassTableRow = typeof classTable.$inferSelect;" in text

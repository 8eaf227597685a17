"""How each PostgreSQL type is declared for Drizzle ORM, from its catalog entry alone."""

from __future__ import annotations

import pytest

from dbkeeper.types.catalog import ColumnType
from dbkeeper.types.drizzle_columns import UnmappableType, column_builder


def _type(name: str, formatted: str, modifier: int = -1, dimensions: int = 0) -> ColumnType:
    return ColumnType(name, "pg_catalog", "b", formatted, modifier, dimensions)


@pytest.mark.parametrize(
    ("column_type", "declared"),
    [
        (_type("int2", "smallint"), 'smallint("c")'),
        (_type("int4", "integer"), 'integer("c")'),
        (_type("int8", "bigint"), 'bigint("c", { mode: "bigint" })'),
        (_type("numeric", "numeric"), 'numeric("c")'),
        # numeric(10,2): ((10 << 16) | 2) + 4
        (
            _type("numeric", "numeric(10,2)", (10 << 16 | 2) + 4),
            'numeric("c", { precision: 10, scale: 2 })',
        ),
        (_type("float4", "real"), 'real("c")'),
        (_type("float8", "double precision"), 'doublePrecision("c")'),
        (_type("bool", "boolean"), 'boolean("c")'),
        (_type("text", "text"), 'text("c")'),
        (_type("varchar", "character varying(12)", 16), 'varchar("c", { length: 12 })'),
        (_type("varchar", "character varying"), 'varchar("c")'),
        (_type("bpchar", "character(1)", 5), 'char("c", { length: 1 })'),
        (_type("uuid", "uuid"), 'uuid("c")'),
        (_type("json", "json"), 'json("c")'),
        (_type("jsonb", "jsonb"), 'jsonb("c")'),
        (_type("date", "date"), 'date("c")'),
        (_type("timestamp", "timestamp without time zone"), 'timestamp("c")'),
        (
            _type("timestamp", "timestamp(3) without time zone", 3),
            'timestamp("c", { precision: 3 })',
        ),
        (
            _type("timestamptz", "timestamp with time zone"),
            'timestamp("c", { withTimezone: true })',
        ),
        (
            _type("timestamptz", "timestamp(0) with time zone", 0),
            'timestamp("c", { withTimezone: true, precision: 0 })',
        ),
        (_type("time", "time without time zone"), 'time("c")'),
        (
            _type("timetz", "time(2) with time zone", 2),
            'time("c", { withTimezone: true, precision: 2 })',
        ),
        (_type("interval", "interval"), 'interval("c")'),
        (_type("interval", "interval day", (8 << 16) | 0xFFFF), 'interval("c", { fields: "day" })'),
        (
            _type("interval", "interval hour to second(3)", (0x1C00 << 16) | 3),
            'interval("c", { fields: "hour to second", precision: 3 })',
        ),
        (_type("interval", "interval(6)", (0x7FFF << 16) | 6), 'interval("c", { precision: 6 })'),
        (_type("inet", "inet"), 'inet("c")'),
        (_type("cidr", "cidr"), 'cidr("c")'),
        (_type("macaddr", "macaddr"), 'macaddr("c")'),
        (_type("macaddr8", "macaddr8"), 'macaddr8("c")'),
        (_type("point", "point"), 'point("c", { mode: "xy" })'),
        (_type("line", "line"), 'line("c", { mode: "abc" })'),
        (_type("text", "text[]", dimensions=1), 'text("c")'),
    ],
)
def test_each_type_is_declared_with_its_modifiers(column_type: ColumnType, declared: str) -> None:
    assert column_builder(column_type).call("c") == declared


def test_an_enum_is_declared_with_its_pg_enum() -> None:
    mood = ColumnType("mood", "public", "e", "mood", -1, 0)

    assert column_builder(mood, "moodEnum").call("feeling") == 'moodEnum("feeling")'


@pytest.mark.parametrize(
    ("column_type", "named"),
    [
        (_type("tsvector", "tsvector"), "tsvector"),
        (_type("money", "money"), "money"),
        (_type("tsvector", "tsvector[]", dimensions=1), "tsvector[]"),
        (ColumnType("email", "public", "d", "email", -1, 0), "email"),
        (ColumnType("int4range", "pg_catalog", "r", "int4range", -1, 0), "int4range"),
        # A type of another schema that happens to share a built-in's name is not it.
        (ColumnType("text", "public", "b", "public.text", -1, 0), "public.text"),
    ],
)
def test_a_type_without_a_rule_is_unmappable_naming_the_type(
    column_type: ColumnType, named: str
) -> None:
    with pytest.raises(UnmappableType) as raised:
        column_builder(column_type)

    assert str(raised.value) == named


def test_a_column_name_is_written_as_a_string_literal() -> None:
    assert column_builder(_type("text", "text")).call('Odd "name"') == 'text("Odd \\"name\\"")'

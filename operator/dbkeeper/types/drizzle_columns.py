"""How a PostgreSQL column type is declared with Drizzle ORM's ``drizzle-orm/pg-core``.

One rule per type, keeping what PostgreSQL keeps: numeric precision and scale, varchar
and char lengths, time zones and fractional-second precision, interval fields, array
dimensions. ``bigint`` is read as a JavaScript ``bigint`` (no value is rounded) and
``numeric`` as a string (Drizzle's default: no value is rounded either). A type without
a rule is an :class:`UnmappableType`, never an ``any``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass

from dbkeeper.types.catalog import ColumnType

_NO_MODIFIER = -1
_VARHDRSZ = 4  # varchar, char and numeric modifiers count PostgreSQL's 4-byte header
_INTERVAL_FIELDS = re.compile(r"^interval ([a-z]+(?: to [a-z]+)?)")


class UnmappableType(Exception):
    """A column whose type has no Drizzle declaration here."""


@dataclass(frozen=True)
class Builder:
    """A pg-core column builder call: ``numeric("price", { precision: 10, scale: 2 })``."""

    function: str
    """The pg-core export to call (and import): ``numeric``."""
    options: tuple[tuple[str, str], ...] = ()
    """Option names and their TypeScript values, in the order they are written."""

    def call(self, column_name: str) -> str:
        name = json.dumps(column_name, ensure_ascii=False)
        if not self.options:
            return f"{self.function}({name})"
        options = ", ".join(f"{key}: {value}" for key, value in self.options)
        return f"{self.function}({name}, {{ {options} }})"


def _precision(modifier: int) -> tuple[tuple[str, str], ...]:
    return () if modifier == _NO_MODIFIER else (("precision", str(modifier)),)


def _length(modifier: int) -> tuple[tuple[str, str], ...]:
    return () if modifier == _NO_MODIFIER else (("length", str(modifier - _VARHDRSZ)),)


def _numeric(column: ColumnType) -> Builder:
    if column.modifier == _NO_MODIFIER:
        return Builder("numeric")
    packed = column.modifier - _VARHDRSZ
    precision, scale = (packed >> 16) & 0xFFFF, packed & 0xFFFF
    return Builder("numeric", (("precision", str(precision)), ("scale", str(scale))))


def _timestamp(with_zone: bool) -> Callable[[ColumnType], Builder]:
    def build(column: ColumnType) -> Builder:
        zone = (("withTimezone", "true"),) if with_zone else ()
        return Builder("timestamp", zone + _precision(column.modifier))

    return build


def _time(with_zone: bool) -> Callable[[ColumnType], Builder]:
    def build(column: ColumnType) -> Builder:
        zone = (("withTimezone", "true"),) if with_zone else ()
        return Builder("time", zone + _precision(column.modifier))

    return build


def _interval(column: ColumnType) -> Builder:
    fields = _INTERVAL_FIELDS.match(column.formatted)
    options: tuple[tuple[str, str], ...] = ()
    if fields is not None:
        options += (("fields", json.dumps(fields[1])),)
    precision = column.modifier & 0xFFFF if column.modifier != _NO_MODIFIER else 0xFFFF
    if precision != 0xFFFF:  # 0xFFFF: no precision given
        options += (("precision", str(precision)),)
    return Builder("interval", options)


def _plain(function: str, *options: tuple[str, str]) -> Callable[[ColumnType], Builder]:
    return lambda _: Builder(function, options)


_BUILT_IN: dict[str, Callable[[ColumnType], Builder]] = {
    "int2": _plain("smallint"),
    "int4": _plain("integer"),
    "int8": _plain("bigint", ("mode", '"bigint"')),
    "numeric": _numeric,
    "float4": _plain("real"),
    "float8": _plain("doublePrecision"),
    "bool": _plain("boolean"),
    "text": _plain("text"),
    "varchar": lambda column: Builder("varchar", _length(column.modifier)),
    "bpchar": lambda column: Builder("char", _length(column.modifier)),
    "uuid": _plain("uuid"),
    "json": _plain("json"),
    "jsonb": _plain("jsonb"),
    "date": _plain("date"),
    "timestamp": _timestamp(with_zone=False),
    "timestamptz": _timestamp(with_zone=True),
    "time": _time(with_zone=False),
    "timetz": _time(with_zone=True),
    "interval": _interval,
    "inet": _plain("inet"),
    "cidr": _plain("cidr"),
    "macaddr": _plain("macaddr"),
    "macaddr8": _plain("macaddr8"),
    "point": _plain("point", ("mode", '"xy"')),
    "line": _plain("line", ("mode", '"abc"')),
}

TYPE_NAMES = frozenset(_BUILT_IN)
"""The ``pg_catalog`` types with a rule (enums of any schema have one too)."""


def column_builder(column: ColumnType, enum_variable: str | None = None) -> Builder:
    """The builder of a column of type ``column``; an enum's is ``enum_variable``.

    Array dimensions are left to the caller (``.array()`` once per dimension).
    Raises :class:`UnmappableType` naming the type as PostgreSQL spells it.
    """
    if column.kind == "e" and enum_variable is not None:
        return Builder(enum_variable)
    rule = _BUILT_IN.get(column.name) if column.schema == "pg_catalog" else None
    if rule is None:
        element = column.formatted.removesuffix("[]" * column.dimensions)
        raise UnmappableType(f"{element}{'[]' * column.dimensions}")
    return rule(column)

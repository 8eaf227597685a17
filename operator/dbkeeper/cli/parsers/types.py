"""The parser of ``dbkeeper types typescript`` (handler: :mod:`dbkeeper.cli.types_commands`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from dbkeeper.cli.common import add_output_arg, deferred
from dbkeeper.json_shapes.types import TypesModuleJson

_HANDLERS = "dbkeeper.cli.types_commands"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "types", help="write or check an application's types, generated from the database"
    )
    languages = parser.add_subparsers(dest="types_language", metavar="LANGUAGE", required=True)
    typescript = languages.add_parser(
        "typescript",
        help="a Drizzle ORM schema module (drizzle-orm/pg-core) of the database's tables",
        description="Read the catalog of a migrated database and write one TypeScript module "
        "declaring its tables for Drizzle ORM: columns with their exact types, nullability "
        "and defaults, primary, foreign and unique keys, checks and indexes, and text columns "
        "a CHECK limits to a list as unions of string literals. The header names the "
        "migration set and revision. The migrator's bookkeeping (the dbkeeper schema, "
        "alembic_version) is left out. The same catalog gives the same bytes, so --check "
        "can guard a committed module in CI. A column of a type without a Drizzle "
        "declaration is an error naming it. With -o json, which needs --out or --check, "
        "one object describes the file written or checked.",
    )
    target = typescript.add_mutually_exclusive_group()
    target.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="FILE",
        help="write the module to FILE (default: print it on stdout)",
    )
    target.add_argument(
        "--check",
        type=Path,
        default=None,
        metavar="FILE",
        help="write nothing; exit 1 with one line when FILE differs from what the database "
        "gives now (it is stale), 0 when it is equal",
    )
    typescript.add_argument(
        "--schema",
        dest="schemas",
        action="append",
        default=[],
        metavar="NAME",
        help="a schema to declare (repeat for more); default: every schema but PostgreSQL's "
        "own and dbkeeper's",
    )
    typescript.add_argument(
        "--dsn",
        default=None,
        help="libpq connection string or URL; defaults to $DBKEEPER_DSN, then to libpq's "
        "PGHOST, PGPORT, PGDATABASE, PGUSER, PGPASSWORD",
    )
    add_output_arg(typescript, TypesModuleJson)
    typescript.set_defaults(handler=deferred(_HANDLERS, "run_typescript"))

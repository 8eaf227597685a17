"""Alembic environment of the healthcare migration set.

The migration engine passes an open connection, already inside the transaction it
commits once per revision, in ``config.attributes["connection"]``; an engine there is
used to open one; without either (ad hoc use, tools) an engine is built from
``sqlalchemy.url``. Offline mode renders SQL with
literal values, which is what ``dbkeeper plan`` lints. Only the set's own schemas
(``public`` and ``audit``) are compared and touched: the engine's history lives in the
``dbkeeper`` schema and is never part of this set.
"""

from __future__ import annotations

from typing import Any, Literal

from alembic import context
from sqlalchemy import create_engine, pool
from sqlalchemy.engine import Connection, Engine

from dbkeeper.healthcare.models import metadata

SET_SCHEMAS = frozenset({"public", "audit"})

config = context.config
target_metadata = metadata


def include_name(
    name: str | None,
    type_: Literal[
        "schema", "table", "column", "index", "unique_constraint", "foreign_key_constraint"
    ],
    parent_names: Any,
) -> bool:
    if type_ == "schema":
        # None is the default schema (public) during comparisons.
        return name is None or name in SET_SCHEMAS
    return True


def _configure_common() -> dict[str, Any]:
    return {
        "target_metadata": target_metadata,
        "include_schemas": True,
        "include_name": include_name,
        "compare_type": True,
    }


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url") or "postgresql+psycopg://",
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        **_configure_common(),
    )
    with context.begin_transaction():
        context.run_migrations()


def _run_with(connection: Connection) -> None:
    context.configure(connection=connection, **_configure_common())
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    given = config.attributes.get("connection")
    if isinstance(given, Connection):
        _run_with(given)
        return
    if isinstance(given, Engine):
        # Some tools (pytest-alembic) hand over an engine rather than a connection.
        with given.begin() as connection:
            _run_with(connection)
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError(
            "the healthcare migration set needs a connection: pass one in "
            "config.attributes['connection'] or set sqlalchemy.url"
        )
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            _run_with(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()

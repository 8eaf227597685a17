"""Facts about a database that a backup records and a drill checks again.

Schema revision (Alembic's ``alembic_version`` table, wherever it lives), exact row
counts of every user table, server version and encoding. Run inside one transaction,
they describe one snapshot.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

_USER_TABLES = """
SELECT n.nspname, c.relname
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r'
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\\_toast%'
  AND n.nspname NOT LIKE 'pg\\_temp\\_%'
  AND NOT EXISTS (
      -- tables of extensions are created by the extension, not restored from the dump
      SELECT 1 FROM pg_depend d
      WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
ORDER BY 1, 2
"""

_VERSION_TABLES = """
SELECT n.nspname
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relname = 'alembic_version' AND c.relkind = 'r'
ORDER BY n.nspname <> 'public', n.nspname
"""


def row_counts(conn: psycopg.Connection[tuple[object, ...]]) -> dict[str, int]:
    """``{"schema.table": exact count(*)}`` for every user table."""
    counts: dict[str, int] = {}
    for schema, table in conn.execute(_USER_TABLES).fetchall():
        query = sql.SQL("SELECT count(*) FROM {}.{}").format(
            sql.Identifier(str(schema)), sql.Identifier(str(table))
        )
        row = conn.execute(query).fetchone()
        counts[f"{schema}.{table}"] = int(str(row[0])) if row else 0
    return counts


def schema_revision(conn: psycopg.Connection[tuple[object, ...]]) -> str | None:
    """The Alembic revision(s) the database is at, or None when it has no version table.

    Several heads (branches) are joined with ``,`` in sorted order.
    """
    row = conn.execute(_VERSION_TABLES).fetchone()
    if row is None:
        return None
    query = sql.SQL("SELECT version_num FROM {}.alembic_version ORDER BY 1").format(
        sql.Identifier(str(row[0]))
    )
    versions = [str(r[0]) for r in conn.execute(query).fetchall()]
    return ",".join(versions) or None


def server_version(conn: psycopg.Connection[tuple[object, ...]]) -> str:
    row = conn.execute("SHOW server_version").fetchone()
    return str(row[0]) if row else "unknown"


def database_encoding(conn: psycopg.Connection[tuple[object, ...]]) -> str:
    row = conn.execute(
        "SELECT pg_encoding_to_char(encoding) FROM pg_database WHERE datname = current_database()"
    ).fetchone()
    return str(row[0]) if row else "UTF8"

"""Connections of the security layer: as the admin role, to one database, errors redacted."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from dbkeeper.conninfo import ConnInfo, redact
from dbkeeper.security.errors import SecurityError

Connection = psycopg.Connection[tuple[object, ...]]

# Serializes apply_roles / configure_read_audit runs on one database (timer and handler
# may overlap); an arbitrary constant distinct from the migration lock.
SECURITY_LOCK_KEY = 0x64626B_5345_43


def first_line(exc: BaseException) -> str:
    """libpq's or the server's message, first line, password hidden."""
    text = redact(str(exc)).strip().splitlines()
    return text[0] if text else type(exc).__name__


@contextmanager
def admin_connection(admin: ConnInfo, database: str) -> Iterator[Connection]:
    """A connection to ``database`` as ``admin``'s role (autocommit off)."""
    info = admin.with_database(database)
    try:
        conn = psycopg.connect(info.dsn())
    except psycopg.Error as exc:
        raise SecurityError(
            "DatabaseUnreachable",
            f"cannot connect to {info.describe()}: {first_line(exc)}",
        ) from None
    with conn:
        yield conn


def take_lock(conn: Connection) -> None:
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (SECURITY_LOCK_KEY,))

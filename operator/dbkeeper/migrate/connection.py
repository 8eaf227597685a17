"""Open connections to the database being migrated, turning failures into MigrationError.

An unreachable database is ``DatabaseUnreachable`` (the operator retries it later), and
libpq's error text is redacted so no password leaks into status or logs.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from dbkeeper.conninfo import ConnInfo, redact
from dbkeeper.migrate.errors import MigrationError


def unreachable(conninfo: ConnInfo, exc: BaseException) -> MigrationError:
    detail = redact(str(getattr(exc, "orig", None) or exc)).strip().splitlines()
    first = detail[0] if detail else type(exc).__name__
    return MigrationError(
        "DatabaseUnreachable",
        f"cannot connect to {conninfo.describe()}: {first}; check that the database is "
        "running and the credentials are right",
    )


def make_engine(conninfo: ConnInfo) -> sa.Engine:
    """A SQLAlchemy engine without a pool: every migration gets its own fresh session."""
    dsn = conninfo.dsn()
    return sa.create_engine(
        "postgresql+psycopg://",
        creator=lambda: psycopg.connect(dsn),
        poolclass=NullPool,
    )


@contextmanager
def sqlalchemy_connection(conninfo: ConnInfo) -> Iterator[sa.Connection]:
    engine = make_engine(conninfo)
    try:
        try:
            connection = engine.connect()
        except (sa.exc.OperationalError, sa.exc.InterfaceError, psycopg.Error) as exc:
            raise unreachable(conninfo, exc) from None
        with connection:
            yield connection
    finally:
        engine.dispose()

"""The settings of the session that migrates: bounded waits, and a server that notices a
lost client.

``lock_timeout`` and ``statement_timeout`` are set for the whole session, so the
engine's own bookkeeping (the history table, ``alembic_version``) is bounded like the
revisions are (each revision sets them again with ``SET LOCAL``; an online revision,
which runs in autocommit, with a plain ``SET``: :func:`outside_transaction`).

``client_connection_check_interval`` (PostgreSQL 14+) makes the server check, while a
statement runs, that the client is still there: a migrator killed with SIGKILL, or whose
pod was deleted, has its statement cancelled, its transaction rolled back and its locks
released within that interval, not at the end of a statement that may run for many
minutes. TCP keepalives do the same for a client whose machine vanished without closing
the connection.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import psycopg
import sqlalchemy as sa

from dbkeeper.conninfo import ConnInfo

LOST_CLIENT_CHECK = timedelta(seconds=2)
# A silent peer is given up after idle + interval * count seconds.
_KEEPALIVES = {"tcp_keepalives_idle": 10, "tcp_keepalives_interval": 5, "tcp_keepalives_count": 3}
_CHECK_INTERVAL_SINCE = (14,)  # PostgreSQL 14 added client_connection_check_interval
# How long a session whose client is gone may take to end before it is terminated.
_END_WAIT_SECONDS = 5.0
_END_POLL_SECONDS = 0.05


def milliseconds(value: timedelta) -> int:
    return max(0, round(value.total_seconds() * 1000))


def prepare_session(
    connection: sa.Connection, lock_timeout: timedelta, statement_timeout: timedelta
) -> int:
    """Set the session's timeouts and lost-client checks (one short transaction); the
    server process of the session (to find or end it from elsewhere)."""
    settings: dict[str, int | str] = {
        "lock_timeout": milliseconds(lock_timeout),
        "statement_timeout": milliseconds(statement_timeout),
        **_KEEPALIVES,
    }
    # The dialect read the server's version when it connected.
    if (connection.dialect.server_version_info or (0,)) >= _CHECK_INTERVAL_SINCE:
        settings["client_connection_check_interval"] = milliseconds(LOST_CLIENT_CHECK)
    with connection.begin():
        return int(str(_set(connection, settings, local=False, also="pg_backend_pid()")))


def _set(
    connection: sa.Connection, settings: dict[str, int | str], local: bool, also: str = "NULL"
) -> object:
    """Set every one of ``settings`` in one statement (one round trip), for the session
    or (``local``) for the current transaction only, as ``SET [LOCAL]`` does; the value of
    the expression ``also``, read in the same statement."""
    # Names are constants of this module and values integers: nothing to quote.
    calls = "".join(
        f", set_config('{name}', '{int(value)}', {'true' if local else 'false'})"
        for name, value in settings.items()
    )
    return connection.exec_driver_sql(f"SELECT {also}{calls}").scalar()


def set_local_timeouts(
    connection: sa.Connection, lock_timeout: timedelta, statement_timeout: timedelta
) -> None:
    """``SET LOCAL`` both timeouts in the open transaction (one round trip): whatever an
    earlier revision set for the session, this one is bounded as the move says."""
    settings: dict[str, int | str] = {
        "lock_timeout": milliseconds(lock_timeout),
        "statement_timeout": milliseconds(statement_timeout),
    }
    _set(connection, settings, local=True)


def set_timeouts(
    connection: sa.Connection, lock_timeout: timedelta, statement_timeout: timedelta
) -> None:
    """Set ``lock_timeout`` and ``statement_timeout`` for the rest of the session."""
    with connection.begin():
        connection.exec_driver_sql(f"SET lock_timeout = {milliseconds(lock_timeout)}")
        connection.exec_driver_sql(f"SET statement_timeout = {milliseconds(statement_timeout)}")


@contextmanager
def outside_transaction(
    connection: sa.Connection, lock_timeout: timedelta, statement_timeout: timedelta
) -> Iterator[None]:
    """The same session in autocommit while the block runs: each statement commits on its
    own (what ``CREATE INDEX CONCURRENTLY`` needs), the session-level timeouts set again
    (``SET LOCAL`` means nothing outside a transaction) and bounding each statement.

    The session stays the one that holds the migration lock; afterwards it is back in
    the isolation level it connected with.
    """
    if connection.in_transaction():
        connection.rollback()
    connection.execution_options(isolation_level="AUTOCOMMIT")
    try:
        set_timeouts(connection, lock_timeout, statement_timeout)
        yield
    finally:
        # A broken session is given up by the caller; there is nothing to restore.
        if not (connection.invalidated or connection.closed):
            if connection.in_transaction():
                connection.rollback()
            connection.execution_options(isolation_level=connection.default_isolation_level)


def end_session(conninfo: ConnInfo, pid: int, wait: float = _END_WAIT_SECONDS) -> bool:
    """Make sure the server session ``pid`` is gone; True once it is.

    A session whose client went away ends by itself (the server rolls back its
    transaction and releases its locks); if it is still there after ``wait`` seconds it
    is terminated, which does the same. False when the database cannot be reached to
    find out.
    """
    try:
        with psycopg.connect(conninfo.dsn(), autocommit=True) as connection:
            if _gone(connection, pid, wait):
                return True
            connection.execute("SELECT pg_terminate_backend(%s)", (pid,))
            return _gone(connection, pid, wait)
    except psycopg.Error:
        return False


def _gone(connection: psycopg.Connection[tuple[object, ...]], pid: int, wait: float) -> bool:
    deadline = time.monotonic() + wait
    while True:
        row = connection.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,))
        found = row.fetchone()
        if found is not None and found[0] == 0:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(_END_POLL_SECONDS)

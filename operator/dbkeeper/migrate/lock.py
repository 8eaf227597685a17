"""The advisory lock that keeps two dbkeeper runners from migrating one database at once.

It is a session-level ``pg_try_advisory_lock`` on a fixed key, taken on the very session
that runs the revisions. So the lock and the work live and die together: when the
migrator dies, the server ends its session (it notices the lost client within
:data:`~dbkeeper.migrate.session.LOST_CLIENT_CHECK`), which rolls back the revision in
progress and releases the lock in the same moment; no second migrator can start while
the first one's revision still runs. Advisory locks are per database, so migrations of
different databases never wait for each other.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import sqlalchemy as sa

# A fixed 64-bit key: the bytes of "dbkeeper" read as a signed big-endian integer.
MIGRATION_LOCK_KEY = int.from_bytes(b"dbkeeper", "big", signed=True)
_POLL_INTERVAL = 0.1
# While it waits, the migrator's session says so in ``pg_stat_activity.application_name``,
# so whoever looks at the server sees who is queued behind the lock.
WAITING_APPLICATION_NAME = "dbkeeper: waiting for the migration lock"


class LockBusy(Exception):
    """Another session held the migration lock for longer than the wait allowed."""

    def __init__(self, waited: float) -> None:
        super().__init__(f"the migration lock stayed taken for {waited:.1f}s")
        self.waited = waited


@contextmanager
def migration_lock(connection: sa.Connection, wait: timedelta) -> Iterator[None]:
    """Hold the migration lock on ``connection``'s session, waiting at most ``wait``.

    Raises :class:`LockBusy` when it stays taken. Each attempt is a transaction of its
    own; the lock, being session-level, outlives it.
    """
    started = time.monotonic()
    deadline = started + wait.total_seconds()
    if not _try_lock(connection):
        own_name = _set_application_name(connection, WAITING_APPLICATION_NAME)
        while not _try_lock(connection):
            if time.monotonic() >= deadline:
                raise LockBusy(time.monotonic() - started)
            time.sleep(_POLL_INTERVAL)
        _set_application_name(connection, own_name)
    try:
        yield
    finally:
        # A broken session has lost the lock already; closing it is enough.
        if not (connection.invalidated or connection.closed):
            with contextlib.suppress(sa.exc.SQLAlchemyError):
                if connection.in_transaction():
                    connection.rollback()
                with connection.begin():
                    connection.exec_driver_sql(f"SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})")


def _set_application_name(connection: sa.Connection, name: str) -> str:
    """Set the session's ``application_name`` to ``name``; the one it had before."""
    with connection.begin():
        before = connection.exec_driver_sql("SHOW application_name").scalar()
        connection.exec_driver_sql(
            "SELECT set_config('application_name', %(name)s, false)", {"name": name}
        )
    return str(before)


def _try_lock(connection: sa.Connection) -> bool:
    with connection.begin():
        value = connection.exec_driver_sql(
            f"SELECT pg_try_advisory_lock({MIGRATION_LOCK_KEY})"
        ).scalar()
    return bool(value)

"""The advisory lock that keeps two dbkeeper runners from migrating one database at once.

It is a session-level ``pg_try_advisory_lock`` on a fixed key, held on a connection of
its own for the whole move. Advisory locks are per database, so migrations of different
databases never wait for each other. When the session ends the server releases it too.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import psycopg

from dbkeeper.conninfo import ConnInfo
from dbkeeper.migrate.connection import connect_raw
from dbkeeper.migrate.errors import MigrationError

# A fixed 64-bit key: the bytes of "dbkeeper" read as a signed big-endian integer.
MIGRATION_LOCK_KEY = int.from_bytes(b"dbkeeper", "big", signed=True)
_POLL_INTERVAL = 0.1


@contextmanager
def migration_lock(conninfo: ConnInfo, wait: timedelta) -> Iterator[None]:
    """Hold the migration lock of ``conninfo``'s database, waiting at most ``wait``."""
    connection = connect_raw(conninfo, autocommit=True)
    try:
        deadline = time.monotonic() + wait.total_seconds()
        while not _try_lock(connection):
            if time.monotonic() >= deadline:
                raise MigrationError(
                    "LockBusy",
                    f"another migration of {conninfo.dbname} is running (waited "
                    f"{wait.total_seconds():g}s for it); try again when it has finished",
                )
            time.sleep(_POLL_INTERVAL)
        try:
            yield
        finally:
            # A broken session has lost the lock already; closing it is enough.
            with contextlib.suppress(psycopg.Error):
                connection.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_KEY,))
    finally:
        connection.close()


def _try_lock(connection: psycopg.Connection[tuple[object, ...]]) -> bool:
    row = connection.execute("SELECT pg_try_advisory_lock(%s)", (MIGRATION_LOCK_KEY,)).fetchone()
    return bool(row and row[0])

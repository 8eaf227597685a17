"""A client of PgBouncer's admin console (the virtual database ``pgbouncer``).

The console speaks only the simple query protocol, so commands go through psycopg's
client-side cursor. PAUSE is special: PgBouncer answers it only once every server
connection of the database is released, which can take as long as the longest open
transaction, so it is sent without blocking and abandoned (and undone) after a bound.
"""

from __future__ import annotations

import contextlib
import selectors
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import psycopg
from psycopg import pq
from psycopg.rows import dict_row

from dbkeeper.conninfo import ConnInfo, redact
from dbkeeper.pooler.settings import check_name
from dbkeeper.pooler.stats import (
    DatabaseStats,
    PooledDatabase,
    PoolStats,
    databases_from_rows,
    pools_from_rows,
    stats_from_rows,
)

ADMIN_DATABASE = "pgbouncer"


class AdminConsoleError(RuntimeError):
    """The admin console refused a command or could not be reached."""


class PauseTimeout(AdminConsoleError):
    """PAUSE did not finish within its bound; the pause was cancelled (RESUMEd)."""


@dataclass(frozen=True)
class ConfigEntry:
    key: str
    value: str
    default: str
    changeable: bool


class AdminConsole:
    """Commands of one PgBouncer's admin console, as an admin user with a password."""

    def __init__(self, conninfo: ConnInfo, connect_timeout: int = 5) -> None:
        self.conninfo = replace(conninfo, dbname=ADMIN_DATABASE, connect_timeout=connect_timeout)

    def __repr__(self) -> str:
        return f"AdminConsole({self.conninfo.describe()})"

    def _open(self) -> psycopg.Connection[dict[str, Any]]:
        try:
            return psycopg.connect(
                self.conninfo.dsn(),
                autocommit=True,
                prepare_threshold=None,
                cursor_factory=psycopg.ClientCursor,
                row_factory=dict_row,
            )
        except psycopg.Error as exc:
            raise AdminConsoleError(
                f"cannot reach the PgBouncer admin console at {self.conninfo.describe()}: "
                f"{redact(str(exc)).strip()}"
            ) from None

    @contextlib.contextmanager
    def _connect(self) -> Iterator[psycopg.Connection[dict[str, Any]]]:
        # close(), not the connection's own context exit: that would try to COMMIT
        # behind a PAUSE still in flight.
        conn = self._open()
        try:
            yield conn
        finally:
            conn.close()

    def _run(self, command: str) -> list[dict[str, Any]]:
        with self._connect() as conn:
            try:
                cur = conn.execute(command)
            except psycopg.Error as exc:
                raise AdminConsoleError(
                    f"PgBouncer refused {command.split()[0]}: {redact(str(exc)).strip()}"
                ) from None
            return cur.fetchall() if cur.description else []

    def show_pools(self) -> list[PoolStats]:
        return pools_from_rows(self._run("SHOW POOLS"))

    def show_stats(self) -> list[DatabaseStats]:
        return stats_from_rows(self._run("SHOW STATS"))

    def show_databases(self) -> list[PooledDatabase]:
        return databases_from_rows(self._run("SHOW DATABASES"))

    def show_config(self) -> dict[str, ConfigEntry]:
        entries: dict[str, ConfigEntry] = {}
        for row in self._run("SHOW CONFIG"):
            entry = ConfigEntry(
                key=str(row["key"]),
                value=str(row.get("value") or ""),
                default=str(row.get("default") or ""),
                changeable=str(row.get("changeable", "")).lower() in ("yes", "true", "1"),
            )
            entries[entry.key] = entry
        return entries

    def reload(self) -> None:
        """Re-read pgbouncer.ini and userlist.txt; connected clients stay connected."""
        self._run("RELOAD")

    def resume(self, database: str) -> None:
        """Let a paused database's clients proceed; resuming a running one is no error."""
        check_name("database", database)
        try:
            self._run(f"RESUME {database}")
        except AdminConsoleError as exc:
            if "already" not in str(exc).lower() and "not paused" not in str(exc).lower():
                raise

    def reconnect(self, database: str) -> None:
        """Close server connections of ``database`` once released (after a repoint)."""
        check_name("database", database)
        self._run(f"RECONNECT {database}")

    def pause(self, database: str, wait_seconds: float) -> None:
        """PAUSE ``database``: wait at most ``wait_seconds`` for its transactions to end.

        On timeout the pending PAUSE is abandoned, the database is RESUMEd so clients are
        not left waiting, and PauseTimeout is raised.
        """
        check_name("database", database)
        if wait_seconds <= 0:
            raise ValueError(f"wait_seconds must be positive, got {wait_seconds}")
        with self._connect() as conn:
            pgconn = conn.pgconn
            pgconn.send_query(f"PAUSE {database}".encode())
            while pgconn.flush():
                pass
            deadline = time.monotonic() + wait_seconds
            error = self._await_result(pgconn, deadline)
        if error is None:
            return
        if error == "timeout":
            self.resume(database)
            raise PauseTimeout(
                f"PAUSE {database} did not finish within {wait_seconds:g}s (transactions "
                "still open); the database was resumed"
            )
        raise AdminConsoleError(f"PgBouncer refused PAUSE {database}: {error}")

    @staticmethod
    def _await_result(pgconn: pq.abc.PGconn, deadline: float) -> str | None:
        """None when the command succeeded, ``"timeout"``, or the server's error text."""
        with selectors.DefaultSelector() as selector:
            selector.register(pgconn.socket, selectors.EVENT_READ)
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return "timeout"
                if not selector.select(timeout=remaining):
                    continue
                pgconn.consume_input()
                if pgconn.is_busy():
                    continue
                error: str | None = None
                while (result := pgconn.get_result()) is not None:
                    if result.status == pq.ExecStatus.FATAL_ERROR:
                        message = result.error_message.decode(errors="replace").strip()
                        error = redact(message) or "unknown error"
                return error

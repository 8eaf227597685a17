"""Wait until a database is at a revision: what an application runs before it starts.

It reads only what the migrator writes in the database itself, with the application's
own credentials and in read-only sessions, so it needs no Kubernetes API access:

- ``alembic_version`` says where the database is now;
- ``dbkeeper.migration_history`` says which set migrates it and, from the moves it
  recorded, which revision came before which.

The database is *at REV or later* when REV is the current revision or one of its
ancestors in the history. So a revision the history does not know yet is "not yet", and
a database moved back below REV waits again. A REV the history knows only from another
set is refused at once: no migration of this database will ever reach it.

What can change by waiting is waited for: a database that cannot be reached yet, a role
that does not exist yet, grants not applied yet (the operator grants ``SELECT`` on both
tables to the ``app`` and ``readonly`` roles it manages), a database never migrated.
The last such problem is named when the wait times out.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Literal

from dbkeeper.conninfo import ConnInfo, redact
from dbkeeper.vocabulary import BOOKKEEPING_SCHEMA, HISTORY_TABLE, VERSION_TABLE

if TYPE_CHECKING:
    import psycopg
    from psycopg.rows import TupleRow

# psycopg is imported where a connection is made: `dbkeeper wait --help` and the
# parser of every other command read this module's defaults without paying for it.

HISTORY = f"{BOOKKEEPING_SCHEMA}.{HISTORY_TABLE}"
DEFAULT_TIMEOUT = timedelta(minutes=10)
DEFAULT_POLL_INTERVAL = timedelta(seconds=2)
APPLICATION_NAME = "dbkeeper wait"
# At most this many moves are read to rebuild the chain; a set is far shorter.
_HISTORY_LIMIT = 100_000

WaitReason = Literal["Timeout", "OtherSet"]


class WaitError(Exception):
    """The revision was not reached: ``reason`` is ``Timeout`` or ``OtherSet``."""

    def __init__(self, reason: WaitReason, message: str) -> None:
        super().__init__(redact(message))
        self.reason = reason
        self.message = redact(message)


@dataclass(frozen=True)
class Position:
    """What one look at the database found."""

    revision: str | None
    """The current revision (``alembic_version``); ``None`` when unknown or at base."""
    migration_set: str | None
    """The set of the database's latest successful move; ``None`` before the first."""
    reached: bool
    problem: str | None = None
    """Why the database could not be read this time (then ``reached`` is false), as
    what follows "the database": ``is not reachable: …``."""

    def describe(self) -> str:
        """What follows "the database": ``is at revision 0002 of set healthcare``."""
        if self.problem is not None:
            return self.problem
        where = self.revision or "base (nothing applied)"
        of_set = f" of set {self.migration_set}" if self.migration_set else ""
        return f"is at revision {where}{of_set}"


_VISIBLE_VERSION_TABLE = (
    "SELECT n.nspname, quote_ident(n.nspname) || '.' || quote_ident(c.relname) "
    "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE c.relname = %s AND c.relkind = 'r' AND pg_table_is_visible(c.oid)"
)
_HISTORY_EXISTS = (
    "SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE n.nspname = %s AND c.relname = %s"
)
_MOVES = (
    f"SELECT migration_set, revision, from_revision, to_revision, direction FROM {HISTORY} "
    "WHERE outcome = 'succeeded' ORDER BY id DESC LIMIT %s"
)


def _readable(conn: psycopg.Connection[TupleRow], schema: str, table: str) -> bool:
    """Whether the session may read ``table`` (quoted, schema-qualified) in ``schema``."""
    row = conn.execute(
        "SELECT CASE WHEN has_schema_privilege(%s, 'USAGE') "
        "THEN has_table_privilege(%s, 'SELECT') ELSE false END",
        (schema, table),
    ).fetchone()
    return bool(row and row[0])


def _no_select(conn: psycopg.Connection[TupleRow], table: str) -> str:
    return (
        f"is not readable to role {conn.info.user}: it needs USAGE on the schema of {table} "
        "and SELECT on it (dbkeeper grants both to the app and readonly roles it manages)"
    )


def _reaches(current: str | None, revision: str, parents: dict[str, str | None]) -> bool:
    """Whether ``revision`` is ``current`` or one of its ancestors."""
    seen: set[str] = set()
    node = current
    while node is not None and node not in seen:
        if node == revision:
            return True
        seen.add(node)
        node = parents.get(node)
    return False


def read_position(
    conn: psycopg.Connection[TupleRow], revision: str, migration_set: str | None = None
) -> Position:
    """Where the database of ``conn`` stands against ``revision``.

    Raises :class:`WaitError` (``OtherSet``) when the database belongs to another set
    than ``migration_set``, or when its history knows ``revision`` only from another set.
    """
    if conn.execute(_HISTORY_EXISTS, (BOOKKEEPING_SCHEMA, HISTORY_TABLE)).fetchone() is None:
        return Position(None, None, False, f"has never been migrated by dbkeeper (no {HISTORY})")
    if not _readable(conn, BOOKKEEPING_SCHEMA, HISTORY):
        return Position(None, None, False, _no_select(conn, HISTORY))
    row = conn.execute(_VISIBLE_VERSION_TABLE, (VERSION_TABLE,)).fetchone()
    if row is None:
        return Position(None, None, False, f"has no {VERSION_TABLE} table yet")
    version_table = str(row[1])
    if not _readable(conn, str(row[0]), version_table):
        return Position(None, None, False, _no_select(conn, version_table))
    versions = conn.execute(f"SELECT version_num FROM {version_table}").fetchall()
    current = str(versions[0][0]) if len(versions) == 1 else None
    moves = conn.execute(_MOVES, (_HISTORY_LIMIT,)).fetchall()
    own_set = str(moves[0][0]) if moves else None
    if migration_set is not None and own_set is not None and own_set != migration_set:
        raise WaitError(
            "OtherSet",
            f"database {conn.info.dbname} is migrated by set {own_set}, not {migration_set}",
        )
    parents: dict[str, str | None] = {}
    other_sets: set[str] = set()
    # Newest first: a revision's latest recorded parent wins.
    for set_name, moved, from_revision, to_revision, direction in moves:
        if set_name != own_set:
            if revision in (moved, to_revision):
                other_sets.add(str(set_name))
            continue
        if direction == "upgrade":
            parents.setdefault(str(moved), from_revision)
        elif to_revision is not None:
            parents.setdefault(str(moved), str(to_revision))
    if other_sets and revision not in parents and revision != current:
        raise WaitError(
            "OtherSet",
            f"revision {revision} belongs to set {', '.join(sorted(other_sets))}, but "
            f"database {conn.info.dbname} is migrated by set {own_set}",
        )
    if len(versions) > 1:
        return Position(None, own_set, False, f"has several revisions in {version_table}")
    return Position(current, own_set, _reaches(current, revision, parents))


def connect_read_only(conninfo: ConnInfo | str) -> psycopg.Connection[TupleRow]:
    """An autocommit session whose transactions are read-only, named ``dbkeeper wait``."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    dsn = conninfo.dsn() if isinstance(conninfo, ConnInfo) else conninfo
    params = conninfo_to_dict(dsn)
    if "PGCONNECT_TIMEOUT" not in os.environ:
        params.setdefault("connect_timeout", 5)
    params["application_name"] = APPLICATION_NAME
    given = str(params.get("options") or os.environ.get("PGOPTIONS", ""))
    params["options"] = f"{given} -c default_transaction_read_only=on".strip()
    return psycopg.connect(make_conninfo("", **params), autocommit=True)


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def wait_for_revision(
    conninfo: ConnInfo | str,
    revision: str,
    timeout: timedelta | float = DEFAULT_TIMEOUT,
    *,
    migration_set: str | None = None,
    poll_interval: timedelta | float = DEFAULT_POLL_INTERVAL,
    on_progress: Callable[[Position, float], None] | None = None,
) -> Position:
    """Return once the database is at ``revision`` or later; raise :class:`WaitError`.

    ``conninfo`` is a :class:`ConnInfo` or a libpq connection string (``""``: libpq's
    ``PG*`` variables). ``timeout`` and ``poll_interval`` are timedeltas or seconds.
    ``on_progress(position, waited_seconds)`` is called after every look that did not
    reach it. Only the time waited is bounded, so a slow machine gets the same chances.
    """
    import psycopg

    limit = timeout.total_seconds() if isinstance(timeout, timedelta) else float(timeout)
    pause = (
        poll_interval.total_seconds()
        if isinstance(poll_interval, timedelta)
        else float(poll_interval)
    )
    started = time.monotonic()
    conn: psycopg.Connection[TupleRow] | None = None
    last: Position | None = None
    try:
        while True:
            try:
                if conn is None or conn.closed:
                    conn = connect_read_only(conninfo)
                position = read_position(conn, revision, migration_set)
            except psycopg.Error as exc:
                if conn is not None:
                    conn.close()
                conn = None
                position = Position(None, None, False, f"is not reachable: {_first_line(exc)}")
            if position.reached:
                return position
            last = position
            waited = time.monotonic() - started
            if waited >= limit:
                raise WaitError(
                    "Timeout",
                    f"timed out after {limit:g}s waiting for revision {revision}: the "
                    f"database {last.describe()}",
                )
            if on_progress is not None:
                on_progress(position, waited)
            time.sleep(min(pause, max(limit - waited, 0.0)))
    finally:
        if conn is not None:
            conn.close()

"""Probe one PostgreSQL database for the numbers on-call needs.

The probe is read-only and bounded in time: a short connect timeout and a statement
timeout on its own session, so a sick database slows the operator's timer by seconds at
most. An unreachable database is a result (``up=False``), not an exception: "down" is
exactly what the caller wants to report.

Query statistics come from ``pg_stat_statements`` when the extension is installed in
the database; only query ids are read (``pg_stat_statements(false)``), never query text,
so nothing a user typed into SQL can leak into metrics.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import LiteralString, NamedTuple

import psycopg
from psycopg import sql

from dbkeeper.conninfo import ConnInfo, redact

_STATEMENT_TIMEOUT_MS = 5000


class TopQuery(NamedTuple):
    """One normalised statement: its id, how often it ran, and its mean duration."""

    queryid: int
    calls: int
    mean_seconds: float


@dataclass(frozen=True)
class DatabaseHealth:
    """What one probe found. Every number is ``None`` when the database is down.

    ``connections_used`` and ``max_connections`` are for the whole server, since that is
    where the limit applies; the transaction age, cache ratio and query statistics are
    for this database only. ``statement_calls``/``statement_exec_seconds`` are the
    running totals of ``pg_stat_statements`` for this database (``None`` without the
    extension); their rates give the mean query latency over any window.
    """

    up: bool
    connections_used: int | None = None
    max_connections: int | None = None
    longest_transaction_seconds: float | None = None
    cache_hit_ratio: float | None = None
    replication_lag_seconds: float | None = None
    top_queries: tuple[TopQuery, ...] = ()
    statement_calls: int | None = None
    statement_exec_seconds: float | None = None
    error: str | None = None

    @classmethod
    def down(cls, error: str) -> DatabaseHealth:
        return cls(up=False, error=redact(error))


def probe_database(
    conninfo: ConnInfo, top_queries: int = 5, connect_timeout: int = 3
) -> DatabaseHealth:
    """Connect once, read the health numbers, disconnect. Never raises for a dead database."""
    if top_queries < 0:
        raise ValueError(f"top_queries must be 0 or more, got {top_queries}")
    if connect_timeout < 1:
        raise ValueError(f"connect_timeout must be at least 1 second, got {connect_timeout}")
    target = dataclasses.replace(
        conninfo, connect_timeout=min(conninfo.connect_timeout, connect_timeout)
    )
    try:
        with psycopg.connect(
            target.dsn(),
            autocommit=True,
            options=f"-c statement_timeout={_STATEMENT_TIMEOUT_MS}",
        ) as conn:
            return _read_health(conn, top_queries)
    except psycopg.Error as exc:
        # Refused, timed out, authentication failed, server shutting down: all "down".
        return DatabaseHealth.down(str(exc))


def _read_health(conn: psycopg.Connection[tuple[object, ...]], top_n: int) -> DatabaseHealth:
    used, max_conn = _fetch_row(
        conn,
        "SELECT count(*) FILTER (WHERE backend_type = 'client backend'),"
        " current_setting('max_connections')::int FROM pg_stat_activity",
    )
    (longest,) = _fetch_row(
        conn,
        "SELECT coalesce(extract(epoch FROM max(clock_timestamp() - xact_start)), 0)::float8"
        " FROM pg_stat_activity"
        " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        " AND xact_start IS NOT NULL",
    )
    (ratio,) = _fetch_row(
        conn,
        "SELECT CASE WHEN blks_hit + blks_read = 0 THEN NULL"
        " ELSE blks_hit::float8 / (blks_hit + blks_read) END"
        " FROM pg_stat_database WHERE datname = current_database()",
    )
    statements = _statement_statistics(conn, top_n)
    return DatabaseHealth(
        up=True,
        connections_used=_as_int(used),
        max_connections=_as_int(max_conn),
        longest_transaction_seconds=_as_float(longest),
        cache_hit_ratio=_as_optional_float(ratio),
        replication_lag_seconds=_replication_lag(conn),
        top_queries=statements.top,
        statement_calls=statements.calls,
        statement_exec_seconds=statements.exec_seconds,
    )


def _replication_lag(conn: psycopg.Connection[tuple[object, ...]]) -> float | None:
    """Seconds behind on a standby; on a primary the worst replica's replay lag.

    ``None`` when there is no replica at all: "no lag" and "nothing to lag" differ.
    """
    (in_recovery,) = _fetch_row(conn, "SELECT pg_is_in_recovery()")
    if in_recovery:
        (lag,) = _fetch_row(
            conn,
            "SELECT extract(epoch FROM clock_timestamp() - pg_last_xact_replay_timestamp())"
            "::float8",
        )
        return _as_optional_float(lag)
    replicas, lag = _fetch_row(
        conn,
        # replay_lag turns NULL once an idle replica has caught up: that is zero lag.
        "SELECT count(*), coalesce(extract(epoch FROM max(replay_lag)), 0)::float8"
        " FROM pg_stat_replication",
    )
    if _as_int(replicas) == 0:
        return None
    return _as_float(lag)


@dataclass(frozen=True)
class _StatementStatistics:
    top: tuple[TopQuery, ...] = ()
    calls: int | None = None
    exec_seconds: float | None = None


def _statement_statistics(
    conn: psycopg.Connection[tuple[object, ...]], top_n: int
) -> _StatementStatistics:
    schema_row = conn.execute(
        "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace"
        " WHERE e.extname = 'pg_stat_statements'"
    ).fetchone()
    if schema_row is None:
        return _StatementStatistics()
    view = sql.SQL("{}.pg_stat_statements(false)").format(sql.Identifier(str(schema_row[0])))
    this_database = sql.SQL(
        "dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
        " AND queryid IS NOT NULL"
    )
    try:
        calls, exec_ms = _fetch_row(
            conn,
            sql.SQL(
                "SELECT coalesce(sum(calls), 0)::bigint, coalesce(sum(total_exec_time), 0)::float8"
                " FROM {} WHERE {}"
            ).format(view, this_database),
        )
        rows = conn.execute(
            sql.SQL(
                "SELECT queryid, calls, mean_exec_time FROM {} WHERE {}"
                " ORDER BY mean_exec_time DESC, queryid LIMIT %s"
            ).format(view, this_database),
            (top_n,),
        ).fetchall()
    except psycopg.errors.ObjectNotInPrerequisiteState:
        # The extension is created but the library is not preloaded: no statistics.
        return _StatementStatistics()
    top = tuple(
        TopQuery(queryid=_as_int(qid), calls=_as_int(n), mean_seconds=_as_float(ms) / 1000.0)
        for qid, n, ms in rows
    )
    return _StatementStatistics(
        top=top, calls=_as_int(calls), exec_seconds=_as_float(exec_ms) / 1000.0
    )


def _fetch_row(
    conn: psycopg.Connection[tuple[object, ...]], query: LiteralString | sql.Composed
) -> tuple[object, ...]:
    row = conn.execute(query).fetchone()
    if row is None:
        raise RuntimeError("health query returned no row")
    return row


def _as_int(value: object) -> int:
    if not isinstance(value, int):
        raise TypeError(f"expected an integer from PostgreSQL, got {type(value).__name__}")
    return value


def _as_optional_float(value: object) -> float | None:
    return None if value is None else _as_float(value)


def _as_float(value: object) -> float:
    if isinstance(value, int | float):
        return float(value)
    raise TypeError(f"expected a number from PostgreSQL, got {type(value).__name__}")

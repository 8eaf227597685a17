"""Typed rows of PgBouncer's SHOW POOLS, SHOW STATS and SHOW DATABASES.

Columns differ a little between PgBouncer versions, so rows are read by name and a
missing column reads as zero rather than failing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from dbkeeper.json_shapes.pooler import DatabaseStatsJson, PoolStatsJson

Row = Mapping[str, Any]


def _int(row: Row, key: str) -> int:
    value = row.get(key)
    return int(value) if value not in (None, "") else 0


def _str(row: Row, key: str) -> str:
    value = row.get(key)
    return "" if value is None else str(value)


@dataclass(frozen=True)
class PoolStats:
    """One pool (database, user) from SHOW POOLS, at the moment it was read."""

    database: str
    user: str
    clients_active: int
    clients_waiting: int
    servers_active: int
    servers_idle: int
    servers_used: int
    servers_login: int
    max_wait_seconds: float
    pool_mode: str

    @classmethod
    def from_row(cls, row: Row) -> PoolStats:
        return cls(
            database=_str(row, "database"),
            user=_str(row, "user"),
            clients_active=_int(row, "cl_active"),
            clients_waiting=_int(row, "cl_waiting"),
            servers_active=_int(row, "sv_active"),
            servers_idle=_int(row, "sv_idle"),
            servers_used=_int(row, "sv_used"),
            servers_login=_int(row, "sv_login"),
            max_wait_seconds=_int(row, "maxwait") + _int(row, "maxwait_us") / 1_000_000,
            pool_mode=_str(row, "pool_mode"),
        )

    def to_dict(self) -> PoolStatsJson:
        return {
            "database": self.database,
            "user": self.user,
            "clients_active": self.clients_active,
            "clients_waiting": self.clients_waiting,
            "servers_active": self.servers_active,
            "servers_idle": self.servers_idle,
            "servers_used": self.servers_used,
            "servers_login": self.servers_login,
            "max_wait_seconds": self.max_wait_seconds,
            "pool_mode": self.pool_mode,
        }


@dataclass(frozen=True)
class DatabaseStats:
    """One database from SHOW STATS: totals since start and averages of the last period."""

    database: str
    total_xact_count: int
    total_query_count: int
    total_wait_seconds: float
    avg_xact_count: int
    avg_query_count: int
    avg_wait_seconds: float
    avg_query_seconds: float
    avg_xact_seconds: float

    @classmethod
    def from_row(cls, row: Row) -> DatabaseStats:
        return cls(
            database=_str(row, "database"),
            total_xact_count=_int(row, "total_xact_count"),
            total_query_count=_int(row, "total_query_count"),
            total_wait_seconds=_int(row, "total_wait_time") / 1_000_000,
            avg_xact_count=_int(row, "avg_xact_count"),
            avg_query_count=_int(row, "avg_query_count"),
            avg_wait_seconds=_int(row, "avg_wait_time") / 1_000_000,
            avg_query_seconds=_int(row, "avg_query_time") / 1_000_000,
            avg_xact_seconds=_int(row, "avg_xact_time") / 1_000_000,
        )

    def to_dict(self) -> DatabaseStatsJson:
        return {
            "database": self.database,
            "total_xact_count": self.total_xact_count,
            "total_query_count": self.total_query_count,
            "total_wait_seconds": self.total_wait_seconds,
            "avg_xact_count": self.avg_xact_count,
            "avg_query_count": self.avg_query_count,
            "avg_wait_seconds": self.avg_wait_seconds,
            "avg_query_seconds": self.avg_query_seconds,
            "avg_xact_seconds": self.avg_xact_seconds,
        }


@dataclass(frozen=True)
class PooledDatabase:
    """One entry of SHOW DATABASES: where an alias points and how it is limited."""

    name: str
    host: str
    port: int
    database: str
    pool_size: int
    min_pool_size: int
    reserve_pool: int
    pool_mode: str
    max_connections: int
    current_connections: int
    paused: bool
    disabled: bool

    @classmethod
    def from_row(cls, row: Row) -> PooledDatabase:
        return cls(
            name=_str(row, "name"),
            host=_str(row, "host"),
            port=_int(row, "port"),
            database=_str(row, "database"),
            pool_size=_int(row, "pool_size"),
            min_pool_size=_int(row, "min_pool_size"),
            # PgBouncer 1.24 renamed the column to reserve_pool_size.
            reserve_pool=_int(
                row, "reserve_pool_size" if "reserve_pool_size" in row else "reserve_pool"
            ),
            pool_mode=_str(row, "pool_mode"),
            max_connections=_int(row, "max_connections"),
            current_connections=_int(row, "current_connections"),
            paused=bool(_int(row, "paused")),
            disabled=bool(_int(row, "disabled")),
        )


def pools_from_rows(rows: Iterable[Row]) -> list[PoolStats]:
    return [PoolStats.from_row(row) for row in rows]


def stats_from_rows(rows: Iterable[Row]) -> list[DatabaseStats]:
    return [DatabaseStats.from_row(row) for row in rows]


def databases_from_rows(rows: Iterable[Row]) -> list[PooledDatabase]:
    return [PooledDatabase.from_row(row) for row in rows]

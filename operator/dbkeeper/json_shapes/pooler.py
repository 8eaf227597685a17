"""The JSON of ``dbkeeper pooler show``."""

from typing import Annotated, TypedDict


class PoolStatsJson(TypedDict):
    """One pool (database and user) from PgBouncer's SHOW POOLS."""

    database: Annotated[str, "the database pooled"]
    user: Annotated[str, "the user pooled"]
    clients_active: Annotated[int, "client connections linked to a server connection"]
    clients_waiting: Annotated[int, "client connections waiting for a server connection"]
    servers_active: Annotated[int, "server connections linked to a client"]
    servers_idle: Annotated[int, "server connections idle, ready for a client"]
    servers_used: Annotated[int, "server connections idle, to be checked before reuse"]
    servers_login: Annotated[int, "server connections logging in"]
    max_wait_seconds: Annotated[float, "how long the oldest waiting client has waited"]
    pool_mode: Annotated[str, "when a server connection returns to the pool"]


class DatabaseStatsJson(TypedDict):
    """One database from PgBouncer's SHOW STATS."""

    database: Annotated[str, "the database"]
    total_xact_count: Annotated[int, "transactions pooled since PgBouncer started"]
    total_query_count: Annotated[int, "queries pooled since PgBouncer started"]
    total_wait_seconds: Annotated[float, "time clients waited for a server, in all"]
    avg_xact_count: Annotated[int, "transactions per second in the last period"]
    avg_query_count: Annotated[int, "queries per second in the last period"]
    avg_wait_seconds: Annotated[float, "average wait for a server in the last period"]
    avg_query_seconds: Annotated[float, "average query duration in the last period"]
    avg_xact_seconds: Annotated[float, "average transaction duration in the last period"]


class PoolerShowJson(TypedDict):
    """The pools and statistics of the local PgBouncer (its own admin database left out)."""

    pools: Annotated[list[PoolStatsJson], "one entry per pool"]
    stats: Annotated[list[DatabaseStatsJson], "one entry per database"]

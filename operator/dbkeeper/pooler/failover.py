"""Find the primary among a database's hosts and point the pooler at it.

A repoint rewrites the ``[databases]`` entry with the new host and RELOADs: clients keep
their connections to PgBouncer and their next transactions run on the new primary.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import psycopg

from dbkeeper.conninfo import ConnInfo, redact
from dbkeeper.pooler.changes import ChangeKind
from dbkeeper.pooler.settings import DatabaseTarget, PgBouncerSettings


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


class NoPrimaryError(RuntimeError):
    """None of the hosts is a reachable primary; the message says what each answered."""


def find_primary(
    hosts: Sequence[Endpoint], credentials: ConnInfo, connect_timeout: int = 3
) -> Endpoint:
    """The first host that answers and is not in recovery (``pg_is_in_recovery()``)."""
    if not hosts:
        raise NoPrimaryError("no hosts given")
    answers: list[str] = []
    for endpoint in hosts:
        info = dataclasses.replace(
            credentials, host=endpoint.host, port=endpoint.port, connect_timeout=connect_timeout
        )
        try:
            with psycopg.connect(info.dsn(), autocommit=True) as conn:
                row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
        except psycopg.Error as exc:
            first_line = redact(str(exc)).strip().splitlines()[:1]
            answers.append(f"{endpoint}: unreachable ({' '.join(first_line)})")
            continue
        if row is not None and row[0] is False:
            return endpoint
        answers.append(f"{endpoint}: in recovery")
    raise NoPrimaryError("no primary among the hosts: " + "; ".join(answers))


def repointed_settings(
    settings: PgBouncerSettings, alias: str, primary: Endpoint
) -> PgBouncerSettings:
    """``settings`` with ``alias`` served from ``primary`` (same database name)."""
    current = settings.database(alias)
    return settings.with_target(
        DatabaseTarget(alias=alias, host=primary.host, port=primary.port, dbname=current.dbname)
    )


class SettingsApplier(Protocol):
    """A running pooler that can take new settings (LocalPgBouncer; the operator's own)."""

    @property
    def settings(self) -> PgBouncerSettings: ...

    def apply(self, settings: PgBouncerSettings) -> ChangeKind: ...


def repoint(pooler: SettingsApplier, alias: str, primary: Endpoint) -> bool:
    """Serve ``alias`` from ``primary``; False when it already was (nothing done)."""
    new = repointed_settings(pooler.settings, alias, primary)
    if new == pooler.settings:
        return False
    pooler.apply(new)
    return True

"""The history table ``dbkeeper.migration_history``: every applied, reverted or failed revision.

It lives in a schema of its own so that migration sets never touch it, and it is written
in the same transaction as the revision it records (a failure gets its own transaction
after the rollback).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime

import sqlalchemy as sa

from dbkeeper.json_shapes.migrate import HistoryEntryJson
from dbkeeper.vocabulary import BOOKKEEPING_SCHEMA as HISTORY_SCHEMA
from dbkeeper.vocabulary import HISTORY_TABLE
from dbkeeper.vocabulary import Direction as Direction
from dbkeeper.vocabulary import Outcome as Outcome

QUALIFIED_TABLE = f"{HISTORY_SCHEMA}.{HISTORY_TABLE}"

_CREATE_SCHEMA = f"CREATE SCHEMA IF NOT EXISTS {HISTORY_SCHEMA}"
_CREATE_TABLE = f"""
CREATE TABLE IF NOT EXISTS {QUALIFIED_TABLE} (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    migration_set text        NOT NULL,
    revision      text        NOT NULL,
    from_revision text,
    to_revision   text,
    direction     text        NOT NULL CHECK (direction IN ('upgrade', 'downgrade')),
    started_at    timestamptz NOT NULL,
    finished_at   timestamptz NOT NULL,
    duration_ms   bigint      NOT NULL,
    outcome       text        NOT NULL CHECK (outcome IN ('succeeded', 'failed')),
    error         text,
    actor         text        NOT NULL,
    checksum      text        NOT NULL,
    backup_id     text
)
"""
# Added after the first release: where the set's files came from (a bundled set's name,
# a ConfigMap's version and content hash, an image digest), so a changed bundle shows.
_ADD_SOURCE = f"ALTER TABLE {QUALIFIED_TABLE} ADD COLUMN IF NOT EXISTS set_source text"
_INDEX_NAME = "migration_history_set_revision_idx"
_CREATE_INDEX = f"""
CREATE INDEX IF NOT EXISTS {_INDEX_NAME}
    ON {QUALIFIED_TABLE} (migration_set, revision, id)
"""


@dataclass(frozen=True)
class HistoryEntry:
    """One row of the history table."""

    id: int
    migration_set: str
    revision: str
    from_revision: str | None
    to_revision: str | None
    direction: Direction
    started_at: datetime
    finished_at: datetime
    duration_ms: int
    outcome: Outcome
    error: str | None
    actor: str
    checksum: str
    backup_id: str | None
    set_source: str | None = None

    def to_dict(self) -> HistoryEntryJson:
        return {
            "id": self.id,
            "migration_set": self.migration_set,
            "revision": self.revision,
            "from_revision": self.from_revision,
            "to_revision": self.to_revision,
            "direction": self.direction,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat(),
            "duration_ms": self.duration_ms,
            "outcome": self.outcome,
            "error": self.error,
            "actor": self.actor,
            "checksum": self.checksum,
            "backup_id": self.backup_id,
            "set_source": self.set_source,
        }


@dataclass(frozen=True)
class NewHistoryEntry:
    """What a runner records; ``id`` is assigned by the database."""

    migration_set: str
    revision: str
    from_revision: str | None
    to_revision: str | None
    direction: Direction
    started_at: datetime
    finished_at: datetime
    outcome: Outcome
    error: str | None
    actor: str
    checksum: str
    backup_id: str | None
    set_source: str | None = None

    @property
    def duration_ms(self) -> int:
        return round((self.finished_at - self.started_at).total_seconds() * 1000)


def ensure_history_table(connection: sa.Connection) -> None:
    """Create the schema and table when missing; safe to call on every run.

    One read finds them in place on every run but the first, and then nothing is
    created: ``CREATE SCHEMA IF NOT EXISTS`` would still need the CREATE privilege on the
    database and take locks, and each statement is a round trip of every move.
    """
    complete = connection.execute(
        sa.text(
            "SELECT to_regclass(:index) IS NOT NULL AND EXISTS (SELECT 1 FROM pg_attribute "
            "WHERE attrelid = to_regclass(:name) AND attname = 'set_source' "
            "AND NOT attisdropped)"
        ),
        {"name": QUALIFIED_TABLE, "index": f"{HISTORY_SCHEMA}.{_INDEX_NAME}"},
    ).scalar()
    if complete:
        return
    for statement in (_CREATE_SCHEMA, _CREATE_TABLE, _CREATE_INDEX):
        connection.exec_driver_sql(statement)
    # ALTER TABLE takes the table's strongest lock even when the column exists: only
    # tables made by an older dbkeeper need it.
    has_source = connection.execute(
        sa.text(
            "SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass(:name) "
            "AND attname = 'set_source' AND NOT attisdropped"
        ),
        {"name": QUALIFIED_TABLE},
    ).first()
    if has_source is None:
        connection.exec_driver_sql(_ADD_SOURCE)


def history_table_exists(connection: sa.Connection) -> bool:
    found = connection.execute(sa.text("SELECT to_regclass(:name)"), {"name": QUALIFIED_TABLE})
    return found.scalar() is not None


_INSERT_ENTRY = (
    f"INSERT INTO {QUALIFIED_TABLE} (migration_set, revision, from_revision, to_revision, "
    "direction, started_at, finished_at, duration_ms, outcome, error, actor, checksum, "
    "backup_id, set_source) VALUES (%(migration_set)s, %(revision)s, %(from_revision)s, "
    "%(to_revision)s, %(direction)s, %(started_at)s, %(finished_at)s, %(duration_ms)s, "
    "%(outcome)s, %(error)s, %(actor)s, %(checksum)s, %(backup_id)s, %(set_source)s)"
)


def record(connection: sa.Connection, entry: NewHistoryEntry) -> None:
    """Insert ``entry`` in the connection's current transaction (a statement handed to
    the driver as it is: one per revision, with nothing for SQLAlchemy to compile)."""
    values = asdict(entry)
    values["duration_ms"] = entry.duration_ms
    connection.exec_driver_sql(_INSERT_ENTRY, values)


def read_entries(
    connection: sa.Connection, limit: int = 50, migration_set: str | None = None
) -> list[HistoryEntry]:
    """The newest ``limit`` rows, newest first; empty when nothing was ever migrated."""
    if not history_table_exists(connection):
        return []
    where = "WHERE migration_set = :set" if migration_set is not None else ""
    rows = connection.execute(
        sa.text(
            "SELECT id, migration_set, revision, from_revision, to_revision, direction, "
            "started_at, finished_at, duration_ms, outcome, error, actor, checksum, backup_id, "
            # to_jsonb reads the column of tables made by an older dbkeeper as NULL.
            f"to_jsonb(h) ->> 'set_source' AS set_source FROM {QUALIFIED_TABLE} h {where} "
            "ORDER BY id DESC LIMIT :limit"
        ),
        {"limit": limit, "set": migration_set},
    )
    return [HistoryEntry(**row._asdict()) for row in rows]


def applied_checksums(connection: sa.Connection, migration_set: str) -> dict[str, str]:
    """For each revision, the checksum of its latest successful upgrade."""
    if not history_table_exists(connection):
        return {}
    rows = connection.execute(
        sa.text(
            f"SELECT DISTINCT ON (revision) revision, checksum FROM {QUALIFIED_TABLE} "
            "WHERE migration_set = :set AND direction = 'upgrade' AND outcome = 'succeeded' "
            "ORDER BY revision, id DESC"
        ),
        {"set": migration_set},
    )
    return {str(row.revision): str(row.checksum) for row in rows}

"""Where a database stands against its migration set: current, head, pending, drift."""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa

from dbkeeper.conninfo import ConnInfo
from dbkeeper.json_shapes.migrate import DriftJson, StatusJson
from dbkeeper.migrate.alembic_bridge import current_revision
from dbkeeper.migrate.connection import sqlalchemy_connection, unreachable
from dbkeeper.migrate.history import HistoryEntry, applied_checksums, read_entries
from dbkeeper.migrate.sets import MigrationSet

SHORT_CHECKSUM_LENGTH = 16
"""Hex digits of a revision's sha256 that a described set carries (and the fewest that
count as a checksum at all): enough to tell an edited file, short enough for a set of a
hundred revisions to fit in a Job's termination message."""


def checksum_matches(recorded: str, current: str) -> bool:
    """Whether a revision's file is the one that was applied: ``recorded`` is the sha256
    in the history, ``current`` the file's sha256 or, for a described set, its first
    :data:`SHORT_CHECKSUM_LENGTH` hex digits."""
    return len(current) >= SHORT_CHECKSUM_LENGTH and recorded.startswith(current)


@dataclass(frozen=True)
class DriftItem:
    """An applied revision whose file changed since: checksum then and now."""

    revision: str
    recorded: str
    current: str

    def to_dict(self) -> DriftJson:
        return {"revision": self.revision, "recorded": self.recorded, "current": self.current}


@dataclass(frozen=True)
class SchemaStatus:
    """The database's revision compared with the set's files."""

    migration_set: str
    current_revision: str | None
    head_revision: str | None
    pending: list[str] = field(default_factory=list)
    drift: list[DriftItem] = field(default_factory=list)
    unknown_current: bool = False

    @property
    def up_to_date(self) -> bool:
        return not self.unknown_current and self.current_revision == self.head_revision

    def to_dict(self) -> StatusJson:
        return {
            "migration_set": self.migration_set,
            "current_revision": self.current_revision,
            "head_revision": self.head_revision,
            "pending": list(self.pending),
            "drift": [item.to_dict() for item in self.drift],
            "unknown_current": self.unknown_current,
            "up_to_date": self.up_to_date,
        }


def status_of(connection: sa.Connection, migration_set: MigrationSet) -> SchemaStatus:
    current = current_revision(connection)
    head = migration_set.head
    if current is not None and current not in migration_set:
        return SchemaStatus(
            migration_set=migration_set.name,
            current_revision=current,
            head_revision=head,
            unknown_current=True,
        )
    applied_count = migration_set.position(current)
    applied = migration_set.revisions[:applied_count]
    pending = migration_set.ids[applied_count:]
    recorded = applied_checksums(connection, migration_set.name)
    drift = [
        DriftItem(revision=revision.id, recorded=recorded[revision.id], current=revision.checksum)
        for revision in applied
        if revision.id in recorded
        and not checksum_matches(recorded[revision.id], revision.checksum)
    ]
    return SchemaStatus(
        migration_set=migration_set.name,
        current_revision=current,
        head_revision=head,
        pending=pending,
        drift=drift,
    )


def read_status(conninfo: ConnInfo, migration_set: MigrationSet) -> SchemaStatus:
    """Read-only: the database's revision, what is pending, and checksum drift."""
    with sqlalchemy_connection(conninfo) as connection:
        try:
            return status_of(connection, migration_set)
        except sa.exc.OperationalError as exc:
            raise unreachable(conninfo, exc) from None
        finally:
            connection.rollback()


def read_history(
    conninfo: ConnInfo, limit: int = 50, migration_set: str | None = None
) -> list[HistoryEntry]:
    """The newest history rows, newest first (all sets unless ``migration_set``)."""
    with sqlalchemy_connection(conninfo) as connection:
        try:
            return read_entries(connection, limit=limit, migration_set=migration_set)
        except sa.exc.OperationalError as exc:
            raise unreachable(conninfo, exc) from None
        finally:
            connection.rollback()

"""What a running migration reports as it goes; the operator turns these into Events."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from dbkeeper.json_shapes.migrate import MigrationEventJson, MigrationResultJson
from dbkeeper.vocabulary import EventKind as EventKind

if TYPE_CHECKING:
    from dbkeeper.migrate.plan import Step


@dataclass(frozen=True)
class MigrationEvent:
    """One thing that happened, with a sentence a person can read."""

    kind: EventKind
    message: str
    revision: str | None = None
    step: int | None = None
    """For an applied or reverted revision: which step of the move it was (1-based)..."""
    steps: int | None = None
    """...of this many."""

    def to_dict(self) -> MigrationEventJson:
        return {
            "kind": self.kind,
            "message": self.message,
            "revision": self.revision,
            "step": self.step,
            "steps": self.steps,
        }


@dataclass(frozen=True)
class MigrationResult:
    """What a move did."""

    migration_set: str
    from_revision: str | None
    to_revision: str | None
    steps: tuple[Step, ...]
    duration: timedelta
    backup_id: str | None = None

    @property
    def changed(self) -> bool:
        return bool(self.steps)

    def to_dict(self) -> MigrationResultJson:
        return {
            "migration_set": self.migration_set,
            "from_revision": self.from_revision,
            "to_revision": self.to_revision,
            "steps": [
                {"revision": s.revision, "direction": s.direction, "risky": s.risky}
                for s in self.steps
            ],
            "duration_ms": round(self.duration.total_seconds() * 1000),
            "backup_id": self.backup_id,
        }

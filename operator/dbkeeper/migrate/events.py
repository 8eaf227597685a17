"""What a running migration reports as it goes; the operator turns these into Events."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from dbkeeper.migrate.plan import Step

EventKind = Literal[
    "started",
    "revision_applied",
    "revision_reverted",
    "failed",
    "finished",
    "lint_warning",
    "drift_found",
    # An online revision's earlier attempt left an INVALID index that was dropped.
    "invalid_index_dropped",
]


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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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

    def to_dict(self) -> dict[str, Any]:
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

"""What a caller asks of a migration, and the hooks it can plug around it."""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    from dbkeeper.migrate.plan import MovePlan, Step

LintMode = Literal["off", "warn", "block"]
LINT_MODES: tuple[LintMode, ...] = ("off", "warn", "block")


@dataclass(frozen=True)
class MigrationOptions:
    """How to move: where to, with which consent, timeouts and lint policy."""

    target: str = "head"
    allow_downgrade: bool = False
    lock_timeout: timedelta = timedelta(seconds=5)
    statement_timeout: timedelta = timedelta(minutes=15)
    lock_retries: int = 3
    retry_backoff: timedelta = timedelta(seconds=1)
    advisory_lock_wait: timedelta = timedelta(seconds=30)
    lint_mode: LintMode = "warn"
    approved: frozenset[str] = field(default_factory=frozenset)
    actor: str = "dbkeeper"


class MigrationHooks(Protocol):
    """Callbacks the operator plugs around a move (backups, pooler pauses)."""

    def before_move(self, plan: MovePlan) -> str | None:
        """Called once before the first change; returns a backup id, raising aborts."""
        ...

    def around_step(self, step: Step) -> AbstractContextManager[None]:
        """Wraps each revision's transaction, e.g. to pause the pooler when risky."""
        ...

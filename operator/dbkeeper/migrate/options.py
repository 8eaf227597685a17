"""What a caller asks of a migration (the hooks it can plug around one: :mod:`.plan`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from dbkeeper.vocabulary import LINT_MODES as LINT_MODES
from dbkeeper.vocabulary import LintMode as LintMode


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

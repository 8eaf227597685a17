"""What runs around a schema move: a backup before it, pooler pauses around risky steps.

:class:`MoveSafeguards` is plain data (picklable), because moves run in a child process
that builds the hooks from it; see :func:`dbkeeper.migrate.migrate_isolated`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field

from dbkeeper.backup.errors import BackupFailed
from dbkeeper.backup.hooks import BackupBeforeMigrate
from dbkeeper.backup.store import Destination
from dbkeeper.conninfo import ConnInfo
from dbkeeper.migrate import MigrationHooks, MovePlan, Step
from dbkeeper.pooler.admin import AdminConsole
from dbkeeper.pooler.pause import paused


@dataclass(frozen=True)
class PoolerPause:
    """The admin console of a pooler to PAUSE around risky steps, and for how long."""

    admin: ConnInfo
    database: str
    wait_seconds: float = 30.0


@dataclass(frozen=True)
class MoveSafeguards:
    """A backup destination (or None) and poolers to pause (possibly none)."""

    database: ConnInfo
    backup_destination: Destination | None = None
    backup_jobs: int = 2
    backup_credentials: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    """``AWS_*`` keys from the bucket's credentials Secret; never printed."""
    poolers: tuple[PoolerPause, ...] = ()
    backup_unavailable: str | None = None
    """Why a required backup cannot be taken here; the move is then refused."""

    def build(self) -> MigrationHooks:
        return _Safeguards(self)


class _Safeguards:
    def __init__(self, spec: MoveSafeguards) -> None:
        self.spec = spec

    def before_move(self, plan: MovePlan) -> str | None:
        if self.spec.backup_unavailable is not None:
            raise BackupFailed(self.spec.backup_unavailable)
        if self.spec.backup_destination is None:
            return None
        backup = BackupBeforeMigrate(
            self.spec.backup_destination,
            self.spec.database,
            self.spec.backup_jobs,
            dict(self.spec.backup_credentials),
        )
        return backup.before_move(plan)

    def around_step(self, step: Step) -> AbstractContextManager[None]:
        if not step.risky or not self.spec.poolers:
            return contextlib.nullcontext()
        return _all_paused(self.spec.poolers)


def paused_for_move(safeguards: MoveSafeguards) -> AbstractContextManager[None]:
    """Every pooler of ``safeguards`` PAUSEd for a whole move (one run in a Job)."""
    return _all_paused(safeguards.poolers)


@contextlib.contextmanager
def _all_paused(poolers: tuple[PoolerPause, ...]) -> Iterator[None]:
    # Entered inside one ExitStack, so a PAUSE that fails resumes those already paused.
    with contextlib.ExitStack() as stack:
        for pooler in poolers:
            stack.enter_context(
                paused(AdminConsole(pooler.admin), pooler.database, pooler.wait_seconds)
            )
        yield

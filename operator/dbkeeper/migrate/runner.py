"""Move a database to a target revision, one transaction per revision, under a lock.

The order of a move: take the advisory lock; read where the database is; resolve the
target and refuse what is not allowed (unknown revision, downgrade without consent,
unapproved lint findings in block mode) before anything changes; let the caller take a
backup; then apply each revision in its own transaction with lock and statement
timeouts, recording it in the history table in the same transaction.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from contextlib import nullcontext
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from dbkeeper.conninfo import ConnInfo, redact
from dbkeeper.migrate.alembic_bridge import current_revision, run_step
from dbkeeper.migrate.connection import sqlalchemy_connection, unreachable
from dbkeeper.migrate.errors import MigrationError
from dbkeeper.migrate.events import EventKind, MigrationEvent, MigrationResult
from dbkeeper.migrate.history import NewHistoryEntry, Outcome, ensure_history_table, record
from dbkeeper.migrate.lock import migration_lock
from dbkeeper.migrate.options import MigrationOptions
from dbkeeper.migrate.plan import MigrationHooks, MovePlan, Step, build_plan
from dbkeeper.migrate.sets import MigrationSet
from dbkeeper.migrate.status import status_of

EventSink = Callable[[MigrationEvent], None]

_LOCK_NOT_AVAILABLE = "55P03"
_QUERY_CANCELED = "57014"
_MAX_ERROR_LENGTH = 2000


def _count(revisions: int) -> str:
    return "1 revision" if revisions == 1 else f"{revisions} revisions"


def _describe(revision: str | None) -> str:
    return revision if revision is not None else "base (empty)"


def _sentence(message: str) -> str:
    text = message[:1].upper() + message[1:]
    return text if text.endswith(".") else f"{text}."


def _milliseconds(value: timedelta) -> int:
    return max(0, round(value.total_seconds() * 1000))


def _sqlstate(exc: BaseException) -> str | None:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        state = getattr(current, "sqlstate", None)
        if isinstance(state, str):
            return state
        orig = getattr(current, "orig", None)
        current = orig if isinstance(orig, BaseException) else current.__cause__
    return None


def _error_text(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc) or type(exc).__name__
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return redact(first)[:_MAX_ERROR_LENGTH]


class _Mover:
    """One move of one database; holds what every step needs."""

    def __init__(
        self,
        conninfo: ConnInfo,
        migration_set: MigrationSet,
        options: MigrationOptions,
        hooks: MigrationHooks | None,
        on_event: EventSink | None,
    ) -> None:
        self.conninfo = conninfo
        self.migration_set = migration_set
        self.options = options
        self.hooks = hooks
        self.on_event = on_event
        self.backup_id: str | None = None

    def emit(self, kind: EventKind, message: str, revision: str | None = None) -> None:
        if self.on_event is not None:
            self.on_event(MigrationEvent(kind=kind, message=message, revision=revision))

    def check_allowed(self, plan: MovePlan) -> None:
        if plan.is_downgrade and not self.options.allow_downgrade:
            raise MigrationError(
                "DowngradeNotAllowed",
                f"target {_describe(plan.to_revision)} is below the current revision "
                f"{_describe(plan.from_revision)}: set migrations.allowDowngrade: true "
                "(or --allow-downgrade) to roll back",
            )
        for step in plan.steps:
            if step.findings and step.direction == "upgrade":
                rules = ", ".join(sorted({finding.rule for finding in step.findings}))
                if self.options.lint_mode == "block" and step.revision not in self.options.approved:
                    raise MigrationError(
                        "LintBlocked",
                        f"revision {step.revision} was not applied because the lint found "
                        f"{rules}; fix the revision or approve it (--approve {step.revision}, "
                        "or the dbkeeper.dev/approved-revisions annotation)",
                        revision=step.revision,
                    )
                self.emit(
                    "lint_warning",
                    f"Revision {step.revision} has lint findings ({rules}); "
                    "it takes heavy locks or may lose data.",
                    step.revision,
                )

    def run(self) -> MigrationResult:
        started = time.monotonic()
        with (
            migration_lock(self.conninfo, self.options.advisory_lock_wait),
            sqlalchemy_connection(self.conninfo) as connection,
        ):
            try:
                with connection.begin():
                    ensure_history_table(connection)
                    status = status_of(connection, self.migration_set)
                    current = current_revision(connection)
            except sa.exc.OperationalError as exc:
                raise unreachable(self.conninfo, exc) from None
            for item in status.drift:
                self.emit(
                    "drift_found",
                    f"Revision {item.revision} of set {self.migration_set.name} was changed "
                    "after it was applied (its checksum differs from the history).",
                    item.revision,
                )
            plan = build_plan(
                self.migration_set, current, self.options, render=self.options.lint_mode != "off"
            )
            self.check_allowed(plan)
            if not plan.steps:
                self.emit(
                    "finished",
                    f"Database {self.conninfo.dbname} is already at "
                    f"{_describe(current)}; nothing to do.",
                )
                return self._result(plan, started)
            if self.hooks is not None:
                self.backup_id = self._before_move(plan)
            self.emit(
                "started",
                f"Migrating {self.conninfo.dbname} from {_describe(plan.from_revision)} to "
                f"{_describe(plan.to_revision)} ({_count(len(plan.steps))}, set "
                f"{self.migration_set.name}).",
            )
            for step in plan.steps:
                guard = self.hooks.around_step(step) if self.hooks is not None else nullcontext()
                with guard:
                    self._apply(connection, step)
            self.emit(
                "finished",
                f"Database {self.conninfo.dbname} is now at {_describe(plan.to_revision)} "
                f"({_count(len(plan.steps))} in {time.monotonic() - started:.1f}s).",
            )
            return self._result(plan, started)

    def _result(self, plan: MovePlan, started: float) -> MigrationResult:
        return MigrationResult(
            migration_set=self.migration_set.name,
            from_revision=plan.from_revision,
            to_revision=plan.to_revision,
            steps=plan.steps,
            duration=timedelta(seconds=time.monotonic() - started),
            backup_id=self.backup_id,
        )

    def _before_move(self, plan: MovePlan) -> str | None:
        assert self.hooks is not None
        try:
            return self.hooks.before_move(plan)
        except MigrationError:
            raise
        except Exception as exc:
            raise MigrationError(
                "BackupFailed",
                f"the step before migrating failed, nothing was changed: {_error_text(exc)}",
            ) from exc

    def _apply(self, connection: sa.Connection, step: Step) -> None:
        attempts = self.options.lock_retries + 1
        backoff = self.options.retry_backoff.total_seconds()
        for attempt in range(1, attempts + 1):
            started_at = datetime.now(UTC)
            try:
                self._apply_once(connection, step, started_at)
            except Exception as exc:
                if connection.invalidated or connection.closed:
                    raise unreachable(self.conninfo, exc) from None
                state = _sqlstate(exc)
                if state == _LOCK_NOT_AVAILABLE and attempt < attempts:
                    time.sleep(backoff * 2 ** (attempt - 1))
                    continue
                error = self._failure(step, exc, state, attempt)
                self._record_failure(connection, step, started_at, error)
                raise error from exc
            else:
                verb = "Applied" if step.direction == "upgrade" else "Reverted"
                kind: EventKind = (
                    "revision_applied" if step.direction == "upgrade" else "revision_reverted"
                )
                retries = f" after {attempt} attempts" if attempt > 1 else ""
                self.emit(
                    kind,
                    f"{verb} revision {step.revision}"
                    f"{' (' + step.description + ')' if step.description else ''} "
                    f"on {self.conninfo.dbname}{retries}.",
                    step.revision,
                )
                return

    def _apply_once(self, connection: sa.Connection, step: Step, started_at: datetime) -> None:
        with connection.begin():
            connection.exec_driver_sql(
                f"SET LOCAL lock_timeout = {_milliseconds(self.options.lock_timeout)}"
            )
            connection.exec_driver_sql(
                f"SET LOCAL statement_timeout = {_milliseconds(self.options.statement_timeout)}"
            )
            run_step(
                self.migration_set, connection, step.to_revision, step.direction == "downgrade"
            )
            record(connection, self._entry(step, started_at, "succeeded", None))

    def _failure(
        self, step: Step, exc: BaseException, state: str | None, attempts: int
    ) -> MigrationError:
        verb = "apply" if step.direction == "upgrade" else "revert"
        where = f"database stays at {_describe(step.from_revision)}"
        if state == _LOCK_NOT_AVAILABLE:
            return MigrationError(
                "LockTimeout",
                f"could not {verb} revision {step.revision}: a table it changes stayed locked "
                f"by another session for longer than lock_timeout "
                f"({_milliseconds(self.options.lock_timeout)} ms) in {attempts} attempts; "
                f"{where}; retry when the blocking session has finished",
                revision=step.revision,
            )
        if state == _QUERY_CANCELED:
            return MigrationError(
                "RevisionFailed",
                f"revision {step.revision} ran longer than statement_timeout "
                f"({_milliseconds(self.options.statement_timeout)} ms) and was rolled back; "
                f"{where}; raise statementTimeout or make the revision faster",
                revision=step.revision,
            )
        return MigrationError(
            "RevisionFailed",
            f"revision {step.revision} failed and was rolled back ({where}): "
            f"{_error_text(exc)}; fix the revision and migrate again",
            revision=step.revision,
        )

    def _record_failure(
        self, connection: sa.Connection, step: Step, started_at: datetime, error: MigrationError
    ) -> None:
        if connection.in_transaction():
            connection.rollback()
        self.emit("failed", _sentence(error.message), step.revision)
        # The failure itself is what the caller must see, even if it cannot be recorded.
        with contextlib.suppress(sa.exc.SQLAlchemyError), connection.begin():
            record(connection, self._entry(step, started_at, "failed", error.message))

    def _entry(
        self, step: Step, started_at: datetime, outcome: Outcome, error: str | None
    ) -> NewHistoryEntry:
        return NewHistoryEntry(
            migration_set=self.migration_set.name,
            revision=step.revision,
            from_revision=step.from_revision,
            to_revision=step.to_revision,
            direction=step.direction,
            started_at=started_at,
            finished_at=datetime.now(UTC),
            outcome=outcome,
            error=error,
            actor=self.options.actor,
            checksum=step.checksum,
            backup_id=self.backup_id,
        )


def migrate(
    conninfo: ConnInfo,
    migration_set: MigrationSet,
    options: MigrationOptions | None = None,
    hooks: MigrationHooks | None = None,
    on_event: EventSink | None = None,
) -> MigrationResult:
    """Move ``conninfo``'s database to ``options.target``; raises :class:`MigrationError`."""
    mover = _Mover(conninfo, migration_set, options or MigrationOptions(), hooks, on_event)
    try:
        return mover.run()
    except MigrationError as error:
        if error.reason not in ("RevisionFailed", "LockTimeout"):
            # Step failures have already been reported with their revision.
            mover.emit("failed", _sentence(error.message), error.revision)
        raise

"""Move a database to a target revision, one transaction per revision, under a lock.

The order of a move: take the advisory lock; read where the database is; resolve the
target and refuse what is not allowed (unknown revision, downgrade without consent,
unapproved lint findings in block mode) before anything changes; let the caller take a
backup; then apply each revision in its own transaction with lock and statement
timeouts, recording it in the history table in the same transaction.

An online revision (``dbkeeper_transaction = False``) runs on the same session in
autocommit instead, still under the lock and both timeouts; ``alembic_version`` and its
history row are then written in one short transaction. It is not all-or-nothing: before
each attempt, the INVALID indexes that an earlier attempt's concurrent build left behind
are dropped (:mod:`dbkeeper.migrate.online`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from dbkeeper.conninfo import ConnInfo, redact
from dbkeeper.interrupt import Interrupted
from dbkeeper.migrate.alembic_bridge import (
    current_revision,
    render_step,
    run_online_step,
    run_step,
    stamp,
)
from dbkeeper.migrate.connection import sqlalchemy_connection, unreachable
from dbkeeper.migrate.errors import MigrationError
from dbkeeper.migrate.events import EventKind, MigrationEvent, MigrationResult
from dbkeeper.migrate.history import (
    QUALIFIED_TABLE,
    NewHistoryEntry,
    Outcome,
    ensure_history_table,
    record,
)
from dbkeeper.migrate.lock import LockBusy, migration_lock
from dbkeeper.migrate.online import drop_invalid_leftovers
from dbkeeper.migrate.options import MigrationOptions
from dbkeeper.migrate.plan import MigrationHooks, MovePlan, Step, build_plan
from dbkeeper.migrate.session import (
    LOST_CLIENT_CHECK,
    end_session,
    milliseconds,
    outside_transaction,
    prepare_session,
    set_local_timeouts,
)
from dbkeeper.migrate.sets import MigrationSet
from dbkeeper.migrate.status import SchemaStatus, status_of

EventSink = Callable[[MigrationEvent], None]

_LOCK_NOT_AVAILABLE = "55P03"
_QUERY_CANCELED = "57014"
_ACTIVE_SQL_TRANSACTION = "25001"  # "... cannot run inside a transaction block"
_MAX_ERROR_LENGTH = 2000
SessionSink = Callable[[int], None]
# What looking at the database after a fault may wait for: it reports, it must not hang.
_AFTERMATH_LOCK_TIMEOUT = timedelta(seconds=5)


def _count(revisions: int) -> str:
    return "1 revision" if revisions == 1 else f"{revisions} revisions"


def _describe(revision: str | None) -> str:
    return revision if revision is not None else "base (empty)"


def _sentence(message: str) -> str:
    text = message[:1].upper() + message[1:]
    return text if text.endswith(".") else f"{text}."


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


def _online_aftermath(step: Step) -> str:
    """What an online revision that stopped half-way leaves: no rollback covers it."""
    return (
        f"revision {step.revision} is an online revision, so what its completed statements "
        "did stays, and an index it was building concurrently is left INVALID until the "
        "revision runs again, which drops it first"
    )


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
        on_session: SessionSink | None = None,
    ) -> None:
        self.conninfo = conninfo
        self.migration_set = migration_set
        self.options = options
        self.hooks = hooks
        self.on_event = on_event
        self.on_session = on_session
        self.backup_id: str | None = None
        # Where the database is as far as this move knows, and what it is doing now.
        self.position: str | None = None
        self.located = False  # whether ``position`` has been read from the database
        self.applied = 0
        self.step_count = 0  # the steps of the move being made
        self.in_progress: Step | None = None
        self.committing = False
        self.session_pid: int | None = None

    def emit(
        self,
        kind: EventKind,
        message: str,
        revision: str | None = None,
        *,
        step: int | None = None,
        steps: int | None = None,
    ) -> None:
        if self.on_event is not None:
            self.on_event(MigrationEvent(kind, message, revision, step, steps))

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
        with sqlalchemy_connection(self.conninfo) as connection:
            try:
                self._open(connection)
                with self._locked(connection):
                    return self._move(connection, started)
            except KeyboardInterrupt as exc:
                raise self._interrupted(connection, exc) from None
            except sa.exc.OperationalError as exc:
                raise self._lost(connection, exc) from None

    def _open(self, connection: sa.Connection) -> None:
        self.session_pid = prepare_session(
            connection, self.options.lock_timeout, self.options.statement_timeout
        )
        if self.on_session is not None:
            self.on_session(self.session_pid)

    @contextlib.contextmanager
    def _locked(self, connection: sa.Connection) -> Iterator[None]:
        try:
            with migration_lock(connection, self.options.advisory_lock_wait):
                yield
        except LockBusy as busy:
            raise MigrationError(
                "LockBusy",
                f"another migration of {self.conninfo.dbname} is running (waited "
                f"{busy.waited:.1f}s for it); try again when it has finished",
            ) from None

    def _move(self, connection: sa.Connection, started: float) -> MigrationResult:
        status, current = self._read_bookkeeping(connection)
        self.position, self.located = current, True
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
        self.step_count = len(plan.steps)
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

    def _read_bookkeeping(self, connection: sa.Connection) -> tuple[SchemaStatus, str | None]:
        """The history table (created if missing), the drift and the current revision,
        under the session's lock_timeout like everything else the engine locks."""
        waited = time.monotonic()
        try:
            with connection.begin():
                ensure_history_table(connection)
                status = status_of(connection, self.migration_set)
        except sa.exc.DBAPIError as exc:
            if connection.invalidated or connection.closed:
                raise self._lost(connection, exc) from None
            if _sqlstate(exc) == _LOCK_NOT_AVAILABLE:
                raise MigrationError(
                    "LockTimeout",
                    f"could not read the migration bookkeeping of {self.conninfo.dbname} "
                    f"({QUALIFIED_TABLE} and alembic_version): another session kept it locked "
                    f"for longer than lock_timeout ({milliseconds(self.options.lock_timeout)} "
                    f"ms; waited {time.monotonic() - waited:.1f}s); nothing was changed; retry "
                    "when the blocking session has finished",
                ) from None
            raise
        return status, status.current_revision

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
        first_try = time.monotonic()
        self.in_progress = step
        for attempt in range(1, attempts + 1):
            started_at = datetime.now(UTC)
            try:
                if step.online:
                    self._apply_online_once(connection, step, started_at)
                else:
                    self._apply_once(connection, step, started_at)
            except Exception as exc:
                if connection.invalidated or connection.closed:
                    raise self._lost(connection, exc) from None
                state = _sqlstate(exc)
                if state == _LOCK_NOT_AVAILABLE and attempt < attempts:
                    time.sleep(backoff * 2 ** (attempt - 1))
                    continue
                error = self._failure(step, exc, state, attempt, time.monotonic() - first_try)
                self._record_failure(connection, step, started_at, error)
                self.in_progress = None
                raise error from exc
            else:
                self.position = step.to_revision
                self.applied += 1
                self.in_progress = None
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
                    step=self.applied,
                    steps=self.step_count or None,
                )
                return

    def _apply_once(self, connection: sa.Connection, step: Step, started_at: datetime) -> None:
        with connection.begin():
            set_local_timeouts(
                connection, self.options.lock_timeout, self.options.statement_timeout
            )
            run_step(
                self.migration_set,
                connection,
                step.to_revision,
                step.direction == "downgrade",
                from_revision=step.from_revision,
            )
            record(connection, self._entry(step, started_at, "succeeded", None))
            # Whatever breaks from here on breaks during COMMIT, whose outcome is unknown.
            self.committing = True
        self.committing = False

    def _apply_online_once(
        self, connection: sa.Connection, step: Step, started_at: datetime
    ) -> None:
        downgrade = step.direction == "downgrade"
        sql = step.sql or render_step(
            self.migration_set, step.from_revision, step.to_revision, downgrade, online=True
        )
        with outside_transaction(
            connection, self.options.lock_timeout, self.options.statement_timeout
        ):
            for name in drop_invalid_leftovers(connection, sql):
                self.emit(
                    "invalid_index_dropped",
                    f"Dropped the INVALID index {name} that an earlier attempt of online "
                    f"revision {step.revision} left behind on {self.conninfo.dbname}.",
                    step.revision,
                )
            run_online_step(self.migration_set, connection, step.revision, downgrade)
        with connection.begin():
            stamp(self.migration_set, connection, step.to_revision)
            record(connection, self._entry(step, started_at, "succeeded", None))
            self.committing = True
        self.committing = False

    def _failure(
        self, step: Step, exc: BaseException, state: str | None, attempts: int, waited: float
    ) -> MigrationError:
        verb = "apply" if step.direction == "upgrade" else "revert"
        where = f"database stays at {_describe(step.from_revision)}"
        if step.online:
            where = f"alembic_version stays at {_describe(step.from_revision)}; " + (
                _online_aftermath(step)
            )
        ended = "was cancelled" if step.online else "was rolled back"
        if state == _LOCK_NOT_AVAILABLE:
            tries = "1 attempt" if attempts == 1 else f"{attempts} attempts"
            return MigrationError(
                "LockTimeout",
                f"could not {verb} revision {step.revision}: a table it changes stayed locked "
                f"by another session for longer than lock_timeout "
                f"({milliseconds(self.options.lock_timeout)} ms) in {tries} "
                f"(waited {waited:.1f}s in all); {where}; retry when the blocking session "
                "has finished",
                revision=step.revision,
            )
        if state == _QUERY_CANCELED:
            return MigrationError(
                "RevisionFailed",
                f"revision {step.revision} ran longer than statement_timeout "
                f"({milliseconds(self.options.statement_timeout)} ms) and {ended}; "
                f"{where}; raise statementTimeout or make the revision faster",
                revision=step.revision,
            )
        if state == _ACTIVE_SQL_TRANSACTION and not step.online:
            return MigrationError(
                "RevisionFailed",
                f"revision {step.revision} failed and was rolled back ({where}): "
                f"{_error_text(exc)}; dbkeeper runs each revision in a transaction: move "
                "that statement to an online revision of its own (one that declares "
                "dbkeeper_transaction = False, see docs/migrations.md) and migrate again",
                revision=step.revision,
            )
        return MigrationError(
            "RevisionFailed",
            f"revision {step.revision} failed and {ended} ({where}): "
            f"{_error_text(exc)}; fix the revision and migrate again",
            revision=step.revision,
        )

    def _lost(self, connection: sa.Connection, exc: BaseException) -> MigrationError:
        """The session broke (the database restarted, the network went): say which
        revision was interrupted and what that left behind."""
        step = self.in_progress
        if step is None:
            return unreachable(self.conninfo, exc)
        verb = "applying" if step.direction == "upgrade" else "reverting"
        cause = _error_text(exc)
        if self.committing:
            known, after = self._revision_now()
            state = (
                f"the database is at {_describe(after)}"
                if known
                else f"the database is at {_describe(step.from_revision)} or "
                f"{_describe(step.to_revision)}: `dbkeeper status` tells which once it is back"
            )
            return MigrationError(
                "DatabaseUnreachable",
                f"the connection to {self.conninfo.describe()} was lost while committing "
                f"revision {step.revision} ({cause}); {state}; migrate again when the "
                "database is reachable",
                revision=step.revision,
            )
        if step.online:
            left = f"alembic_version stays at {_describe(step.from_revision)}; "
            left += _online_aftermath(step)
        else:
            left = (
                "it was not committed, so PostgreSQL rolled it back and the database stays "
                f"at {_describe(step.from_revision)}"
            )
        return MigrationError(
            "DatabaseUnreachable",
            f"the connection to {self.conninfo.describe()} was lost while {verb} revision "
            f"{step.revision} ({cause}); {left}; migrate again when the database is reachable",
            revision=step.revision,
        )

    def _revision_now(self) -> tuple[bool, str | None]:
        """Whether the database's revision could be read afresh, and that revision."""
        try:
            with sqlalchemy_connection(self.conninfo) as connection:
                prepare_session(connection, _AFTERMATH_LOCK_TIMEOUT, _AFTERMATH_LOCK_TIMEOUT)
                with connection.begin():
                    return True, current_revision(connection)
        except (MigrationError, sa.exc.SQLAlchemyError):
            return False, None

    def _interrupted(self, connection: sa.Connection, exc: KeyboardInterrupt) -> MigrationError:
        """SIGTERM or SIGINT: end the session (rolling back what is in progress and
        releasing every lock), make sure it has ended, then say what was left behind."""
        signal_name = exc.signal_name if isinstance(exc, Interrupted) else "SIGINT"
        step = self.in_progress
        with contextlib.suppress(Exception):
            connection.invalidate()
        ended = self.session_pid is None or end_session(self.conninfo, self.session_pid)
        if step is None:
            start = f"the migration of {self.conninfo.dbname} was interrupted by {signal_name}"
            if not self.located:
                return MigrationError(
                    "Interrupted",
                    f"{start} before it changed anything (it was waiting for the migration "
                    "lock or reading where the database is); nothing was in progress",
                )
            when = "between revisions" if self.applied else "before any revision was applied"
            return MigrationError(
                "Interrupted",
                f"{start} {when}; nothing was in progress; the database is at "
                f"{_describe(self.position)}",
            )
        verb = "applying" if step.direction == "upgrade" else "reverting"
        if ended and step.online:
            left = (
                "its session ended and every lock was released; alembic_version stays at "
                f"{_describe(step.from_revision)}; {_online_aftermath(step)}"
            )
        elif ended:
            left = (
                f"it was rolled back and every lock released; the database stays at "
                f"{_describe(step.from_revision)}"
            )
        else:
            left = (
                "the database could not be reached to confirm that its session ended; the "
                f"server rolls it back within {LOST_CLIENT_CHECK.total_seconds():g}s of noticing "
                f"the lost client, leaving the database at {_describe(step.from_revision)}"
            )
        self._record_interrupted(step, signal_name)
        return MigrationError(
            "Interrupted",
            f"the migration of {self.conninfo.dbname} was interrupted by {signal_name} while "
            f"{verb} revision {step.revision}; {left}; migrate again to finish",
            revision=step.revision,
        )

    def _record_interrupted(self, step: Step, signal_name: str) -> None:
        entry = self._entry(step, datetime.now(UTC), "failed", f"interrupted by {signal_name}")
        with (
            contextlib.suppress(MigrationError, sa.exc.SQLAlchemyError),
            sqlalchemy_connection(self.conninfo) as connection,
        ):
            prepare_session(connection, _AFTERMATH_LOCK_TIMEOUT, _AFTERMATH_LOCK_TIMEOUT)
            with connection.begin():
                record(connection, entry)

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
            set_source=self.migration_set.source,
        )


def migrate(
    conninfo: ConnInfo,
    migration_set: MigrationSet,
    options: MigrationOptions | None = None,
    hooks: MigrationHooks | None = None,
    on_event: EventSink | None = None,
    on_session: SessionSink | None = None,
) -> MigrationResult:
    """Move ``conninfo``'s database to ``options.target``; raises :class:`MigrationError`.

    ``on_session`` is called with the server pid of the migrating session once it is
    open, so a supervisor can make sure that session ends if this process dies.
    SIGTERM/SIGINT (see :mod:`dbkeeper.interrupt`) end in reason ``Interrupted``.
    """
    mover = _Mover(
        conninfo, migration_set, options or MigrationOptions(), hooks, on_event, on_session
    )
    try:
        return mover.run()
    except MigrationError as error:
        if error.reason not in ("RevisionFailed", "LockTimeout") or error.revision is None:
            # Step failures have already been reported with their revision.
            mover.emit("failed", _sentence(error.message), error.revision)
        raise

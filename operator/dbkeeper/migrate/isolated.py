"""Run one move in a child process, so moves of different databases run in parallel.

Alembic publishes its running context through module-level proxies, so one process can
run only one revision at a time (see :mod:`dbkeeper.migrate.alembic_bridge`). The
operator reconciles many resources in threads of one process; to keep a slow migration
of one database from delaying the others, each move runs in a process of its own.

The child is started with ``spawn`` (a fresh interpreter, never a fork of a process that
has threads). Everything it needs, the connection parameters with their password
included, travels pickled through the pipe ``multiprocessing`` opens to the child: never
through its command line or environment. Hooks cannot cross a process boundary as live
objects (they hold sockets, locks, clients), so the caller passes a picklable
:class:`HooksFactory` and the child builds the hooks from it.

The child reports on a one-way pipe, in order: every event as it happens, then either
the result or the error. The parent closes its copy of the writing end, so a child that
dies mid-move ends the stream and can never leave the caller waiting.
"""

from __future__ import annotations

import gc
import multiprocessing
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, cast

from dbkeeper.conninfo import ConnInfo, redact
from dbkeeper.interrupt import Interrupted, interrupts_raise
from dbkeeper.migrate.errors import REASONS, MigrationError, Reason
from dbkeeper.migrate.events import MigrationEvent, MigrationResult
from dbkeeper.migrate.options import MigrationOptions
from dbkeeper.migrate.plan import MigrationHooks
from dbkeeper.migrate.runner import migrate
from dbkeeper.migrate.session import end_session
from dbkeeper.migrate.sets import MigrationSet, load_set_from_path

if TYPE_CHECKING:
    from multiprocessing.process import BaseProcess

EventSink = Callable[[MigrationEvent], None]

# How often the parent looks at the child while no message arrives: bounds how late a
# timeout is noticed; a dead child is noticed at once through the closed pipe.
_POLL_SECONDS = 0.1
# After SIGTERM, how long the child gets to cancel, roll back and report before SIGKILL.
_TERMINATE_GRACE_SECONDS = 10.0
_MAX_TEXT_LENGTH = 2000


class HooksFactory(Protocol):
    """Plain, picklable data from which the child process builds the move's hooks.

    ``build`` runs in the child before the move starts; an exception there aborts the
    move before anything changes (reason ``BackupFailed``).
    """

    def build(self) -> MigrationHooks | None: ...


@dataclass(frozen=True)
class _Event:
    event: MigrationEvent


@dataclass(frozen=True)
class _Session:
    """The server pid of the child's migrating session, sent once it is open."""

    pid: int


@dataclass(frozen=True)
class _Result:
    result: MigrationResult


@dataclass(frozen=True)
class _Refused:
    """A :class:`MigrationError`, sent as its fields: the exception itself does not pickle."""

    reason: str
    message: str
    revision: str | None


@dataclass(frozen=True)
class _Crashed:
    """Any other exception in the child, as one redacted line."""

    description: str


_Message = _Event | _Session | _Result | _Refused | _Crashed
_Outcome = _Result | _Refused | _Crashed


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or "no message"
    return redact(f"{type(exc).__name__}: {text}")[:_MAX_TEXT_LENGTH]


def _child_main(
    conninfo: ConnInfo,
    set_path: Path,
    set_name: str,
    options: MigrationOptions,
    hooks_factory: HooksFactory | None,
    channel: Connection,
) -> None:
    """The child's whole life: build the hooks, move, report, exit."""

    def forward(event: MigrationEvent) -> None:
        channel.send(_Event(event))

    def session(pid: int) -> None:
        channel.send(_Session(pid))

    outcome: _Message
    # SIGTERM from the parent (a timeout, the operator stopping) cancels the running
    # statement and rolls back, and the child reports that like any other outcome.
    with interrupts_raise():
        outcome = _move_in_child(
            conninfo, set_path, set_name, options, hooks_factory, forward, session
        )
    channel.send(outcome)
    channel.close()
    # The parent waits for this process to end; its last garbage collection would only
    # walk what the imports built (see dbkeeper.cli.run).
    gc.freeze()


def _move_in_child(
    conninfo: ConnInfo,
    set_path: Path,
    set_name: str,
    options: MigrationOptions,
    hooks_factory: HooksFactory | None,
    forward: Callable[[MigrationEvent], None],
    session: Callable[[int], None],
) -> _Outcome:
    try:
        try:
            hooks = hooks_factory.build() if hooks_factory is not None else None
        except MigrationError:
            raise
        except Exception as exc:
            raise MigrationError(
                "BackupFailed",
                f"the hooks to run around the migration could not be set up, nothing was "
                f"changed: {_one_line(exc)}",
            ) from exc
        migration_set = load_set_from_path(set_path, name=set_name)
        return _Result(migrate(conninfo, migration_set, options, hooks, forward, session))
    except MigrationError as error:
        return _Refused(error.reason, error.message, error.revision)
    except Interrupted as stop:
        return _Refused(
            "Interrupted",
            f"interrupted by {stop.signal_name} before the migration started; nothing changed",
            None,
        )
    except Exception as exc:
        return _Crashed(_one_line(exc))


def _exit_description(exitcode: int | None) -> str:
    if exitcode is None:
        return "stopped answering"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        return f"was killed by {name}"
    return f"exited with code {exitcode}"


def _stop(process: BaseProcess, wait: float = 0.0) -> None:
    """End the child: let it exit for ``wait`` seconds, then SIGTERM, then SIGKILL."""
    process.join(wait)
    if process.is_alive():
        process.terminate()
        process.join(_TERMINATE_GRACE_SECONDS)
    if process.is_alive():
        process.kill()
    process.join()


class _Supervisor:
    """The parent's side: read the child's messages until it reports or goes away.

    A child stopped for running out of time (or because the operator stops) gets SIGTERM
    first, so it cancels its statement, rolls back and reports; one that has to be
    killed, or dies on its own, leaves its server session behind for a moment, so the
    parent makes sure that session ends (see :func:`end_session`) before it says the
    revision in progress was rolled back.
    """

    def __init__(
        self,
        process: BaseProcess,
        channel: Connection,
        conninfo: ConnInfo,
        on_event: EventSink | None,
        timeout: float | None,
        abandoned: threading.Event | None = None,
        abandon_grace: float = 0.0,
    ) -> None:
        self.process = process
        self.channel = channel
        self.conninfo = conninfo
        self.dbname = conninfo.dbname
        self.on_event = on_event
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout if timeout is not None else None
        self.abandoned = abandoned
        self.abandon_grace = abandon_grace
        self.abandon_deadline: float | None = None
        self.session_pid: int | None = None

    def _give_up_now(self) -> bool:
        """Whether the caller abandoned the move and its grace to finish has run out."""
        if self.abandoned is None or not self.abandoned.is_set():
            return False
        now = time.monotonic()
        if self.abandon_deadline is None:
            self.abandon_deadline = now + self.abandon_grace
        return now >= self.abandon_deadline

    def outcome(self) -> _Outcome:
        while True:
            message = self._next()
            if not self._take(message):
                return cast(_Outcome, message)

    def _take(self, message: _Message) -> bool:
        """Handle an event or a session report; False for an outcome."""
        if isinstance(message, _Event):
            if self.on_event is not None:
                self.on_event(message.event)
            return True
        if isinstance(message, _Session):
            self.session_pid = message.pid
            return True
        return False

    def _next(self) -> _Message:
        while not self.channel.poll(self._wait()):
            if self._give_up_now():
                return self._stop_child(
                    f"was abandoned (the operator is stopping) after {self.abandon_grace:g}s "
                    "of grace",
                    "Interrupted",
                )
            if self.deadline is not None and time.monotonic() >= self.deadline:
                return self._stop_child(
                    f"did not finish within {self.timeout:g}s", "RevisionFailed"
                )
            if not self.process.is_alive():
                # Its last words may still be in the pipe: the loop polls once more.
                self.process.join()
                if not self.channel.poll(0):
                    raise self._died(_exit_description(self.process.exitcode))
        try:
            message: _Message = self.channel.recv()
        except (EOFError, OSError):
            # The child closed the pipe (or died) without a complete message.
            self.process.join(_TERMINATE_GRACE_SECONDS)
            raise self._died(_exit_description(self.process.exitcode)) from None
        return message

    def _stop_child(self, why: str, reason: Reason) -> _Message:
        """SIGTERM the child and wait for its report; kill it if none comes in time.

        Returns the child's result if it finished after all; raises otherwise."""
        self.process.terminate()
        final = self._final_report(time.monotonic() + _TERMINATE_GRACE_SECONDS)
        if isinstance(final, _Result):
            return final
        if isinstance(final, _Refused) and final.reason == "Interrupted":
            raise MigrationError(
                reason,
                f"the migration of {self.dbname} {why} and was stopped: {final.message}",
                final.revision,
            )
        if isinstance(final, _Refused):
            raise MigrationError(_reason(final.reason), final.message, final.revision)
        _stop(self.process)
        raise self._died(f"{why} and did not stop when asked, so it was killed", reason)

    def _final_report(self, deadline: float) -> _Outcome | None:
        while time.monotonic() < deadline:
            if not self.channel.poll(_POLL_SECONDS):
                if not self.process.is_alive() and not self.channel.poll(0):
                    return None
                continue
            try:
                message: _Message = self.channel.recv()
            except (EOFError, OSError):
                return None
            if not self._take(message):
                return cast(_Outcome, message)
        return None

    def _wait(self) -> float:
        if self.deadline is None:
            return _POLL_SECONDS
        return max(0.0, min(_POLL_SECONDS, self.deadline - time.monotonic()))

    def _died(self, how: str, reason: Reason = "RevisionFailed") -> MigrationError:
        """The child is gone without a report: what became of its session."""
        start = f"the migration process of {self.dbname} {how} before reporting a result"
        if self.session_pid is None:
            return MigrationError(
                reason, f"{start}; it had not opened its database session, nothing was changed"
            )
        if end_session(self.conninfo, self.session_pid):
            left = (
                "its database session has ended, so the revision in progress (if any) was "
                "rolled back and its locks released; the database stays at the last revision "
                "reported as applied"
            )
        else:
            left = (
                "the database could not be reached to confirm that its session ended; the "
                "server rolls back the revision in progress when it notices the lost client"
            )
        return MigrationError(reason, f"{start}; {left}")


def _reason(value: str) -> Reason:
    return cast(Reason, value) if value in REASONS else "RevisionFailed"


def migrate_isolated(
    conninfo: ConnInfo,
    migration_set: MigrationSet,
    options: MigrationOptions,
    hooks: HooksFactory | None = None,
    on_event: EventSink | None = None,
    timeout: float | None = None,
    abandoned: threading.Event | None = None,
    abandon_grace: float = 0.0,
) -> MigrationResult:
    """:func:`migrate` in a child process; the same result, events and errors.

    ``on_event`` is called in the calling thread, in order, as the child reports.
    ``timeout`` (seconds) bounds the whole call, start-up of the child included; when it
    runs out the child is stopped, which rolls back the revision in progress. Raises
    :class:`MigrationError`: the child's own error unchanged, or ``RevisionFailed`` when
    the child crashed, died or ran out of time. Once ``abandoned`` is set the move gets
    ``abandon_grace`` more seconds to finish, then its child is stopped the same way.

    The child is a fresh interpreter that imports the caller's ``__main__`` module the way
    ``multiprocessing`` does, so that module must be safe to import (guarded by
    ``if __name__ == "__main__"``), and ``hooks`` must be picklable.
    """
    context = multiprocessing.get_context("spawn")
    reader, writer = context.Pipe(duplex=False)
    process = context.Process(
        target=_child_main,
        args=(conninfo, migration_set.path, migration_set.name, options, hooks, writer),
        name=f"dbkeeper-migrate-{conninfo.dbname}",
        daemon=True,
    )
    outcome: _Result | _Refused | _Crashed | None = None
    try:
        process.start()
        # Only the child may hold the writing end, so its death ends the stream.
        writer.close()
        outcome = _Supervisor(
            process, reader, conninfo, on_event, timeout, abandoned, abandon_grace
        ).outcome()
    finally:
        writer.close()
        reader.close()
        if process.pid is not None:
            # A child that has reported is on its way out; one that has not is stopped.
            _stop(process, _TERMINATE_GRACE_SECONDS if outcome is not None else 0.0)
            process.close()
    if isinstance(outcome, _Result):
        return outcome.result
    if isinstance(outcome, _Refused):
        raise MigrationError(_reason(outcome.reason), outcome.message, outcome.revision)
    raise MigrationError(
        "RevisionFailed",
        f"the migration of {conninfo.dbname} failed unexpectedly: {outcome.description}; "
        "the revision in progress was rolled back",
    )

"""How dbkeeper keeps pgbouncer as its child: tied to its parent, restarted with a back-off.

``pooler run`` (on a workstation) restarts pgbouncer itself when it dies; ``pooler
serve`` (in a pod) exits instead and leaves the restart to the kubelet. Both start
pgbouncer with ``dies_with_parent``: a pgbouncer outliving a supervisor killed with
SIGKILL would hold the port and answer the next supervisor's readiness probe. Both say
how it ended with ``describe_exit``.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable
from typing import NoReturn, Protocol

from dbkeeper.parent_death import dies_with_parent

__all__ = ["dies_with_parent"]  # pooler code takes it from here with the rest

# How much of pgbouncer's output a report of its end quotes: a FATAL line and its cause.
LAST_OUTPUT_LINES = 2


class ChildStartError(RuntimeError):
    """The child did not come up: it exited at once, or never accepted connections."""


def describe_exit(returncode: int) -> str:
    """How a child ended, from ``Popen.returncode``: "exited with code 1", "was killed
    by signal 9 (SIGKILL)"."""
    if returncode >= 0:
        return f"exited with code {returncode}"
    signum = -returncode
    try:
        return f"was killed by signal {signum} ({signal.Signals(signum).name})"
    except ValueError:
        return f"was killed by signal {signum}"


def shell_exit_status(returncode: int) -> int:
    """The status a shell reports for ``Popen.returncode``: the code, or 128 + signal."""
    return returncode if returncode >= 0 else 128 - returncode


class RestartBackoff:
    """Waits between restarts: ``first`` seconds, doubling up to ``cap``, and ``first``
    again once the child had stayed up ``stable_after`` seconds before it died."""

    def __init__(self, first: float = 0.5, cap: float = 30.0, stable_after: float = 60.0) -> None:
        if not 0 < first <= cap:
            raise ValueError(f"back-off needs 0 < first <= cap, got {first} and {cap}")
        self.first = first
        self.cap = cap
        self.stable_after = stable_after
        self._next = first

    def delay_after(self, uptime: float) -> float:
        """Seconds to wait before starting again a child that ran ``uptime`` seconds."""
        if uptime >= self.stable_after:
            self._next = self.first
        delay = self._next
        self._next = min(delay * 2, self.cap)
        return delay


class Restartable(Protocol):
    """A child process that ``keep_running`` can wait for and start again."""

    def wait(self) -> int:
        """Block until the child exits; its ``Popen.returncode``."""
        ...

    def restart(self) -> None:
        """Start the child again; raises when it does not come up."""
        ...

    def last_output(self) -> str:
        """The child's last LAST_OUTPUT_LINES lines of output, or "" when there are none."""
        ...


# What a failed restart may raise; each is reported and retried after the next delay.
_START_FAILURES = (ChildStartError, OSError, subprocess.SubprocessError)


def keep_running(
    child: Restartable,
    report: Callable[[str], None],
    backoff: RestartBackoff | None = None,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> NoReturn:
    """Restart ``child`` whenever it dies, reporting one line each time, forever.

    Only an exception ends it: the caller's signal handler raising KeyboardInterrupt on
    SIGTERM or SIGINT, then stopping the child itself.
    """
    backoff = backoff or RestartBackoff()
    restarts = 0
    while True:
        started = clock()
        code = child.wait()
        uptime = clock() - started
        delay = backoff.delay_after(uptime)
        output = child.last_output()
        report(
            f"pgbouncer {describe_exit(code)} after {uptime:.1f}s; "
            f"restarting it in {delay:g}s" + (f"; its last output: {output}" if output else "")
        )
        while True:
            sleep(delay)
            try:
                child.restart()
            except _START_FAILURES as exc:
                delay = backoff.delay_after(0.0)
                report(f"pgbouncer did not start again ({exc}); retrying in {delay:g}s")
                continue
            break
        restarts += 1
        report(f"pgbouncer is accepting connections again (restart {restarts})")

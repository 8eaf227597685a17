"""SIGTERM and SIGINT: cancel the running statement, roll back, let go, say so.

A deleted pod gets SIGTERM, a person at a terminal presses Ctrl-C. The CLI treats both
alike for every command that does not manage signals itself (the operator, the pooler
supervisors): child tools are stopped, transactions rolled back, one line printed, exit
130. Above all the migrator must not simply die: the revision in progress must be
rolled back and every lock released before it exits, and its message must say so.

The handlers installed by :func:`interrupts_raise` turn both signals into
:class:`Interrupted`, a ``KeyboardInterrupt``: psycopg answers that by cancelling the
statement on the server and waiting for the cancellation, and the engine then rolls
back and reports the revision it was working on (reason ``Interrupted``).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Interrupted(KeyboardInterrupt):
    """The process was asked to stop by ``signal_name``."""

    def __init__(self, signal_name: str) -> None:
        super().__init__(signal_name)
        self.signal_name = signal_name


def _raise(signum: int, frame: FrameType | None) -> None:
    # Once is enough: a second signal must not break off the rollback the first began.
    for other in _SIGNALS:
        signal.signal(other, signal.SIG_IGN)
    raise Interrupted(signal.Signals(signum).name)


@contextmanager
def interrupts_raise() -> Iterator[None]:
    """While inside, SIGTERM and SIGINT raise :class:`Interrupted` in the main thread.

    Outside the main thread (where Python cannot install handlers) it does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.signal(signum, _raise) for signum in _SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)

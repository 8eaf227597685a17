"""Children that cannot outlive the process that started them.

A pgbouncer or pg_dump left running after its dbkeeper parent was killed with SIGKILL
holds a port, or goes on writing into a backup folder that the next prune may remove.
:func:`dies_with_parent` asks the kernel to SIGKILL the child as soon as its parent is
gone (``PR_SET_PDEATHSIG``, Linux).
"""

from __future__ import annotations

import ctypes
import functools
import os
import signal
import sys
import threading
from collections.abc import Callable

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


@functools.cache
def _prctl() -> Callable[..., int]:
    function: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
    return function


def dies_with_parent(then: Callable[[], None] | None = None) -> Callable[[], None] | None:
    """A ``preexec_fn`` that runs ``then`` (the switch to the service user), then has the
    kernel SIGKILL the child as soon as the process starting it is gone.

    The death signal is set after ``then`` because changing credentials clears it. It
    follows the *thread* that forks: started from another thread, a child would be
    killed when that thread ends, so there (and outside Linux) ``then`` is returned as it
    is and the child gets no death signal.
    """
    if not sys.platform.startswith("linux") or (
        threading.current_thread() is not threading.main_thread()
    ):
        return then
    prctl = _prctl()  # looked up before the fork: loading a library in the child can hang
    parent = os.getpid()
    death_signal = [ctypes.c_ulong(arg) for arg in (PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)]

    def preexec() -> None:
        if then is not None:
            then()
        if prctl(*death_signal) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
        # A parent that died between the fork and the prctl sends no signal any more.
        if os.getppid() != parent:
            os._exit(1)

    return preexec

"""Hold a pooled database paused around a risky step, and never leave it paused.

While paused, PgBouncer keeps client connections open and queues their queries, so a
lock-heavy migration does not queue behind (or in front of) application transactions.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from typing import Protocol

log = logging.getLogger(__name__)


class PausableConsole(Protocol):
    def pause(self, database: str, wait_seconds: float) -> None: ...

    def resume(self, database: str) -> None: ...


@contextlib.contextmanager
def paused(admin: PausableConsole, database: str, wait: float) -> Iterator[None]:
    """PAUSE ``database`` (bounded by ``wait`` seconds), run the block, then RESUME.

    RESUME happens on every way out of the block, exceptions included. If PAUSE itself
    times out, the console has already resumed the database and the block does not run.
    """
    admin.pause(database, wait)
    try:
        yield
    finally:
        _resume_with_retries(admin, database)


def _resume_with_retries(admin: PausableConsole, database: str, attempts: int = 3) -> None:
    # A paused pool stalls every client, so a RESUME that fails on a transient error
    # (the console briefly unreachable) is worth a couple of quick retries.
    for attempt in range(1, attempts + 1):
        try:
            admin.resume(database)
            return
        except Exception:
            if attempt == attempts:
                log.exception("RESUME %s failed; the pooled database may still be paused", database)
                raise
            time.sleep(0.2 * attempt)

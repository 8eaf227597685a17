"""``dbkeeper wait``: hold an application's start until its database is at a revision.

Meant for an init container: it connects with the application's own credentials
(``--dsn``, ``$DBKEEPER_DSN`` or libpq's ``PG*`` variables), only reads, and needs no
Kubernetes access. Progress goes to stderr, one line when something changes and at least
every 10 s; the line saying it is reached goes to stdout. Its parser:
:mod:`dbkeeper.cli.parsers.wait`.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import timedelta

from dbkeeper.cli.common import (
    CommandError,
    describe_libpq_target,
    emit,
    libpq_dsn_from_args,
    one_line,
)
from dbkeeper.json_shapes.wait import WaitJson
from dbkeeper.wait import Position, WaitError
from dbkeeper.wait import wait_for_revision as wait_for

_PROGRESS_EVERY = timedelta(seconds=10)


class _Progress:
    """A line when what was seen changes, and at least every ``_PROGRESS_EVERY``."""

    def __init__(self, revision: str, target: str) -> None:
        self.revision = revision
        self.target = target
        self.said: str | None = None
        self.said_at = 0.0

    def __call__(self, position: Position, waited: float) -> None:
        seen = position.describe()
        now = time.monotonic()
        if seen == self.said and now - self.said_at < _PROGRESS_EVERY.total_seconds():
            return
        self.said, self.said_at = seen, now
        line = f"dbkeeper wait: {self.target} {seen}; waiting for revision {self.revision}"
        print(f"{one_line(line)} ({waited:.0f}s)", file=sys.stderr, flush=True)


def run_wait(args: argparse.Namespace) -> int:
    dsn = libpq_dsn_from_args(args)
    target = describe_libpq_target(dsn)
    try:
        position = wait_for(
            dsn,
            args.revision,
            args.timeout,
            migration_set=args.set_name,
            poll_interval=args.interval,
            on_progress=_Progress(args.revision, target),
        )
    except WaitError as error:
        raise CommandError(f"{target}: {error.message} [{error.reason}]") from None
    data: WaitJson = {
        "revision": args.revision,
        "current_revision": position.revision,
        "migration_set": position.migration_set,
        "reached": True,
    }
    emit(args, data, f"{target} {position.describe()}: revision {args.revision} is reached")
    return 0

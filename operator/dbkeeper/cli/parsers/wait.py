"""The parser of ``dbkeeper wait`` (handler: :mod:`dbkeeper.cli.wait_commands`)."""

from __future__ import annotations

import argparse
import re

from dbkeeper.cli.common import add_output_arg, deferred, duration_arg, fine_duration_arg
from dbkeeper.json_shapes.wait import WaitJson
from dbkeeper.wait import DEFAULT_POLL_INTERVAL, DEFAULT_TIMEOUT

_HANDLERS = "dbkeeper.cli.wait_commands"
_REVISION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")


def _revision(text: str) -> str:
    if not _REVISION.match(text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a revision id (letters, digits, '_', '-' and '.')"
        )
    return text


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    wait = subparsers.add_parser(
        "wait",
        help="wait until the database is at a revision or later (for init containers)",
        description="Exit 0 as soon as the database is at REV or a later revision of its "
        "set's chain, read from the database's own bookkeeping (alembic_version and "
        "dbkeeper.migration_history) with the connecting role's SELECT rights. A revision "
        "the history does not know yet, or a database moved below REV, is waited for. "
        "Exits 1 with one line on timeout or when REV belongs to another set.",
    )
    wait.add_argument(
        "--revision",
        type=_revision,
        required=True,
        metavar="REV",
        help="the revision the application needs (it or any later one of the chain will do)",
    )
    wait.add_argument(
        "--timeout",
        type=duration_arg,
        default=DEFAULT_TIMEOUT,
        metavar="DURATION",
        help="give up after this long (default 10m)",
    )
    wait.add_argument(
        "--set",
        dest="set_name",
        default=None,
        metavar="NAME",
        help="the migration set REV belongs to: a database migrated by another set fails "
        "at once (default: whichever set migrates the database)",
    )
    wait.add_argument(
        "--interval",
        type=fine_duration_arg,
        default=DEFAULT_POLL_INTERVAL,
        metavar="DURATION",
        help="how often to look, e.g. 2s or 500ms (default 2s)",
    )
    wait.add_argument(
        "--dsn",
        default=None,
        help="libpq connection string or URL; defaults to $DBKEEPER_DSN, then to libpq's "
        "PGHOST, PGPORT, PGDATABASE, PGUSER, PGPASSWORD",
    )
    add_output_arg(wait, WaitJson)
    wait.set_defaults(handler=deferred(_HANDLERS, "run_wait"))

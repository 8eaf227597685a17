"""The parsers of ``dbkeeper pooler run|serve|show`` (handlers:
:mod:`dbkeeper.cli.pooler_commands`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from dbkeeper.cli.common import add_connection_args, add_output_arg, deferred
from dbkeeper.json_shapes.pooler import PoolerShowJson
from dbkeeper.pooler.settings import DEFAULT_POLL_SECONDS, POOL_MODES

_HANDLERS = "dbkeeper.cli.pooler_commands"
DEFAULT_DIR = Path(".dbkeeper/pooler")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    pooler = subparsers.add_parser("pooler", help="run or inspect a local PgBouncer")
    sub = pooler.add_subparsers(dest="pooler_command", metavar="ACTION", required=True)

    run = sub.add_parser(
        "run",
        help="run PgBouncer in front of a database until interrupted",
        description="Render pgbouncer.ini and userlist.txt (the role's SCRAM verifier, never "
        "its password) into --dir with the operator's own code, and keep a pgbouncer in the "
        "foreground, restarted with a back-off when it dies, until interrupted.",
    )
    add_connection_args(run)
    run.add_argument(
        "--listen-port", type=int, default=6432, help="port PgBouncer listens on (default 6432)"
    )
    run.add_argument(
        "--pool-mode",
        choices=POOL_MODES,
        default="transaction",
        help="when a server connection returns to the pool: after each transaction "
        "(default), statement or session",
    )
    run.add_argument(
        "--default-pool-size",
        type=int,
        default=20,
        help="server connections per user and database (default 20)",
    )
    run.add_argument(
        "--max-client-conn",
        type=int,
        default=100,
        help="client connections PgBouncer accepts in all (default 100)",
    )
    run.add_argument(
        "--max-db-connections",
        type=int,
        default=0,
        help="server connections to the database in all (default 0: no limit)",
    )
    run.add_argument(
        "--reserve-pool-size",
        type=int,
        default=0,
        help="extra server connections for clients that waited 5 s (default 0)",
    )
    run.add_argument(
        "--dir",
        type=Path,
        default=DEFAULT_DIR,
        help=f"folder for its ini, auth file and socket (default {DEFAULT_DIR})",
    )
    run.set_defaults(handler=deferred(_HANDLERS, "run_pooler"))

    serve = sub.add_parser(
        "serve",
        help="run pgbouncer on a rendered ini (in a pod) and reload it when the ini or "
        "its auth file change",
        description="The pooler pods' command: run pgbouncer on INI, reload it when the "
        "mounted ini or auth file changes, and exit when pgbouncer dies so the kubelet "
        "restarts the container.",
    )
    serve.add_argument("ini", type=Path, help="pgbouncer.ini to run")
    serve.add_argument(
        "--poll-interval",
        type=float,
        default=DEFAULT_POLL_SECONDS,
        help=f"seconds between checks of the files, default {DEFAULT_POLL_SECONDS:g}",
    )
    serve.set_defaults(handler=deferred(_HANDLERS, "serve_pooler"))

    show = sub.add_parser(
        "show",
        help="pools and statistics of a running local PgBouncer",
        description="Ask the PgBouncer that `pooler run` started in --dir for its pools and "
        "statistics (SHOW POOLS, SHOW STATS on its admin console).",
    )
    show.add_argument("--dir", type=Path, default=DEFAULT_DIR, help=f"default {DEFAULT_DIR}")
    add_output_arg(show, PoolerShowJson)
    show.set_defaults(handler=deferred(_HANDLERS, "show_pooler"))

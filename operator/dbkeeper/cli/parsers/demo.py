"""The parsers of ``dbkeeper demo up|down|status`` (handlers:
:mod:`dbkeeper.cli.demo_commands`)."""

from __future__ import annotations

import argparse

from dbkeeper.cli.common import deferred

_HANDLERS = "dbkeeper.cli.demo_commands"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    demo = subparsers.add_parser(
        "demo",
        help="run the whole product locally: PostgreSQL, migrations, pooler, backups",
        description="State lives in $DBKEEPER_DEMO_DIR (default ./.dbkeeper).",
    )
    sub = demo.add_subparsers(dest="demo_command", metavar="ACTION", required=True)
    up = sub.add_parser(
        "up",
        help="start (or check) the demo and explain each step",
        description="Start a local PostgreSQL, apply examples/healthcare.yaml with the "
        "operator's own reconcile code, seed, pool, roll back and forward, back up and "
        "drill, explaining each step; run again, it only does what is missing.",
    )
    up.set_defaults(handler=deferred(_HANDLERS, "run_up"))
    down = sub.add_parser(
        "down",
        help="stop the demo's pooler and server and remove its folder",
        description="Stop the demo's pgbouncer and PostgreSQL and remove its folder (and its "
        "server folder under /var/tmp, when it has one).",
    )
    down.set_defaults(handler=deferred(_HANDLERS, "run_down"))
    status = sub.add_parser(
        "status",
        help="show the demo resource's status",
        description="Show the demo's DatabaseSchema as kubectl get and describe would, and "
        "whether its PostgreSQL and pgbouncer run.",
    )
    status.set_defaults(handler=deferred(_HANDLERS, "run_status"))
